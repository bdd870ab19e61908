"""numkern.softmax / log_softmax against extended-precision references on every ISA level."""

import numpy as np
import pytest
import scipy.special
from _reference import log_softmax_ref, softmax_ref
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numkern

ALGORITHMS = ["auto", "two_pass", "three_pass_reload", "three_pass_recompute"]
FLOATS = [np.float32, np.float64]
# (relative tolerance, smallest output it applies to) for softmax; absolute for log_softmax.
SOFTMAX_TOL = {np.float32: (1e-6, 1e-30), np.float64: (1e-14, 1e-300)}
LOG_TOL = {np.float32: 2e-6, np.float64: 4e-15}


def assert_softmax_accurate(y, x, axis=-1):
    ref = softmax_ref(x, axis)
    tol, floor = SOFTMAX_TOL[y.dtype.type]
    assert y.shape == ref.shape
    big = ref >= floor
    rel = np.abs(y[big] - ref[big]) / ref[big]
    assert rel.size == 0 or rel.max() <= tol, f"max relative error {rel.max():.3g} > {tol}"
    small = y[~big]
    assert np.all((small >= 0) & (small <= floor * (1 + tol))), "tiny outputs must be in [0, floor]"


def assert_log_softmax_accurate(y, x, axis=-1):
    ref = log_softmax_ref(x, axis)
    err = np.abs(y.astype(np.longdouble) - ref) / np.maximum(1, np.abs(ref))
    assert err.max() <= LOG_TOL[y.dtype.type], f"max scaled error {float(err.max()):.3g}"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 31, 33, 1023, 4099])
def test_random_slices_are_accurate(rng, dtype, algorithm, n):
    x = (rng.standard_normal((3, n)) * 20).astype(dtype)
    y = numkern.softmax(x, algorithm=algorithm)
    assert y.dtype == dtype
    assert_softmax_accurate(y, x)
    assert_log_softmax_accurate(numkern.log_softmax(x, algorithm=algorithm), x)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_long_slice_is_accurate(rng, dtype, algorithm):
    x = rng.uniform(-50, 50, (1 << 20) + 3).astype(dtype)
    assert_softmax_accurate(numkern.softmax(x, algorithm=algorithm), x)
    assert_log_softmax_accurate(numkern.log_softmax(x, algorithm=algorithm), x)


@pytest.mark.parametrize("algorithm", ["two_pass", "three_pass_recompute"])
def test_slice_of_2_pow_26_float32_is_accurate(rng, algorithm):
    x = rng.uniform(-30, 30, 1 << 26).astype(np.float32)
    y = numkern.softmax(x, algorithm=algorithm)
    ref = np.exp(x.astype(np.float64) - x.max())
    ref /= ref.sum()
    assert np.max(np.abs(y / ref - 1)) <= 1e-6
    ly = numkern.log_softmax(x, algorithm=algorithm)
    lref = np.log(ref)
    assert np.max(np.abs(ly - lref) / np.maximum(1, np.abs(lref))) <= 2e-6


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("scale", [1e3, 1e4, 1e5])
def test_inputs_up_to_1e5_are_accurate(rng, dtype, algorithm, scale):
    x = rng.uniform(-scale, scale, (4, 257)).astype(dtype)
    # Put several values near the top so that more than one output is far from 0 and 1.
    x[:, :5] = x.max(axis=1, keepdims=True) - rng.uniform(0, 30, (4, 5)).astype(dtype)
    assert_softmax_accurate(numkern.softmax(x, algorithm=algorithm), x)
    assert_log_softmax_accurate(numkern.log_softmax(x, algorithm=algorithm), x)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("center", [7e5, -7e5, 1e6, -3e6, 1e7, 1e20, -1e30])
def test_huge_magnitudes_fall_back_correctly(rng, dtype, algorithm, center):
    x = (center + rng.uniform(-20, 20, 300)).astype(dtype)
    assert_softmax_accurate(numkern.softmax(x, algorithm=algorithm), x)
    assert_log_softmax_accurate(numkern.log_softmax(x, algorithm=algorithm), x)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_largest_finite_values(dtype, algorithm):
    big = np.finfo(dtype).max
    x = np.array([big, big, -big, 0, big / 2], dtype=dtype)
    y = numkern.softmax(x, algorithm=algorithm)
    np.testing.assert_allclose(y, [0.5, 0.5, 0, 0, 0], rtol=SOFTMAX_TOL[dtype][0])
    ly = numkern.log_softmax(x, algorithm=algorithm)
    assert np.all(np.isfinite(ly[:2])) and abs(ly[0] + np.log(2)) < 1e-6
    assert np.all(ly[2:] == -np.inf) or np.all(ly[2:] < -1e30)


SPECIAL_CASES = [
    [1.0, np.nan, 2.0],
    [np.nan, np.nan],
    [1.0, -np.inf, 2.0],
    [-np.inf, -np.inf, -np.inf],
    [-np.inf],
    [1.0, np.inf, 2.0],
    [np.inf, np.inf],
    [np.inf, -np.inf],
    [np.inf, np.nan],
    [-np.inf, 0.0],
    [0.0],
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("values", SPECIAL_CASES, ids=str)
@pytest.mark.parametrize("pad", [0, 37])
def test_special_values_follow_scipy(dtype, algorithm, values, pad):
    # Padding with -inf keeps scipy's answer for the slice and exercises the vector loops.
    x = np.array(values + [-np.inf] * pad, dtype=dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        expect = scipy.special.softmax(x.astype(np.float64))
        expect_log = scipy.special.log_softmax(x.astype(np.float64))
    assert_same_specials_and_close(numkern.softmax(x, algorithm=algorithm), expect)
    assert_same_specials_and_close(numkern.log_softmax(x, algorithm=algorithm), expect_log)


def assert_same_specials_and_close(got, expect):
    """NaN and +-inf exactly where scipy has them; finite values within float tolerance."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expect))
    np.testing.assert_array_equal(np.isinf(got) & (got > 0), np.isinf(expect) & (expect > 0))
    np.testing.assert_array_equal(np.isinf(got) & (got < 0), np.isinf(expect) & (expect < 0))
    finite = np.isfinite(expect)
    np.testing.assert_allclose(got[finite], expect[finite], rtol=2e-6 if got.dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_nan_anywhere_in_a_long_slice_makes_it_nan(rng, dtype, algorithm):
    x = rng.standard_normal((5, 1000)).astype(dtype)
    for row, pos in enumerate([0, 1, 499, 998, 999]):
        x[row, pos] = np.nan
    assert np.isnan(numkern.softmax(x, algorithm=algorithm)).all()
    assert np.isnan(numkern.log_softmax(x, algorithm=algorithm)).all()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_neg_inf_entries_give_exact_zero(rng, dtype, algorithm):
    x = rng.standard_normal(100).astype(dtype)
    x[::3] = -np.inf
    y = numkern.softmax(x, algorithm=algorithm)
    assert np.all(y[::3] == 0)
    assert_softmax_accurate(y, x)
    ly = numkern.log_softmax(x, algorithm=algorithm)
    assert np.all(ly[::3] == -np.inf)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_denormal_inputs(dtype, algorithm):
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([tiny, -tiny, 0, tiny * 7, np.finfo(dtype).tiny / 2], dtype=dtype)
    y = numkern.softmax(x, algorithm=algorithm)
    np.testing.assert_allclose(y, np.full(5, 0.2), rtol=SOFTMAX_TOL[dtype][0])
    ly = numkern.log_softmax(x, algorithm=algorithm)
    np.testing.assert_allclose(ly, np.full(5, -np.log(5)), rtol=LOG_TOL[dtype])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_length_one_slices_give_one_and_zero(algorithm):
    x = np.array([[3.0], [-1e30], [0.0]], dtype=np.float32)
    np.testing.assert_array_equal(numkern.softmax(x, algorithm=algorithm), np.ones((3, 1), np.float32))
    np.testing.assert_array_equal(numkern.log_softmax(x, algorithm=algorithm), np.zeros((3, 1), np.float32))


@pytest.mark.parametrize("shape", [(0,), (0, 5), (5, 0), (2, 0, 3)])
def test_empty_arrays_return_empty(shape):
    x = np.zeros(shape, dtype=np.float32)
    for axis in range(len(shape)):
        y = numkern.softmax(x, axis=axis)
        assert y.shape == shape and y.dtype == np.float32
        assert numkern.log_softmax(x, axis=axis).shape == shape


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
@pytest.mark.parametrize("order", ["C", "F"])
def test_every_axis_of_3d_arrays(rng, dtype, algorithm, axis, order):
    x = np.asarray(rng.standard_normal((7, 33, 18)) * 5, dtype=dtype, order=order)
    assert_softmax_accurate(numkern.softmax(x, axis=axis, algorithm=algorithm), x, axis)
    assert_log_softmax_accurate(numkern.log_softmax(x, axis=axis, algorithm=algorithm), x, axis)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_strided_negative_and_unaligned_views(rng, dtype, algorithm):
    base = (rng.standard_normal((40, 300)) * 5).astype(dtype)
    views = [base[::3, ::2], base[::-1, ::-3], base[:, 1:], base[5:, 3:258], base.T[1:, ::7]]
    for v in views:
        before = v.copy()
        for axis in (0, 1):
            assert_softmax_accurate(numkern.softmax(v, axis=axis, algorithm=algorithm), v, axis)
            assert_log_softmax_accurate(numkern.log_softmax(v, axis=axis, algorithm=algorithm), v, axis)
        np.testing.assert_array_equal(v, before)


def test_byte_misaligned_input_is_handled(rng):
    raw = np.zeros(4 * 100 + 1, dtype=np.uint8)
    raw[1:] = np.frombuffer(rng.standard_normal(100).astype(np.float32).tobytes(), dtype=np.uint8)
    xm = np.frombuffer(raw[1:].data, dtype=np.float32)  # one byte past an aligned address
    assert not xm.flags.aligned
    assert_softmax_accurate(numkern.softmax(xm), xm)


def test_zero_stride_broadcast_input(rng):
    row = rng.standard_normal(50).astype(np.float32)
    x = np.broadcast_to(row, (4, 50))
    y = numkern.softmax(x, axis=1)
    for r in y:
        assert_softmax_accurate(r, row)
    assert_softmax_accurate(numkern.softmax(x, axis=0), np.asarray(x), 0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("log", [False, True])
def test_in_place_out_equals_out_of_place(rng, algorithm, log):
    fn = numkern.log_softmax if log else numkern.softmax
    for x in [rng.standard_normal((6, 1000)), rng.standard_normal((6, 1000))[:, ::2]]:
        expect = fn(x, algorithm=algorithm)
        x2 = x.copy() if x.flags.c_contiguous else x
        got = fn(x2, out=x2, algorithm=algorithm)
        assert got is x2
        np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize("log", [False, True])
def test_out_of_any_layout_receives_result(rng, log):
    fn = numkern.log_softmax if log else numkern.softmax
    x = rng.standard_normal((9, 70)).astype(np.float32)
    expect = fn(x, axis=0)
    for out in [np.empty((9, 70), np.float32, order="F"), np.empty((18, 140), np.float32)[::2, ::-2]]:
        got = fn(x, axis=0, out=out)
        assert got is out
        np.testing.assert_array_equal(out, expect)


def test_overlapping_out_gives_the_same_as_separate_out(rng):
    buf = rng.standard_normal(1001)
    x = buf[:1000]
    expect = numkern.softmax(x.copy())
    out = buf[1:]
    numkern.softmax(x, out=out)
    np.testing.assert_allclose(out, expect, rtol=1e-14)


@pytest.mark.isa_independent
def test_bad_out_raises_and_writes_nothing():
    x = np.ones((3, 4), np.float32)
    wrong_shape = np.full((4, 3), 7, np.float32)
    with pytest.raises(ValueError, match="shape"):
        numkern.softmax(x, out=wrong_shape)
    assert np.all(wrong_shape == 7)
    wrong_dtype = np.full((3, 4), 7, np.float64)
    with pytest.raises(TypeError, match="dtype"):
        numkern.softmax(x, out=wrong_dtype)
    assert np.all(wrong_dtype == 7)
    read_only = np.full((3, 4), 7, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        numkern.log_softmax(x, out=read_only)
    with pytest.raises(TypeError, match="ndarray"):
        numkern.softmax(x, out=[[0] * 4] * 3)


@pytest.mark.isa_independent
@pytest.mark.parametrize("axis", [2, -3, 10])
def test_bad_axis_raises_axis_error(axis):
    with pytest.raises(np.exceptions.AxisError):
        numkern.softmax(np.ones((2, 3)), axis=axis)
    with pytest.raises(np.exceptions.AxisError):
        numkern.log_softmax(np.ones((2, 3)), axis=axis)


@pytest.mark.isa_independent
def test_bad_arguments_raise_with_what_was_expected():
    with pytest.raises(TypeError, match="axis must be an integer"):
        numkern.softmax(np.ones(3), axis=0.5)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        numkern.softmax(np.ones(3), algorithm="fast")
    with pytest.raises(ValueError, match="repeated"):
        numkern.softmax(np.ones((2, 3)), axis=(1, 1))


@pytest.mark.isa_independent
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, object, "U3", "M8[s]", np.longdouble])
def test_unsupported_dtypes_raise_type_error(dtype):
    x = np.zeros(4, dtype=dtype)
    with pytest.raises(TypeError, match="dtype"):
        numkern.softmax(x)
    with pytest.raises(TypeError, match="dtype"):
        numkern.log_softmax(x)


def test_float16_is_computed_in_float32_and_returned_as_float16(rng):
    x = rng.standard_normal((4, 100)).astype(np.float16)
    y = numkern.softmax(x)
    assert y.dtype == np.float16
    expect = numkern.softmax(x.astype(np.float32)).astype(np.float16)
    np.testing.assert_array_equal(y, expect)
    out = np.empty_like(x)
    assert numkern.log_softmax(x, out=out) is out
    np.testing.assert_array_equal(out, numkern.log_softmax(x.astype(np.float32)).astype(np.float16))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
def test_integer_and_bool_inputs_compute_in_float64(dtype):
    x = np.array([[0, 1, 1, 0], [1, 0, 0, 0]], dtype=dtype)
    y = numkern.softmax(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, scipy.special.softmax(x.astype(np.float64), axis=-1), rtol=1e-14)
    assert numkern.log_softmax(x).dtype == np.float64


def test_input_is_never_modified(rng):
    x = rng.standard_normal((10, 300))
    before = x.copy()
    for alg in ALGORITHMS:
        numkern.softmax(x, algorithm=alg)
        numkern.log_softmax(x, axis=0, algorithm=alg)
    np.testing.assert_array_equal(x, before)


def test_lists_are_accepted():
    np.testing.assert_allclose(numkern.softmax([1.0, 2.0, 3.0]), scipy.special.softmax([1.0, 2.0, 3.0]), rtol=1e-14)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_results_do_not_depend_on_thread_count(rng, dtype, algorithm):
    xs = [rng.standard_normal(1 << 18).astype(dtype), rng.standard_normal((300, 1000)).astype(dtype)]
    prev = numkern.get_num_threads()
    try:
        for x in xs:
            numkern.set_num_threads(1)
            one = numkern.softmax(x, algorithm=algorithm)
            numkern.set_num_threads(2)
            two = numkern.softmax(x, algorithm=algorithm)
            np.testing.assert_allclose(one, two, rtol=SOFTMAX_TOL[dtype][0], atol=0)
    finally:
        numkern.set_num_threads(prev)


@pytest.mark.isa_independent
def test_threadpoolctl_limits_numkern():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = numkern.get_num_threads()
    with threadpoolctl.threadpool_limits(1):
        assert numkern.get_num_threads() == 1
    assert numkern.get_num_threads() == before


@pytest.mark.isa_independent
def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="positive integer"):
        numkern.set_num_threads(0)
    with pytest.raises(ValueError, match="positive integer"):
        numkern.set_num_threads(1.5)


float_arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=40),
    elements=st.floats(-80, 80, width=32),
)


@settings(max_examples=60, deadline=None)
@given(x=float_arrays, algorithm=st.sampled_from(ALGORITHMS), data=st.data())
def test_property_sums_to_one_and_matches_reference(x, algorithm, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    y = numkern.softmax(x, axis=axis, algorithm=algorithm)
    tol = 1e-5 if x.dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y.sum(axis=axis, dtype=np.float64), 1.0, rtol=tol)
    assert_softmax_accurate(y, x, axis)
    assert_log_softmax_accurate(numkern.log_softmax(x, axis=axis, algorithm=algorithm), x, axis)


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(-50, 50)),
    shift=st.floats(-100, 100),
    algorithm=st.sampled_from(ALGORITHMS),
)
def test_property_shift_invariance(x, shift, algorithm):
    np.testing.assert_allclose(
        numkern.softmax(x + shift, algorithm=algorithm),
        numkern.softmax(x, algorithm=algorithm),
        rtol=1e-11,
        atol=1e-300,
    )


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(np.float32, st.integers(2, 300), elements=st.floats(-30, 30, width=32)),
    algorithm=st.sampled_from(ALGORITHMS),
)
def test_property_monotone_in_the_input(x, algorithm):
    y = numkern.softmax(x, algorithm=algorithm)
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(y[order]) >= 0)
    ly = numkern.log_softmax(x, algorithm=algorithm)
    assert np.all(np.diff(ly[order]) >= 0)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_huge_gap_to_the_max_gives_zero_not_nan(algorithm):
    # Found by fuzzing: x - max rounds to x, so its TwoSum error is -1e30; it must not reach exp.
    x = np.array([[1e30, 0, -3e38, 0, 0], [3e38, -3e38, 0, -np.inf, 1]], dtype=np.float32)
    np.testing.assert_array_equal(numkern.softmax(x, algorithm=algorithm), [[1, 0, 0, 0, 0], [1, 0, 0, 0, 0]])
    ly = numkern.log_softmax(x, algorithm=algorithm)
    assert np.all(ly[:, 0] == 0) and np.all(ly[:, 1:] < -1e29)
