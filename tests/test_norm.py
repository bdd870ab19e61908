"""numkern.l1_norm / layer_norm / their backward passes / l1_norm_int8 against float64 and exact
integer references, on every ISA level (see conftest.py)."""

from fractions import Fraction

import numpy as np
import pytest

import numkern
from numkern._validate import AxisError

# ---------------------------------------------------------------- references (float64 / int64)


def ref_forward(x, axis=-1, weight=None, bias=None, eps=1e-5, l1=True):
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    # The mean in extended precision (x87 long double) so that offset data is referenced exactly.
    d = (x.astype(np.longdouble) - x.astype(np.longdouble).mean(axis=-1, keepdims=True)).astype(np.float64)
    spread = np.abs(d).mean(axis=-1, keepdims=True) + eps if l1 else np.sqrt((d * d).mean(axis=-1, keepdims=True) + eps)
    y = d / spread
    if weight is not None:
        y = y * np.asarray(weight, dtype=np.float64)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return np.moveaxis(y, -1, axis)


def ref_backward(dy, x, axis=-1, weight=None, eps=1e-5, l1=True):
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    dy = np.moveaxis(np.asarray(dy, dtype=np.float64), axis, -1)
    n = x.shape[-1]
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    d = x - x.mean(axis=-1, keepdims=True)
    if l1:
        D = np.abs(d).mean(axis=-1, keepdims=True) + eps
        xh = d / D
        sg = np.sign(d)
        dev = sg - sg.mean(axis=-1, keepdims=True)
    else:
        D = np.sqrt((d * d).mean(axis=-1, keepdims=True) + eps)
        xh = d / D
        dev = xh
    g = dy * w
    dx = (g - g.mean(axis=-1, keepdims=True) - (g * xh).mean(axis=-1, keepdims=True) * dev) / D
    red = tuple(range(x.ndim - 1))
    return np.moveaxis(dx, -1, axis), (dy * xh).sum(axis=red), dy.sum(axis=red)


def ref_int8(q, axis=-1, out_shift=5):
    """The exact rational value 2^s * n * d / T per element (as float64: exact to 2^-40 here)."""
    x = np.moveaxis(q.astype(np.int64), axis, -1)
    n = x.shape[-1]
    d = n * x - x.sum(axis=-1, keepdims=True)
    T = np.abs(d).sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(T == 0, 0.0, (2.0**out_shift * n) * d / np.where(T == 0, 1, T))
    return np.moveaxis(v, -1, axis)


TOL = {np.float32: 2e-5, np.float64: 1e-12}


def assert_close(got, ref, dtype, scale=1.0):
    got = np.asarray(got, dtype=np.float64)
    tol = TOL[np.dtype(dtype).type] * scale
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol, equal_nan=True)


FORWARD = [(numkern.l1_norm, True), (numkern.layer_norm, False)]
BACKWARD = [(numkern.l1_norm_backward, True), (numkern.layer_norm_backward, False)]
FWD_IDS = ["l1", "l2"]

# ---------------------------------------------------------------- float forward


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 17, 31, 64, 100, 1023, 4096, 5000])
def test_forward_matches_float64_reference(fn, l1, dtype, n, rng):
    x = (rng.standard_normal((5, n)) * 3 + 0.5).astype(dtype)
    assert_close(fn(x), ref_forward(x, l1=l1), dtype)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_with_weight_and_bias_matches_reference(fn, l1, dtype, rng):
    x = rng.standard_normal((6, 129)).astype(dtype)
    w = rng.standard_normal(129).astype(dtype)
    b = rng.standard_normal(129).astype(dtype)
    assert_close(fn(x, weight=w, bias=b), ref_forward(x, weight=w, bias=b, l1=l1), dtype, 4)
    assert_close(fn(x, weight=w), ref_forward(x, weight=w, l1=l1), dtype, 4)
    assert_close(fn(x, bias=b), ref_forward(x, bias=b, l1=l1), dtype, 4)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_forward_any_axis_and_layout(fn, l1, axis, rng):
    base = rng.standard_normal((7, 9, 11))
    for x in (base, np.asfortranarray(base), base[::-1, ::2, ::-3], base.transpose(2, 0, 1)):
        assert_close(fn(x, axis=axis), ref_forward(x, axis=axis, l1=l1), np.float64)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_unaligned_input_and_output(fn, l1, rng):
    raw = rng.standard_normal(300).astype(np.float32)
    buf = np.zeros(4 * 300 + 1, dtype=np.uint8)
    x = buf[1:].view(np.float32)  # not even 4-byte aligned: the wrapper copies it
    x[:] = raw
    assert not x.flags.aligned
    keep = buf.copy()
    out_buf = np.zeros(301, dtype=np.float32)
    out = out_buf[1:]  # 4-byte aligned but not vector aligned
    fn(x, out=out)
    assert_close(out, ref_forward(raw, l1=l1), np.float32)
    assert out_buf[0] == 0
    np.testing.assert_array_equal(buf, keep)
    misaligned_out = np.zeros(4 * 300 + 1, dtype=np.uint8)[1:].view(np.float32)
    fn(raw, out=misaligned_out)
    assert_close(misaligned_out, ref_forward(raw, l1=l1), np.float32)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_large_output_streams_correctly(fn, l1, rng):
    # >= 16 MiB of output takes the non-temporal-store path; an offset view misaligns each row.
    x = rng.standard_normal((1025, 4097), dtype=np.float32)
    w = rng.standard_normal(4096, dtype=np.float32)
    out = np.full((1025, 4097), 7.0, dtype=np.float32)
    fn(x[:, 1:], weight=w, out=out[:, 1:])
    assert_close(out[:, 1:], ref_forward(x[:, 1:], weight=w, l1=l1), np.float32, 4)
    assert np.all(out[:, 0] == 7.0)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_offset_data_keeps_accuracy(fn, l1, rng):
    x32 = (1e3 + rng.standard_normal((4, 777))).astype(np.float32)
    # float32 input carries ~6e-5 absolute precision at 1e3; the kernel adds no more than that.
    assert_close(fn(x32), ref_forward(x32, l1=l1), np.float32, 5)
    x64 = 1e6 + rng.standard_normal((4, 777))
    assert_close(fn(x64), ref_forward(x64, l1=l1), np.float64, 100)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_special_values_poison_only_their_slice(fn, l1):
    x = np.ones((5, 33), dtype=np.float32)
    x[:, ::2] = -1.0
    x[0, 3] = np.nan
    x[1, 4] = np.inf
    x[2, 5] = -np.inf
    x[3, 6] = 1e-40  # denormal: an ordinary value
    y = fn(x)
    assert np.all(np.isnan(y[:3]))
    assert np.all(np.isfinite(y[3:]))
    assert_close(y[3:], ref_forward(x[3:], l1=l1), np.float32)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_constant_slice_gives_bias_or_nan_without_eps(fn, l1):
    x = np.full((2, 10), 3.25)
    b = np.arange(10.0)
    np.testing.assert_array_equal(fn(x, bias=b), np.broadcast_to(b, (2, 10)))
    assert np.all(np.isnan(fn(x, eps=0.0)))


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_dtype_policy_and_out(fn, l1, rng):
    x16 = rng.standard_normal((3, 20)).astype(np.float16)
    y16 = fn(x16)
    assert y16.dtype == np.float16
    np.testing.assert_allclose(y16.astype(np.float64), ref_forward(x16, l1=l1), rtol=2e-3, atol=2e-3)
    xi = rng.integers(-50, 50, (3, 20))
    yi = fn(xi)
    assert yi.dtype == np.float64
    assert_close(yi, ref_forward(xi, l1=l1), np.float64)
    out16 = np.empty((3, 20), np.float16)
    assert fn(x16, out=out16) is out16
    np.testing.assert_array_equal(out16, y16)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_in_place_and_strided_in_place(fn, l1, rng):
    x = rng.standard_normal((8, 50))
    ref = ref_forward(x, l1=l1)
    y = x.copy()
    assert fn(y, out=y) is y
    assert_close(y, ref, np.float64)
    z = np.asfortranarray(x)
    fn(z, axis=-1, out=z)
    assert_close(z, ref, np.float64)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_overlapping_out_reads_original_input(fn, l1, rng):
    buf = rng.standard_normal(101)
    x, out = buf[:100], buf[1:]
    ref = ref_forward(x.copy(), l1=l1)
    fn(x, out=out)
    assert_close(out, ref, np.float64)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_empty_and_length_one(fn, l1):
    assert fn(np.zeros((0, 5), np.float32)).shape == (0, 5)
    assert fn(np.zeros((3, 0))).shape == (3, 0)
    np.testing.assert_array_equal(fn(np.array([[2.0], [5.0]])), np.zeros((2, 1)))


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_result_independent_of_thread_count(fn, l1, rng):
    x = rng.standard_normal((300, 257)).astype(np.float32)
    before = numkern.get_num_threads()
    try:
        numkern.set_num_threads(1)
        a = fn(x)
        numkern.set_num_threads(2)
        b = fn(x)
    finally:
        numkern.set_num_threads(before)
    np.testing.assert_array_equal(a, b)


@pytest.mark.isa_independent
@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
def test_forward_bad_arguments_raise_and_do_not_mutate(fn, l1):
    x = np.arange(12.0).reshape(3, 4)
    keep = x.copy()
    with pytest.raises(ValueError, match="0-d"):
        fn(np.float64(1.0))
    with pytest.raises(AxisError):
        fn(x, axis=2)
    with pytest.raises(TypeError):
        fn(x, axis=1.0)
    with pytest.raises(TypeError, match="dtype"):
        fn(x.astype(np.complex128))
    with pytest.raises(TypeError, match="dtype"):
        fn(np.array([["a"]]))
    with pytest.raises(ValueError, match="shape"):
        fn(x, weight=np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        fn(x, bias=np.ones((1, 4)))
    with pytest.raises(TypeError, match="weight"):
        fn(x, weight=np.array(["a"] * 4))
    with pytest.raises(ValueError, match="eps"):
        fn(x, eps=-1.0)
    with pytest.raises(ValueError, match="eps"):
        fn(x, eps=np.nan)
    with pytest.raises(TypeError, match="eps"):
        fn(x, eps="1")
    with pytest.raises(ValueError, match="shape"):
        fn(x, out=np.empty((4, 3)))
    with pytest.raises(TypeError, match="dtype"):
        fn(x, out=np.empty((3, 4), np.float32))
    with pytest.raises(TypeError):
        fn(x, out=[0.0] * 12)
    ro = np.empty((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fn(x, out=ro)
    np.testing.assert_array_equal(x, keep)


# ---------------------------------------------------------------- float backward


@pytest.mark.parametrize("fn,l1", BACKWARD, ids=FWD_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 5, 16, 33, 1000])
def test_backward_matches_float64_reference(fn, l1, dtype, n, rng):
    x = rng.standard_normal((7, n)).astype(dtype)
    dy = rng.standard_normal((7, n)).astype(dtype)
    w = rng.standard_normal(n).astype(dtype)
    for weight in (None, w):
        dx, dw, db = fn(dy, x, weight=weight)
        rdx, rdw, rdb = ref_backward(dy, x, weight=weight, l1=l1)
        assert dx.dtype == dtype and dw.shape == (n,) and db.shape == (n,)
        assert_close(dx, rdx, dtype, 10)
        assert_close(dw, rdw, dtype, 10)
        assert_close(db, rdb, dtype, 10)


@pytest.mark.parametrize(
    "fwd,bwd,l1",
    [(numkern.l1_norm, numkern.l1_norm_backward, True), (numkern.layer_norm, numkern.layer_norm_backward, False)],
    ids=FWD_IDS,
)
def test_backward_matches_finite_differences(fwd, bwd, l1, rng):
    x = rng.standard_normal((3, 9))
    w = rng.standard_normal(9)
    b = rng.standard_normal(9)
    dy = rng.standard_normal((3, 9))
    dx, dw, db = bwd(dy, x, weight=w, eps=1e-3)

    def loss(xv, wv, bv):
        return float((fwd(xv, weight=wv, bias=bv, eps=1e-3) * dy).sum())

    h = 1e-6
    num_dx = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num_dx[idx] = (loss(xp, w, b) - loss(xm, w, b)) / (2 * h)
    num_dw = np.array([(loss(x, w + h * e, b) - loss(x, w - h * e, b)) / (2 * h) for e in np.eye(9)])
    num_db = np.array([(loss(x, w, b + h * e) - loss(x, w, b - h * e)) / (2 * h) for e in np.eye(9)])
    np.testing.assert_allclose(dx, num_dx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, num_dw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(db, num_db, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn,l1", BACKWARD, ids=FWD_IDS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_backward_any_axis_strided_and_in_place(fn, l1, axis, rng):
    x = rng.standard_normal((6, 10, 8))[:, ::-2, :]
    dy = np.asfortranarray(rng.standard_normal((6, 5, 8)))
    rdx, rdw, rdb = ref_backward(dy, x, axis=axis, l1=l1)
    dx, dw, db = fn(dy, x, axis=axis)
    assert_close(dx, rdx, np.float64, 10)
    assert_close(dw, rdw, np.float64, 10)
    assert_close(db, rdb, np.float64, 10)
    dy2 = dy.copy(order="A")
    dx2, _, _ = fn(dy2, x, axis=axis, out=dy2)
    assert dx2 is dy2
    assert_close(dy2, rdx, np.float64, 10)


@pytest.mark.parametrize("fn,l1", BACKWARD, ids=FWD_IDS)
def test_backward_multithreaded_parameter_gradients(fn, l1, rng):
    x = rng.standard_normal((512, 96)).astype(np.float32)
    dy = rng.standard_normal((512, 96)).astype(np.float32)
    rdx, rdw, rdb = ref_backward(dy, x, l1=l1)
    dx, dw, db = fn(dy, x)
    assert_close(dx, rdx, np.float32, 10)
    assert_close(dw, rdw, np.float32, 100)
    assert_close(db, rdb, np.float32, 100)


@pytest.mark.isa_independent
@pytest.mark.parametrize("fn,l1", BACKWARD, ids=FWD_IDS)
def test_backward_bad_arguments_raise(fn, l1):
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match="shape"):
        fn(np.ones((3, 5)), x)
    with pytest.raises(TypeError, match="dtype"):
        fn(np.ones((3, 4), np.complex64), x)
    with pytest.raises(ValueError, match="shape"):
        fn(x, x, weight=np.ones(5))
    with pytest.raises(AxisError):
        fn(x, x, axis=-3)


# ---------------------------------------------------------------- int8


@pytest.fixture(params=["table", "arithmetic"])
def int8_path(request):
    """Slices of >= 1024 use a 256-entry table (VBMI) where the CPU has it; test both paths."""
    from numkern import _core

    old = _core._norm_set_int8_lut(request.param == "table")
    yield request.param
    _core._norm_set_int8_lut(old)


def check_int8(got, q, axis=-1, out_shift=5):
    exact = ref_int8(q, axis, out_shift)
    rounded = np.clip(np.floor(exact + 0.5), -128, 127)
    diff = np.abs(got.astype(np.int64) - rounded)
    assert diff.max(initial=0) <= 1
    # The fixed-point error is below 0.1 LSB: away from ties the result is exactly rounded.
    frac = exact - np.floor(exact)
    far = np.abs(frac - 0.5) > 0.1
    np.testing.assert_array_equal(got[far], rounded[far])


@pytest.mark.parametrize("n", [16, 17, 63, 64, 65, 100, 1000, 4096, 16384])
@pytest.mark.parametrize("out_shift", [0, 5, 7])
def test_int8_within_one_lsb_of_correctly_rounded(n, out_shift, rng, int8_path):
    q = rng.integers(-128, 128, (4, n), dtype=np.int8)
    q[1] = np.clip(rng.normal(0, 3, n), -128, 127).astype(np.int8)  # narrow spread
    q[2] = rng.choice(np.array([-128, 127], dtype=np.int8), n)  # extremes
    q[3] = 5
    q[3, n // 2] = 6  # one element off: the smallest non-zero T, the largest gamma
    got = numkern.l1_norm_int8(q, out_shift=out_shift)
    assert got.dtype == np.int8
    check_int8(got, q, out_shift=out_shift)


def test_int8_exact_rational_reference_agrees_with_float64_reference(rng):
    q = rng.integers(-128, 128, (1, 37), dtype=np.int8)
    x = [int(v) for v in q[0]]
    n, S = len(x), sum(x)
    T = sum(abs(n * v - S) for v in x)
    exact = [float(Fraction(32 * n * (n * v - S), T)) for v in x]
    np.testing.assert_array_equal(ref_int8(q)[0], exact)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 15, 65536])
def test_int8_short_and_longest_slices(n, rng, int8_path):
    q = rng.integers(-128, 128, (3, n), dtype=np.int8)
    check_int8(numkern.l1_norm_int8(q), q)


def test_int8_constant_slice_gives_zero():
    q = np.full((2, 40), -7, dtype=np.int8)
    np.testing.assert_array_equal(numkern.l1_norm_int8(q), np.zeros((2, 40), np.int8))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_int8_any_axis_layout_and_out(axis, rng, int8_path):
    base = rng.integers(-128, 128, (1100, 1030), dtype=np.int8)[::-1]
    for q in (base, np.asfortranarray(base), base[::-1, ::3], base[3:40, 5:1100]):
        got = numkern.l1_norm_int8(q, axis=axis)
        check_int8(got, q, axis=axis)
        out = np.zeros(q.shape, np.int8)
        assert numkern.l1_norm_int8(q, axis=axis, out=out) is out
        np.testing.assert_array_equal(out, got)
        inplace = q.copy()
        numkern.l1_norm_int8(inplace, axis=axis, out=inplace)
        np.testing.assert_array_equal(inplace, got)


def test_int8_large_output_streams_correctly(rng, int8_path):
    q = rng.integers(-128, 128, (4097, 4097), dtype=np.int8)
    out = np.full((4097, 4097), 99, dtype=np.int8)
    numkern.l1_norm_int8(q[1:, 1:], out=out[1:, 1:])
    check_int8(out[1:, 1:], q[1:, 1:])
    assert np.all(out[:, 0] == 99) and np.all(out[0] == 99)


@pytest.mark.isa_independent
def test_int8_bad_arguments_raise_and_do_not_mutate():
    q = np.arange(12, dtype=np.int8).reshape(3, 4)
    keep = q.copy()
    with pytest.raises(TypeError, match="int8"):
        numkern.l1_norm_int8(q.astype(np.int16))
    with pytest.raises(TypeError, match="int8"):
        numkern.l1_norm_int8(q.astype(np.float32))
    with pytest.raises(ValueError, match="out_shift"):
        numkern.l1_norm_int8(q, out_shift=8)
    with pytest.raises(ValueError, match="out_shift"):
        numkern.l1_norm_int8(q, out_shift=-1)
    with pytest.raises(TypeError, match="out_shift"):
        numkern.l1_norm_int8(q, out_shift=True)
    with pytest.raises(ValueError, match="0-d"):
        numkern.l1_norm_int8(np.int8(3))
    with pytest.raises(AxisError):
        numkern.l1_norm_int8(q, axis=5)
    with pytest.raises(ValueError, match="2\\*\\*16"):
        numkern.l1_norm_int8(np.zeros(65537, np.int8))
    with pytest.raises(TypeError, match="dtype"):
        numkern.l1_norm_int8(q, out=np.empty((3, 4), np.int16))
    with pytest.raises(ValueError, match="shape"):
        numkern.l1_norm_int8(q, out=np.empty((4, 3), np.int8))
    np.testing.assert_array_equal(q, keep)


@pytest.mark.parametrize("fn,l1", FORWARD, ids=FWD_IDS)
@pytest.mark.parametrize("bwd", [False, True], ids=["forward", "backward"])
def test_huge_and_denormal_finite_slices_are_normalized_not_zeroed(fn, l1, bwd):
    # Found by fuzzing: the in-block float sums overflowed on finite slices ([0, 0, 3e38] float32
    # gave zeros; layer_norm already at |x| ~ 1e20, whose squares overflow float32), and a denormal
    # slice with eps=0 overflowed the reciprocal spread (outputs +-inf instead of +-1).
    cases = [
        (np.array([0, 0, 3e38], np.float32), 1e-5),
        (np.array([1e20, -1e20, 0, 5e19], np.float32), 1e-5),
        (np.array([1e308, -1e308, 1e308, 0]), 1e-5),
        (np.array([0, 1e-45, 0, 3e-45], np.float32), 0.0),
        (np.tile(np.array([3e38, -3e38, 1e38], np.float32), 700), 1e-5),
    ]
    for x, eps in cases:
        x2 = np.stack([x, x[::-1]])
        # The float64 reference overflows too: it runs on x * 2^-e with eps scaled to match.
        e = int(np.frexp(np.abs(x).max())[1])
        xs, es = np.ldexp(x2.astype(np.float64), -e), np.ldexp(eps, -e if l1 else -2 * e)
        if not bwd:
            assert_close(fn(x2, eps=eps), ref_forward(xs, eps=es, l1=l1), x.dtype, 4)
        else:
            dy = np.linspace(-1, 1, x2.size).reshape(x2.shape).astype(x.dtype)
            bfn = numkern.l1_norm_backward if l1 else numkern.layer_norm_backward
            dx, dw, db = bfn(dy, x2, eps=eps, weight=np.full(x.size, 2.0, x.dtype))
            rdx, rdw, rdb = ref_backward(dy, xs, weight=np.full(x.size, 2.0), eps=es, l1=l1)
            with np.errstate(over="ignore"):
                rdx = np.ldexp(rdx, -e).astype(x.dtype)  # dx scales as 1 / spread; may overflow x's type
            s = np.abs(rdx[np.isfinite(rdx)]).max(initial=1.0)
            np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4 * s)
            np.testing.assert_allclose(dw, rdw, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n", [3, 100, 1000, 4099, 100000])
def test_constant_float32_slices_give_exactly_the_bias_and_a_plain_gradient(n):
    # Found by fuzzing: float32 sums within blocks left the mean of a constant slice off by its
    # rounding error, so l1_norm(full(1000, 1.514f)) gave 0.024 instead of the documented 0 (b),
    # and the L1 backward took sign(d) = +-1 instead of 0 (dx off by 0.4%).
    x = np.full(n, 1.5140251, np.float32)
    b = np.full(n, 0.25, np.float32)
    for fn in (numkern.l1_norm, numkern.layer_norm):
        np.testing.assert_array_equal(fn(x, bias=b), b)
        assert np.isnan(fn(x, eps=0.0)).all()
    dy = np.zeros(n, np.float32)
    dy[-1] = 1
    for bfn in (numkern.l1_norm_backward, numkern.layer_norm_backward):
        dx = bfn(dy, x)[0]
        want = (dy - dy.mean()) / (1e-5 if bfn is numkern.l1_norm_backward else np.sqrt(1e-5))
        np.testing.assert_allclose(dx, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("fn", [numkern.l1_norm_backward, numkern.layer_norm_backward])
def test_float16_results_beyond_its_range_are_infinities_without_a_warning(fn, isa):
    # Computed in float32 and cast: |dx| is 2.5e7 (L1) or 7.9e4 (L2) here, beyond float16's 65504.
    x = np.zeros(2, dtype=np.float16)
    dy = np.array([0.0, 500.0], dtype=np.float16)
    dx, _, _ = fn(dy, x, 0)  # pytest turns a warning into an error
    assert dx.dtype == np.float16
    assert np.isinf(dx).all() and dx[0] < 0 < dx[1]
