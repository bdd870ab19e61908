"""ShiftQuant and the int8 GEMM against plain NumPy references (int64 products, float32 rounding
steps reproduced in NumPy, exact products of dequantized operands rounded once to float64)."""

import numpy as np
import pytest
from _reference import matmul_exact
from hypothesis import given, settings
from hypothesis import strategies as st

import numkern
from numkern import quant as Q
from numkern._validate import AxisError as AXES_ERROR  # numpy.exceptions.AxisError (np.AxisError before 1.25)
from numkern.quant import MAX_K_INT32, ShiftQuantTensor


def ref_i64(a, b):
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


# ------------------------------------------------------------------------------------ int8_matmul


@pytest.mark.parametrize(
    "shape",
    [(1, 1, 1), (3, 5, 7), (13, 37, 45), (12, 32, 32), (25, 1030, 33), (131, 2049, 67), (300, 70, 5), (5, 64, 500)],
)
def test_int8_matmul_is_exact_on_random_and_odd_shapes(rng, shape):
    M, K, N = shape
    a = rng.integers(-128, 128, (M, K), dtype=np.int8)
    b = rng.integers(-128, 128, (K, N), dtype=np.int8)
    out = Q.int8_matmul(a, b)
    assert out.dtype == np.int32 and out.shape == (M, N)
    np.testing.assert_array_equal(out, ref_i64(a, b))


@pytest.mark.parametrize("value_a,value_b", [(-128, -128), (127, 127), (-128, 127), (127, -128)])
@pytest.mark.parametrize("K", [1, 3, 4097, MAX_K_INT32, MAX_K_INT32 + 1, 1 << 17])
def test_int8_matmul_is_exact_at_extreme_values_up_to_k_2_17(value_a, value_b, K):
    a = np.full((3, K), value_a, np.int8)
    b = np.full((K, 5), value_b, np.int8)
    out = Q.int8_matmul(a, b)
    assert out.dtype == (np.int32 if K <= MAX_K_INT32 else np.int64)
    np.testing.assert_array_equal(out, np.full((3, 5), K * value_a * value_b, np.int64))


def test_int8_matmul_is_exact_on_mixed_extremes_with_long_k(rng):
    K = (1 << 17) + 5
    a = rng.choice(np.array([-128, 127, -127], np.int8), size=(4, K))
    b = rng.choice(np.array([-128, 127, -127], np.int8), size=(K, 3))
    np.testing.assert_array_equal(Q.int8_matmul(a, b), ref_i64(a, b))
    np.testing.assert_array_equal(Q.int8_matmul(a, b, out_dtype=np.int64), ref_i64(a, b))


def test_int8_matmul_forced_int32_raises_on_overflow_and_is_exact_otherwise():
    K = 1 << 17
    with pytest.raises(OverflowError):
        Q.int8_matmul(np.full((2, K), -128, np.int8), np.full((K, 2), -128, np.int8), out_dtype=np.int32)
    out = Q.int8_matmul(np.full((2, K), 127, np.int8), np.full((K, 2), -127, np.int8), out_dtype=np.int32)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, np.full((2, 2), -K * 127 * 127))


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 30),
    k=st.integers(1, 70),
    n=st.integers(1, 70),
    seed=st.integers(0, 2**32 - 1),
    extreme=st.booleans(),
)
def test_int8_matmul_is_exact_for_any_shape(m, k, n, seed, extreme):
    r = np.random.default_rng(seed)
    pool = np.array([-128, -127, 127], np.int8) if extreme else None
    if extreme:
        a, b = r.choice(pool, size=(m, k)), r.choice(pool, size=(k, n))
    else:
        a = r.integers(-128, 128, (m, k), dtype=np.int8)
        b = r.integers(-128, 128, (k, n), dtype=np.int8)
    np.testing.assert_array_equal(Q.int8_matmul(a, b), ref_i64(a, b))


def test_int8_matmul_batched_and_non_contiguous_inputs(rng):
    a = rng.integers(-128, 128, (2, 3, 40, 90), dtype=np.int8)[:, ::2, ::3, 1:]
    bt = rng.integers(-128, 128, (33, 89), dtype=np.int8)
    b = bt.T  # Fortran order
    a_copy, b_copy = a.copy(), b.copy()
    out = Q.int8_matmul(a, b)
    assert out.shape == a.shape[:-1] + (33,)
    np.testing.assert_array_equal(out, ref_i64(a, b))
    np.testing.assert_array_equal(a, a_copy)
    np.testing.assert_array_equal(b, b_copy)


def test_int8_matmul_empty_shapes():
    assert Q.int8_matmul(np.zeros((0, 4), np.int8), np.zeros((4, 3), np.int8)).shape == (0, 3)
    assert Q.int8_matmul(np.zeros((2, 4), np.int8), np.zeros((4, 0), np.int8)).shape == (2, 0)
    np.testing.assert_array_equal(Q.int8_matmul(np.zeros((2, 0), np.int8), np.zeros((0, 3), np.int8)), 0)


def test_int8_matmul_does_not_depend_on_thread_count(rng):
    a = rng.integers(-128, 128, (97, 300), dtype=np.int8)
    b = rng.integers(-128, 128, (300, 130), dtype=np.int8)
    before = numkern.get_num_threads()
    try:
        numkern.set_num_threads(1)
        one = Q.int8_matmul(a, b)
    finally:
        numkern.set_num_threads(before)
    np.testing.assert_array_equal(one, Q.int8_matmul(a, b))
    np.testing.assert_array_equal(one, ref_i64(a, b))


@pytest.mark.parametrize("shape", [(600, 1024, 256), (16, 4096, 2048), (26, MAX_K_INT32 + 2, 40)])
def test_int8_matmul_is_exact_when_split_across_threads(rng, shape):
    # Large enough that both cores get work: by rows, by columns (few rows), and in int64.
    M, K, N = shape
    a = rng.integers(-128, 128, (M, K), dtype=np.int8)
    b = rng.integers(-128, 128, (K, N), dtype=np.int8)
    a[0, :] = -128
    b[:, 0] = -128
    np.testing.assert_array_equal(Q.int8_matmul(a, b), ref_i64(a, b))


@pytest.mark.parametrize("shape", [(1, 3001, 4100), (5, 2053, 131), (24, 4099, 67), (2, 7, 193), (13, 600, 64)])
@pytest.mark.parametrize("threads", [1, 2])
def test_int8_matmul_few_rows_is_exact_at_any_thread_count(rng, shape, threads):
    # A few rows of A: B goes in chunks of rows (ragged in K and in N's 64-column groups), each
    # thread summing its chunks; the extreme row and column stress the unsigned-offset correction.
    M, K, N = shape
    a = rng.integers(-128, 128, (M, K), dtype=np.int8)
    b = rng.integers(-128, 128, (K, N), dtype=np.int8)
    a[-1, :] = -128
    b[:, -1] = -128
    b[: K // 2, 0] = 127
    with numkern.thread_limit(threads):
        out = Q.int8_matmul(a, b)
        wide = Q.int8_matmul(a, b, out_dtype=np.int64)
    np.testing.assert_array_equal(out, ref_i64(a, b))
    np.testing.assert_array_equal(wide, ref_i64(a, b))


@pytest.mark.isa_independent
def test_int8_matmul_rejects_bad_input():
    a = np.zeros((3, 4), np.int8)
    with pytest.raises(TypeError, match="int8"):
        Q.int8_matmul(a.astype(np.int16), np.zeros((4, 2), np.int8))
    with pytest.raises(TypeError, match="int8"):
        Q.int8_matmul(a, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="inner"):
        Q.int8_matmul(a, np.zeros((5, 2), np.int8))
    with pytest.raises(ValueError):
        Q.int8_matmul(np.zeros(4, np.int8), np.zeros((4, 2), np.int8))
    with pytest.raises(ValueError):
        Q.int8_matmul(a, np.zeros((2, 4, 2), np.int8))
    with pytest.raises(TypeError, match="out_dtype"):
        Q.int8_matmul(a, np.zeros((4, 2), np.int8), out_dtype=np.float32)


# ------------------------------------------------------------------------------------ shiftquant


def ref_exponent(r, R, n_groups):
    """floor(log2(R / r)) clamped to n_groups - 1, exact via frexp; n_groups - 1 for r == 0."""
    r = np.asarray(r, np.float32)
    mR, eR = np.frexp(np.float32(R))
    mr, er = np.frexp(np.where(r > 0, r, np.float32(1)))
    d = eR - er - (mR < mr)
    return np.where(r > 0, np.minimum(d, n_groups - 1), n_groups - 1).astype(np.uint8)


def channel_ref(x, bits, axis, n_groups):
    x = np.asarray(x, np.float32)
    Qm = (1 << (bits - 1)) - 1
    other = tuple(i for i in range(x.ndim) if i != axis)
    r = np.abs(x).max(axis=other) if x.size else np.zeros(x.shape[axis], np.float32)
    R = r.max()
    e = ref_exponent(r, R, n_groups)
    base = np.float32(R) / np.float32(Qm)
    view = [1] * x.ndim
    view[axis] = -1
    f = np.ldexp(np.float32(1), e.astype(np.int32)).astype(np.float32).reshape(view)
    t = (x * f) / base
    return e, base, np.clip(t, -Qm, Qm).astype(np.float32)


@pytest.mark.parametrize("bits", [4, 6, 8])
@pytest.mark.parametrize("shape,axis", [((64, 48), -1), ((64, 48), 0), ((3, 17, 5), 1), ((37,), 0), ((2, 3, 33), 2)])
def test_shiftquant_nearest_matches_the_definition(rng, bits, shape, axis):
    scales = np.logspace(-3, 0, shape[axis])
    view = [1] * len(shape)
    view[axis] = -1
    x = (rng.standard_normal(shape) * scales.reshape(view)).astype(np.float32)
    t = Q.shiftquant(x, bits, axis=axis)
    ax = axis % len(shape)
    G = Q.DEFAULT_N_GROUPS[bits]
    e, base, tt = channel_ref(x, bits, ax, G)
    assert isinstance(t, ShiftQuantTensor) and t.rounding == "nearest" and t.granularity == "channel"
    assert t.axis == ax and t.bits == bits and t.n_groups == G and t.shape == shape
    assert t.nbytes == t.qdata.nbytes + t.shift.nbytes + 4
    assert t.qdata.dtype == np.int8 and t.shift.dtype == np.uint8 and t.base_scale.dtype == np.float32
    np.testing.assert_array_equal(t.shift, e)
    assert t.base_scale == base
    np.testing.assert_array_equal(t.qdata, np.rint(tt).astype(np.int8))
    s = t.scales()
    err = np.abs(t.dequantize(np.float64) - x.astype(np.float64))
    assert np.all(err <= s / 2 * (1 + 1e-6))


@pytest.mark.parametrize("n_groups", [1, 2, 7, 32])
def test_shiftquant_exponents_clamp_to_n_groups(rng, n_groups):
    x = (rng.standard_normal((16, 40)) * np.logspace(-9, 0, 40)).astype(np.float32)
    x[:, 3] = 0  # an all-zero channel takes the last group
    t = Q.shiftquant(x, 8, n_groups=n_groups)
    e, _, _ = channel_ref(x, 8, 1, n_groups)
    np.testing.assert_array_equal(t.shift, e)
    assert t.shift[3] == n_groups - 1 and t.shift.max() <= n_groups - 1


def test_shiftquant_exponent_is_exact_at_power_of_two_ratios():
    # r_c = R / 2^k exactly and just above/below it: floor(log2(R / r_c)) must not be off by one.
    R = np.float32(3.0)
    cols = [R, R / 2, R / 4, np.nextafter(R / 4, np.float32(1)), np.nextafter(R / 4, np.float32(0)), R / 16]
    x = np.array([cols], np.float32)
    t = Q.shiftquant(x, 4, n_groups=5)
    np.testing.assert_array_equal(t.shift, [0, 1, 2, 1, 2, 4])


@pytest.mark.parametrize("shape,axis,block", [((4, 100), -1, 32), ((70, 6), 0, 32), ((3, 10, 4), 1, 3), ((65,), 0, 64)])
def test_shiftquant_block_granularity_matches_the_definition(rng, shape, axis, block):
    x = (rng.standard_normal(shape) * np.exp(rng.uniform(-6, 0, shape))).astype(np.float32)
    t = Q.shiftquant(x, 4, axis=axis, granularity="block", block_size=block)
    ax = axis % len(shape)
    L = shape[ax]
    nb = -(-L // block)
    xm = np.moveaxis(x, ax, -1)
    pad = np.zeros(xm.shape[:-1] + (nb * block - L,), np.float32)
    r = np.abs(np.concatenate([xm, pad], -1)).reshape(xm.shape[:-1] + (nb, block)).max(-1)
    R = r.max()
    e = ref_exponent(r, R, 5)
    assert t.shift.shape == shape[:ax] + (nb,) + shape[ax + 1 :]
    np.testing.assert_array_equal(np.moveaxis(t.shift, ax, -1), e)
    base = np.float32(R) / np.float32(7)
    assert t.base_scale == base
    f = np.ldexp(np.float32(1), np.repeat(e, block, -1)[..., :L].astype(np.int32)).astype(np.float32)
    q = np.rint(np.clip((xm * f) / base, -7, 7)).astype(np.int8)
    np.testing.assert_array_equal(np.moveaxis(t.qdata, ax, -1), q)
    err = np.abs(t.dequantize(np.float64) - x)
    assert np.all(err <= t.scales() / 2 * (1 + 1e-6))


def test_stochastic_rounding_is_unbiased_with_bounded_variance():
    # 2^16 draws for each of 16 values (one per channel): 2^20 draws in all.
    vals = np.array(
        [1.0, -0.37, 0.123, -0.5, 0.051, 0.999, -0.0033, 0.25, 0.71, -0.9, 0.013, 0.4, -0.61, 0.077, 0.3, -0.2]
    )
    x = np.tile(vals.astype(np.float32), (1 << 16, 1))
    t = Q.shiftquant(x, 4, rounding="stochastic", rng=12345)
    err = t.dequantize(np.float64) - x.astype(np.float64)
    s = t.scales()[0]
    mean = err.mean(axis=0)
    sd = err.std(axis=0)
    se = np.maximum(sd, 1e-30) / np.sqrt(x.shape[0])
    # Exact grid points have no variance; their only error is base_scale's float32 rounding.
    assert np.all(np.abs(mean) <= 4 * se + 2.0**-22 * np.abs(vals))
    assert np.all(err.var(axis=0) <= s**2 / 4 * (1 + 1e-2))
    assert np.all(np.abs(err) < s)  # floor or floor + 1, never further
    overall = err / s
    assert abs(overall.mean()) <= 4 * overall.std() / np.sqrt(overall.size)


def test_stochastic_rounding_follows_numpy_rng_conventions():
    x = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    a = Q.shiftquant(x, 4, rounding="stochastic", rng=7).qdata
    np.testing.assert_array_equal(a, Q.shiftquant(x, 4, rounding="stochastic", rng=7).qdata)
    np.testing.assert_array_equal(a, Q.shiftquant(x, 4, rounding="stochastic", rng=np.random.default_rng(7)).qdata)
    g = np.random.default_rng(7)
    first = Q.shiftquant(x, 4, rounding="stochastic", rng=g).qdata
    second = Q.shiftquant(x, 4, rounding="stochastic", rng=g).qdata  # the generator advanced
    assert not np.array_equal(first, second)
    Q.shiftquant(x, 4, rounding="stochastic", rng=None)
    with numkern.use_isa("scalar"):
        np.testing.assert_array_equal(a, Q.shiftquant(x, 4, rounding="stochastic", rng=7).qdata)
    with pytest.raises(TypeError):
        Q.shiftquant(x, 4, rounding="stochastic", rng="seed")


def test_shiftquant_special_inputs(rng):
    z = Q.shiftquant(np.zeros((3, 4), np.float32), 4)
    assert z.base_scale == 0 and np.all(z.qdata == 0) and np.all(z.shift == 4)
    np.testing.assert_array_equal(z.dequantize(), 0)
    zb = Q.shiftquant(np.zeros((3, 70), np.float32), 4, granularity="block", block_size=32)
    assert zb.base_scale == 0 and np.all(zb.qdata == 0) and np.all(zb.shift == 4) and zb.shift.shape == (3, 3)
    big = np.zeros((600, 1000), np.float32)  # large enough for two threads
    np.testing.assert_array_equal(Q.shiftquant(big, 4, granularity="block", block_size=48).qdata, 0)
    e = Q.shiftquant(np.zeros((0, 4), np.float32), 6)
    assert e.qdata.shape == (0, 4) and e.shift.shape == (4,)
    one = Q.shiftquant(np.array([-2.5], np.float32), 8)
    assert one.qdata[0] == -127 and one.dequantize()[0] == np.float32(-2.5)
    for bad in (np.inf, -np.inf, np.nan):
        x = rng.standard_normal((5, 6)).astype(np.float32)
        x[2, 3] = bad
        with pytest.raises(ValueError, match="finite"):
            Q.shiftquant(x, 4)
    den = np.array([[1e-40, -3e-41], [2e-45, 0.0]], np.float32)  # denormals: no crash, in range
    t = Q.shiftquant(den, 4)
    assert np.all(np.abs(t.qdata) <= 7)


def test_shiftquant_accepts_float64_strided_and_does_not_mutate(rng):
    x = rng.standard_normal((40, 30))
    view = x[::2, ::3]
    copy = view.copy()
    t = Q.shiftquant(view, 6, axis=0)
    np.testing.assert_array_equal(view, copy)
    ref = Q.shiftquant(np.ascontiguousarray(view, np.float32), 6, axis=0)
    np.testing.assert_array_equal(t.qdata, ref.qdata)
    np.testing.assert_array_equal(t.shift, ref.shift)


@pytest.mark.isa_independent
def test_shiftquant_rejects_bad_arguments():
    x = np.ones((4, 4), np.float32)
    for kw in (
        {"bits": 5},
        {"bits": True},
        {"n_groups": 0},
        {"n_groups": 33},
        {"rounding": "up"},
        {"granularity": "row"},
        {"block_size": 0},
    ):
        with pytest.raises(ValueError):
            Q.shiftquant(x, **kw)
    with pytest.raises(TypeError):
        Q.shiftquant(x, n_groups=2.0)
    with pytest.raises(TypeError):
        Q.shiftquant(np.array(["a"]), 4)
    with pytest.raises(AXES_ERROR):
        Q.shiftquant(x, axis=2)
    with pytest.raises(ValueError):
        Q.shiftquant(np.float32(1.0))


# ------------------------------------------------------------------------------------ int4 packing


@pytest.mark.isa_independent
@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_pack_int4_round_trips_and_uses_the_documented_nibble_order(n):
    q = np.random.default_rng(n).integers(-8, 8, (3, n), dtype=np.int8)
    p = Q.pack_int4(q)
    assert p.dtype == np.uint8 and p.shape == (3, (n + 1) // 2)
    np.testing.assert_array_equal(Q.unpack_int4(p, n), q)
    assert Q.pack_int4(np.array([1, -2], np.int8))[0] == 0xE1  # element 0 low nibble, 1 high
    every = np.arange(256, dtype=np.uint8).reshape(2, 8, 16)  # every byte, 3-D
    lo = ((every.astype(np.int16) & 15) ^ 8) - 8
    hi = ((every.astype(np.int16) >> 4) ^ 8) - 8
    np.testing.assert_array_equal(Q.unpack_int4(every), np.stack([lo, hi], -1).reshape(2, 8, 32))
    with pytest.raises(ValueError):
        Q.pack_int4(np.array([8], np.int8))
    with pytest.raises(TypeError):
        Q.unpack_int4(p.astype(np.int8))


def test_packed_tensor_dequantizes_identically(rng):
    x = rng.standard_normal((6, 33)).astype(np.float32)
    t = Q.shiftquant(x, 4, axis=0)
    p = t.pack()
    assert p.packed and p.qdata.dtype == np.uint8 and p.nbytes < t.nbytes
    np.testing.assert_array_equal(p.dequantize(), t.dequantize())
    np.testing.assert_array_equal(p.unpack().qdata, t.qdata)
    with pytest.raises(ValueError):
        Q.shiftquant(x, 8).pack()


# ------------------------------------------------------------------------------------ matmul


def dq_product(a, b):
    """The product of the dequantized operands, exact and rounded once to float64. (A float64 BLAS
    product carries a rounding error that depends on the BLAS kernel NumPy runs, bounded only by
    K u sum|terms| per entry, which at K = 2**17 exceeds the 1e-12 the float64 output is tested to.)"""
    return matmul_exact(a.dequantize(np.float64), b.dequantize(np.float64))


def rel_fro(x, ref):
    den = np.linalg.norm(ref)
    return np.linalg.norm(np.asarray(x, np.float64) - ref) / (den if den else 1.0)


def graded(rng, shape, axis):
    view = [1] * len(shape)
    view[axis] = -1
    return (rng.standard_normal(shape) * np.logspace(-3, 0, shape[axis]).reshape(view)).astype(np.float32)


@pytest.mark.parametrize("bits", [4, 6, 8])
@pytest.mark.parametrize("a_axis,b_axis", [(-1, 0), (-1, 1), (0, 0), (0, 1)])
def test_matmul_equals_float64_product_of_dequantized(rng, bits, a_axis, b_axis):
    a = Q.shiftquant(graded(rng, (37, 71), a_axis), bits, axis=a_axis)
    b = Q.shiftquant(graded(rng, (71, 29), b_axis), bits, axis=b_axis, rounding="stochastic", rng=rng)
    out = Q.matmul(a, b)
    assert out.dtype == np.float32 and out.shape == (37, 29)
    assert rel_fro(out, dq_product(a, b)) <= 1e-6
    out64 = Q.matmul(a, b, out_dtype=np.float64)
    assert rel_fro(out64, dq_product(a, b)) <= 1e-12


@pytest.mark.parametrize("bits,n_groups", [(8, 3), (8, 9), (6, 5), (4, 8)])
def test_matmul_with_groups_beyond_int8_preshift_room(rng, bits, n_groups):
    a = Q.shiftquant(graded(rng, (20, 50), 1), bits, n_groups=n_groups)
    b = Q.shiftquant(graded(rng, (50, 9), 0), bits, axis=0, n_groups=n_groups)
    assert rel_fro(Q.matmul(a, b), dq_product(a, b)) <= 1e-6


def test_matmul_block_granularity_and_batched_a(rng):
    a = Q.shiftquant(graded(rng, (2, 3, 10, 96), 3), 4, granularity="block", block_size=32)
    b = Q.shiftquant(graded(rng, (96, 17), 0), 4, axis=0, granularity="block", block_size=32)
    out = Q.matmul(a, b)
    assert out.shape == (2, 3, 10, 17)
    assert rel_fro(out, dq_product(a, b)) <= 1e-6
    a2 = Q.shiftquant(graded(rng, (4, 10, 96), 0), 6, axis=0)  # groups over a batch axis
    assert rel_fro(Q.matmul(a2, b), dq_product(a2, b)) <= 1e-6


def test_matmul_quantizes_float_operands_on_the_fly(rng):
    x = graded(rng, (33, 64), 1)
    w = graded(rng, (64, 21), 1)
    ta = Q.shiftquant(x, 4)
    tb = Q.shiftquant(w, 4)
    ref = dq_product(ta, tb)
    assert rel_fro(Q.matmul(x, tb), ref) <= 1e-6
    assert rel_fro(Q.matmul(ta, w), ref) <= 1e-6
    assert rel_fro(Q.matmul(x, w, bits=4), ref) <= 1e-6
    t8a, t8b = Q.shiftquant(x, 8), Q.shiftquant(w, 8)
    assert rel_fro(Q.matmul(x, w), dq_product(t8a, t8b)) <= 1e-6


def test_matmul_packed_int4_operands(rng):
    a = Q.shiftquant(graded(rng, (19, 40), 1), 4)
    b = Q.shiftquant(graded(rng, (40, 13), 1), 4)
    np.testing.assert_array_equal(Q.matmul(a.pack(), b.pack()), Q.matmul(a, b))


def test_matmul_with_k_beyond_int32_bound_is_exact(rng):
    K = MAX_K_INT32 + 4
    x = rng.standard_normal((2, K)).astype(np.float32)
    x[:, :3] = 50.0
    w = np.full((K, 3), -1.0, np.float32)
    a, b = Q.shiftquant(x, 8), Q.shiftquant(w, 8, axis=0)
    assert rel_fro(Q.matmul(a, b, out_dtype=np.float64), dq_product(a, b)) <= 1e-12


@pytest.mark.isa_independent
def test_matmul_rejects_bad_input():
    a = Q.shiftquant(np.ones((3, 4), np.float32), 4)
    with pytest.raises(ValueError, match="inner"):
        Q.matmul(a, Q.shiftquant(np.ones((5, 2), np.float32), 4))
    with pytest.raises(ValueError):
        Q.matmul(a, np.ones((4, 2, 2), np.float32))
    with pytest.raises(TypeError, match="out_dtype"):
        Q.matmul(a, np.ones((4, 2), np.float32), out_dtype=np.int32)


# ------------------------------------------------------------------------------------ statistics


def synthetic_gradient(rng, rows=256, channels=128):
    """Gradient-like tensor: heavy-tailed rows, channel ranges log-uniform over 3 decades."""
    ranges = 10.0 ** rng.uniform(-3, 0, channels)
    g = rng.standard_t(4, (rows, channels)) * ranges
    return g.astype(np.float32)


def sr_quantize(x, scale, Qm, rng):
    t = x / scale
    fl = np.floor(t)
    q = np.clip(fl + (rng.random(x.shape) < t - fl), -Qm, Qm)
    return q * scale


def rn_quantize(x, scale, Qm):
    return np.clip(np.rint(x / scale), -Qm, Qm) * scale


def error_ratios(bits, rounding, seeds=8):
    Qm = (1 << (bits - 1)) - 1
    sq, pt, pc = 0.0, 0.0, 0.0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        x = synthetic_gradient(rng).astype(np.float64)
        t = Q.shiftquant(x, bits, rounding=rounding, rng=rng)
        sq += np.sum((t.dequantize(np.float64) - x) ** 2)
        tensor_scale = np.abs(x).max() / Qm
        chan_scale = np.maximum(np.abs(x).max(axis=0), 1e-30) / Qm
        if rounding == "stochastic":
            pt += np.sum((sr_quantize(x, tensor_scale, Qm, rng) - x) ** 2)
            pc += np.sum((sr_quantize(x, chan_scale, Qm, rng) - x) ** 2)
        else:
            pt += np.sum((rn_quantize(x, tensor_scale, Qm) - x) ** 2)
            pc += np.sum((rn_quantize(x, chan_scale, Qm) - x) ** 2)
    return sq / pt, sq / pc


def test_shiftquant_4bit_stochastic_error_is_near_per_channel_and_far_below_per_tensor():
    vs_tensor, vs_channel = error_ratios(4, "stochastic")
    assert vs_tensor <= 0.35
    assert vs_channel <= 2.5


# ------------------------------------------------------------------------------------ dispatch


def test_kernel_name_reports_the_level_in_use(isa):
    name = numkern.cpu_info()["kernels"]["quant"]
    expected = {
        "scalar": "s8gemm_scalar",
        "avx2": "s8gemm_avx2",
        "avx512": "s8gemm_avx",
        "neon": "s8gemm_neon_4x16",
        "neon_dotprod": "s8gemm_neon_dotprod",
        "neon_i8mm": "s8gemm_neon_i8mm",
    }[isa]
    assert name.startswith(expected)
    if isa == "avx512" and numkern.cpu_info()["features"]["avx512vnni"]:
        assert "vnni" in name and name.endswith("shiftquant_avx512")
    if isa.startswith("neon"):
        assert name.endswith("shiftquant_neon")  # one quantizer for the three NEON levels


def test_results_are_identical_on_every_isa_level(rng, isa):
    x = graded(rng, (45, 77), 1)
    w = graded(rng, (77, 38), 1)
    here = Q.matmul(x, w, bits=4, rounding="stochastic", rng=3)
    t = Q.shiftquant(x, 6, granularity="block", block_size=16, rounding="stochastic", rng=4)
    with numkern.use_isa("scalar"):
        ref = Q.matmul(x, w, bits=4, rounding="stochastic", rng=3)
        t_ref = Q.shiftquant(x, 6, granularity="block", block_size=16, rounding="stochastic", rng=4)
    np.testing.assert_array_equal(here, ref)
    np.testing.assert_array_equal(t.qdata, t_ref.qdata)
    np.testing.assert_array_equal(t.shift, t_ref.shift)
