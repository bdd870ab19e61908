"""The pool's dtype conversions (numkern._core.convert, behind large float16/integer inputs and
float16 outputs) agree bit for bit with NumPy's astype."""

import numpy as np
import pytest

from numkern import _core

pytestmark = pytest.mark.isa_independent


def _special_floats():
    f32 = np.float32
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(f32)
    bits = halves.view(np.uint32)
    # Every half, the floats just around it and half-way to the next (ties of the rounding).
    around = np.concatenate([bits - 1, bits, bits + 1, bits + (1 << 12), bits + (1 << 12) - 1, bits + (1 << 12) + 1])
    extra = np.array(
        [
            0x7F800000,
            0xFF800000,
            0x7FC00000,
            0xFFC00001,
            0x7F800001,
            0x7FBFFFFF,
            0x477FF000,
            0x477FEFFF,
            0x477FF001,
            0x33000000,
            0x33000001,
            0x32FFFFFF,
            0x38800000,
            0x387FFFFF,
        ],
        dtype=np.uint32,
    )
    rand = np.random.default_rng(0).integers(0, 1 << 32, 1 << 20, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([around, extra, rand]).view(f32)


def test_float32_to_float16_matches_numpy():
    x = _special_floats()
    out = np.empty(x.shape, np.float16)
    _core.convert(out, x)
    with np.errstate(all="ignore"):
        expected = x.astype(np.float16)
    np.testing.assert_array_equal(out.view(np.uint16), expected.view(np.uint16))


@pytest.mark.parametrize(
    "src",
    ["float16", "float32", "float64", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"],
)
@pytest.mark.parametrize("dst", ["float32", "float64"])
def test_conversions_match_numpy(src, dst):
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, 8 * 100_003, dtype=np.uint8)
    x = raw.view(np.uint8)[: (raw.size // np.dtype(src).itemsize) * np.dtype(src).itemsize].view(src)
    if src == "bool":
        x = x.view(np.uint8) % 2 == 1
    out = np.empty(x.shape, dst)
    _core.convert(out, x)
    with np.errstate(all="ignore"):
        expected = x.astype(dst)
    np.testing.assert_array_equal(out.view(f"u{np.dtype(dst).itemsize}"), expected.view(f"u{np.dtype(dst).itemsize}"))


def test_convert_rejects_what_it_cannot_do():
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.convert(np.empty(4), np.empty(8)[::2])
    with pytest.raises(ValueError, match="one size"):
        _core.convert(np.empty(4), np.empty(5))
    with pytest.raises(TypeError, match="target"):
        _core.convert(np.empty(4, np.int32), np.empty(4, np.float64))
    with pytest.raises(TypeError, match="native byte order"):
        _core.convert(np.empty(4), np.empty(4, ">f8"))
    with pytest.raises(TypeError, match="unsupported"):
        _core.convert(np.empty(4), np.empty(4, np.complex64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (3000, 257), (70000, 9)])
def test_scale_rows_matches_numpy_bit_for_bit(dtype, shape):
    rng = np.random.default_rng(shape[0])
    a = rng.standard_normal(shape).astype(dtype)
    a[0, 0], a[-1, -1] = np.inf, np.nan
    w = rng.uniform(0, 3, shape[0]).astype(dtype)
    w[0] = 0.0
    keep = a.copy()
    out = np.empty_like(a)
    _core.scale_rows(out, a, w)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(out.view(np.uint8), (a * w[:, None]).view(np.uint8))
    np.testing.assert_array_equal(a, keep)


def test_scale_rows_rejects_what_it_cannot_do():
    a = np.ones((4, 3))
    with pytest.raises(TypeError):
        _core.scale_rows(np.empty((4, 3), np.float32), a, np.ones(4))
    with pytest.raises(ValueError):
        _core.scale_rows(np.empty((4, 3)), a, np.ones(3))
    with pytest.raises(ValueError):
        _core.scale_rows(np.empty((4, 3)), np.ones((3, 4)).T, np.ones(4))
