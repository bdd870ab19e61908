"""numkern.l1_norm (centred or not) / layer_norm / rms_norm / their backward passes / l1_norm_int8
against float64 and exact integer references, on every ISA level (see conftest.py)."""

import functools
from fractions import Fraction

import numpy as np
import pytest

import numkern
from numkern._validate import AxisError

# ---------------------------------------------------------------- references (float64 / int64)


CENTERED = {"l1": True, "l2": True, "l1u": False, "rms": False}
IS_L1 = {"l1": True, "l2": False, "l1u": True, "rms": False}


def default_eps(kind):
    return 1e-6 if kind == "rms" else 1e-5  # as the functions' defaults (rms_norm: torch's 1e-6)


def ref_forward(x, axis=-1, weight=None, bias=None, eps=None, kind="l1"):
    eps = default_eps(kind) if eps is None else eps
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    if CENTERED[kind]:
        # The mean in extended precision (x87 long double) so that offset data is referenced exactly.
        d = (x.astype(np.longdouble) - x.astype(np.longdouble).mean(axis=-1, keepdims=True)).astype(np.float64)
    else:
        d = x
    if IS_L1[kind]:
        spread = np.abs(d).mean(axis=-1, keepdims=True) + eps
    else:
        spread = np.sqrt((d * d).mean(axis=-1, keepdims=True) + eps)
    y = d / spread
    if weight is not None:
        y = y * np.asarray(weight, dtype=np.float64)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)
    return np.moveaxis(y, -1, axis)


def ref_backward(dy, x, axis=-1, weight=None, eps=None, kind="l1"):
    eps = default_eps(kind) if eps is None else eps
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    dy = np.moveaxis(np.asarray(dy, dtype=np.float64), axis, -1)
    n = x.shape[-1]
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    centered = CENTERED[kind]
    d = x - x.mean(axis=-1, keepdims=True) if centered else x
    if IS_L1[kind]:
        D = np.abs(d).mean(axis=-1, keepdims=True) + eps
        xh = d / D
        sg = np.sign(d)
        dev = sg - sg.mean(axis=-1, keepdims=True) if centered else sg
    else:
        D = np.sqrt((d * d).mean(axis=-1, keepdims=True) + eps)
        xh = d / D
        dev = xh
    g = dy * w
    mean_g = g.mean(axis=-1, keepdims=True) if centered else 0.0
    dx = (g - mean_g - (g * xh).mean(axis=-1, keepdims=True) * dev) / D
    red = tuple(range(x.ndim - 1))
    return np.moveaxis(dx, -1, axis), (dy * xh).sum(axis=red), dy.sum(axis=red)


def ref_int8(q, axis=-1, out_shift=5, center=True):
    """The exact rational value 2^s * n * d / T per element (as float64: exact to 2^-40 here), with
    d = n x - sum(x) (centred) or n x."""
    x = np.moveaxis(q.astype(np.int64), axis, -1)
    n = x.shape[-1]
    d = n * x - x.sum(axis=-1, keepdims=True) if center else n * x
    T = np.abs(d).sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(T == 0, 0.0, (2.0**out_shift * n) * d / np.where(T == 0, 1, T))
    return np.moveaxis(v, -1, axis)


TOL = {np.float32: 2e-5, np.float64: 1e-12}


def assert_close(got, ref, dtype, scale=1.0):
    got = np.asarray(got, dtype=np.float64)
    tol = TOL[np.dtype(dtype).type] * scale
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol, equal_nan=True)


FORWARD = [
    (numkern.l1_norm, "l1"),
    (numkern.layer_norm, "l2"),
    (functools.partial(numkern.l1_norm, center=False), "l1u"),
    (numkern.rms_norm, "rms"),
]
FWD_IDS = [k for _, k in FORWARD]


def _three(dx_dw_db):
    """rms_norm_backward returns (dx, dweight); the others (dx, dweight, dbias)."""
    return tuple(dx_dw_db) + (None,) * (3 - len(dx_dw_db))


BACKWARD = [
    (numkern.l1_norm_backward, "l1"),
    (numkern.layer_norm_backward, "l2"),
    (lambda *a, **k: numkern.l1_norm_backward(*a, center=False, **k), "l1u"),
    (lambda *a, **k: _three(numkern.rms_norm_backward(*a, **k)), "rms"),
]

# ---------------------------------------------------------------- float forward


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 17, 31, 64, 100, 1023, 4096, 5000])
def test_forward_matches_float64_reference(fn, kind, dtype, n, rng):
    x = (rng.standard_normal((5, n)) * 3 + 0.5).astype(dtype)
    assert_close(fn(x), ref_forward(x, kind=kind), dtype)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_with_weight_and_bias_matches_reference(fn, kind, dtype, rng):
    x = rng.standard_normal((6, 129)).astype(dtype)
    w = rng.standard_normal(129).astype(dtype)
    b = rng.standard_normal(129).astype(dtype)
    assert_close(fn(x, weight=w), ref_forward(x, weight=w, kind=kind), dtype, 4)
    if kind == "rms":  # no bias: torch.nn.functional.rms_norm has none
        with pytest.raises(TypeError, match="bias"):
            fn(x, bias=b)
        return
    assert_close(fn(x, weight=w, bias=b), ref_forward(x, weight=w, bias=b, kind=kind), dtype, 4)
    assert_close(fn(x, bias=b), ref_forward(x, bias=b, kind=kind), dtype, 4)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_forward_any_axis_and_layout(fn, kind, axis, rng):
    base = rng.standard_normal((7, 9, 11))
    for x in (base, np.asfortranarray(base), base[::-1, ::2, ::-3], base.transpose(2, 0, 1)):
        assert_close(fn(x, axis=axis), ref_forward(x, axis=axis, kind=kind), np.float64)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_unaligned_input_and_output(fn, kind, rng):
    raw = rng.standard_normal(300).astype(np.float32)
    buf = np.zeros(4 * 300 + 1, dtype=np.uint8)
    x = buf[1:].view(np.float32)  # not even 4-byte aligned: the wrapper copies it
    x[:] = raw
    assert not x.flags.aligned
    keep = buf.copy()
    out_buf = np.zeros(301, dtype=np.float32)
    out = out_buf[1:]  # 4-byte aligned but not vector aligned
    fn(x, out=out)
    assert_close(out, ref_forward(raw, kind=kind), np.float32)
    assert out_buf[0] == 0
    np.testing.assert_array_equal(buf, keep)
    misaligned_out = np.zeros(4 * 300 + 1, dtype=np.uint8)[1:].view(np.float32)
    fn(raw, out=misaligned_out)
    assert_close(misaligned_out, ref_forward(raw, kind=kind), np.float32)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_large_output_streams_correctly(fn, kind, rng):
    # >= 16 MiB of output takes the non-temporal-store path; an offset view misaligns each row.
    x = rng.standard_normal((1025, 4097), dtype=np.float32)
    w = rng.standard_normal(4096, dtype=np.float32)
    out = np.full((1025, 4097), 7.0, dtype=np.float32)
    fn(x[:, 1:], weight=w, out=out[:, 1:])
    assert_close(out[:, 1:], ref_forward(x[:, 1:], weight=w, kind=kind), np.float32, 4)
    assert np.all(out[:, 0] == 7.0)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_offset_data_keeps_accuracy(fn, kind, rng):
    x32 = (1e3 + rng.standard_normal((4, 777))).astype(np.float32)
    # float32 input carries ~6e-5 absolute precision at 1e3; the kernel adds no more than that.
    assert_close(fn(x32), ref_forward(x32, kind=kind), np.float32, 5)
    x64 = 1e6 + rng.standard_normal((4, 777))
    assert_close(fn(x64), ref_forward(x64, kind=kind), np.float64, 100)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_special_values_poison_only_their_slice(fn, kind):
    x = np.ones((5, 33), dtype=np.float32)
    x[:, ::2] = -1.0
    x[0, 3] = np.nan
    x[1, 4] = np.inf
    x[2, 5] = -np.inf
    x[3, 6] = 1e-40  # denormal: an ordinary value
    y = fn(x)
    assert np.all(np.isnan(y[:3]))
    assert np.all(np.isfinite(y[3:]))
    assert_close(y[3:], ref_forward(x[3:], kind=kind), np.float32)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_constant_slice_gives_bias_or_nan_without_eps(fn, kind):
    # A constant slice has no deviation from its mean; an uncentred norm sees none in zeros only.
    x = np.full((2, 10), 3.25) if CENTERED[kind] else np.zeros((2, 10))
    b = np.arange(10.0)
    if kind == "rms":
        np.testing.assert_array_equal(fn(x), np.zeros((2, 10)))
    else:
        np.testing.assert_array_equal(fn(x, bias=b), np.broadcast_to(b, (2, 10)))
    assert np.all(np.isnan(fn(x, eps=0.0)))
    if not CENTERED[kind]:
        np.testing.assert_array_equal(fn(np.full((2, 10), -3.25), eps=0.0), np.full((2, 10), -1.0))


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_dtype_policy_and_out(fn, kind, rng):
    x16 = rng.standard_normal((3, 20)).astype(np.float16)
    y16 = fn(x16)
    assert y16.dtype == np.float16
    np.testing.assert_allclose(y16.astype(np.float64), ref_forward(x16, kind=kind), rtol=2e-3, atol=2e-3)
    xi = rng.integers(-50, 50, (3, 20))
    yi = fn(xi)
    assert yi.dtype == np.float64
    assert_close(yi, ref_forward(xi, kind=kind), np.float64)
    out16 = np.empty((3, 20), np.float16)
    assert fn(x16, out=out16) is out16
    np.testing.assert_array_equal(out16, y16)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_in_place_and_strided_in_place(fn, kind, rng):
    x = rng.standard_normal((8, 50))
    ref = ref_forward(x, kind=kind)
    y = x.copy()
    assert fn(y, out=y) is y
    assert_close(y, ref, np.float64)
    z = np.asfortranarray(x)
    fn(z, axis=-1, out=z)
    assert_close(z, ref, np.float64)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_overlapping_out_reads_original_input(fn, kind, rng):
    buf = rng.standard_normal(101)
    x, out = buf[:100], buf[1:]
    ref = ref_forward(x.copy(), kind=kind)
    fn(x, out=out)
    assert_close(out, ref, np.float64)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_empty_and_length_one(fn, kind):
    assert fn(np.zeros((0, 5), np.float32)).shape == (0, 5)
    assert fn(np.zeros((3, 0))).shape == (3, 0)
    one = np.array([[2.0], [-5.0]])
    if CENTERED[kind]:
        np.testing.assert_array_equal(fn(one), np.zeros((2, 1)))
    else:
        assert_close(fn(one), ref_forward(one, kind=kind), np.float64)


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_result_independent_of_thread_count(fn, kind, rng):
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
@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
def test_forward_bad_arguments_raise_and_do_not_mutate(fn, kind):
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
    with pytest.raises((ValueError, TypeError), match="shape|bias"):
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


@pytest.mark.parametrize("fn,kind", BACKWARD, ids=FWD_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 5, 16, 33, 1000])
def test_backward_matches_float64_reference(fn, kind, dtype, n, rng):
    x = rng.standard_normal((7, n)).astype(dtype)
    dy = rng.standard_normal((7, n)).astype(dtype)
    w = rng.standard_normal(n).astype(dtype)
    for weight in (None, w):
        dx, dw, db = fn(dy, x, weight=weight)
        rdx, rdw, rdb = ref_backward(dy, x, weight=weight, kind=kind)
        assert dx.dtype == dtype and dw.shape == (n,) and (db is None or db.shape == (n,))
        assert_close(dx, rdx, dtype, 10)
        assert_close(dw, rdw, dtype, 10)
        if db is not None:  # rms_norm has no bias
            assert_close(db, rdb, dtype, 10)


@pytest.mark.parametrize("fwd,bwd,kind", [(f, b, k) for (f, k), (b, _) in zip(FORWARD, BACKWARD)], ids=FWD_IDS)
def test_backward_matches_finite_differences(fwd, bwd, kind, rng):
    x = rng.standard_normal((3, 9))
    w = rng.standard_normal(9)
    b = rng.standard_normal(9)
    dy = rng.standard_normal((3, 9))
    dx, dw, db = bwd(dy, x, weight=w, eps=1e-3)

    def loss(xv, wv, bv):
        y = fwd(xv, weight=wv, eps=1e-3) if kind == "rms" else fwd(xv, weight=wv, bias=bv, eps=1e-3)
        return float((y * dy).sum())

    h = 1e-6
    num_dx = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num_dx[idx] = (loss(xp, w, b) - loss(xm, w, b)) / (2 * h)
    num_dw = np.array([(loss(x, w + h * e, b) - loss(x, w - h * e, b)) / (2 * h) for e in np.eye(9)])
    np.testing.assert_allclose(dx, num_dx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, num_dw, rtol=1e-5, atol=1e-6)
    if db is not None:
        num_db = np.array([(loss(x, w, b + h * e) - loss(x, w, b - h * e)) / (2 * h) for e in np.eye(9)])
        np.testing.assert_allclose(db, num_db, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn,kind", BACKWARD, ids=FWD_IDS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_backward_any_axis_strided_and_in_place(fn, kind, axis, rng):
    x = rng.standard_normal((6, 10, 8))[:, ::-2, :]
    dy = np.asfortranarray(rng.standard_normal((6, 5, 8)))
    rdx, rdw, rdb = ref_backward(dy, x, axis=axis, kind=kind)
    dx, dw, db = fn(dy, x, axis=axis)
    assert_close(dx, rdx, np.float64, 10)
    assert_close(dw, rdw, np.float64, 10)
    if db is not None:  # rms_norm has no bias
        assert_close(db, rdb, np.float64, 10)
    dy2 = dy.copy(order="A")
    dx2, _, _ = fn(dy2, x, axis=axis, out=dy2)
    assert dx2 is dy2
    assert_close(dy2, rdx, np.float64, 10)


@pytest.mark.parametrize("fn,kind", BACKWARD, ids=FWD_IDS)
def test_backward_multithreaded_parameter_gradients(fn, kind, rng):
    x = rng.standard_normal((512, 96)).astype(np.float32)
    dy = rng.standard_normal((512, 96)).astype(np.float32)
    rdx, rdw, rdb = ref_backward(dy, x, kind=kind)
    dx, dw, db = fn(dy, x)
    assert_close(dx, rdx, np.float32, 10)
    assert_close(dw, rdw, np.float32, 100)
    if db is not None:  # rms_norm has no bias
        assert_close(db, rdb, np.float32, 100)


@pytest.mark.isa_independent
@pytest.mark.parametrize("fn,kind", BACKWARD, ids=FWD_IDS)
def test_backward_bad_arguments_raise(fn, kind):
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


def check_int8(got, q, axis=-1, out_shift=5, center=True):
    exact = ref_int8(q, axis, out_shift, center)
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


@pytest.mark.parametrize("n", [1, 2, 16, 17, 100, 1000, 4096, 65536])
@pytest.mark.parametrize("out_shift", [0, 5, 7])
def test_int8_uncentered_within_one_lsb_of_correctly_rounded(n, out_shift, rng, int8_path):
    q = rng.integers(-128, 128, (5, n), dtype=np.int8)
    q[1] = np.clip(rng.normal(0, 3, n), -128, 127).astype(np.int8)  # narrow spread
    q[2] = rng.choice(np.array([-128, 127], dtype=np.int8), n)  # extremes
    q[3] = 0
    q[3, n // 2] = 1  # the smallest non-zero sum|x|: the largest gamma
    q[4] = np.abs(q[4]).clip(0, 127)  # all of one sign, no cancellation in sum(x)
    got = numkern.l1_norm_int8(q, out_shift=out_shift, center=False)
    assert got.dtype == np.int8
    check_int8(got, q, out_shift=out_shift, center=False)
    for axis, view in ((0, q.T), (-1, q[:, ::-2])):
        check_int8(numkern.l1_norm_int8(view, axis=axis, center=False), view, axis=axis, center=False)


def test_int8_uncentered_reference_is_the_exact_rational_and_zeros_give_zero(rng):
    q = rng.integers(-128, 128, (1, 37), dtype=np.int8)
    x = [int(v) for v in q[0]]
    A = sum(abs(v) for v in x)
    np.testing.assert_array_equal(ref_int8(q, center=False)[0], [float(Fraction(32 * 37 * v, A)) for v in x])
    np.testing.assert_array_equal(numkern.l1_norm_int8(np.zeros((2, 9), np.int8), center=False), 0)
    with pytest.raises(TypeError, match="center"):
        numkern.l1_norm_int8(q, center=1)


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


@pytest.mark.parametrize("fn,kind", FORWARD, ids=FWD_IDS)
@pytest.mark.parametrize("bwd", [False, True], ids=["forward", "backward"])
def test_huge_and_denormal_finite_slices_are_normalized_not_zeroed(fn, kind, bwd):
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
        xs, es = np.ldexp(x2.astype(np.float64), -e), np.ldexp(eps, -e if IS_L1[kind] else -2 * e)
        if not bwd:
            assert_close(fn(x2, eps=eps), ref_forward(xs, eps=es, kind=kind), x.dtype, 4)
        else:
            dy = np.linspace(-1, 1, x2.size).reshape(x2.shape).astype(x.dtype)
            bfn = dict((k, f) for f, k in BACKWARD)[kind]
            dx, dw, _ = bfn(dy, x2, eps=eps, weight=np.full(x.size, 2.0, x.dtype))
            rdx, rdw, rdb = ref_backward(dy, xs, weight=np.full(x.size, 2.0), eps=es, kind=kind)
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
