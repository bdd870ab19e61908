"""Fuzzing every public function with hypothesis: random shapes (0- and 1-sized axes), dtypes
(wrong ones too), memory orders, strides (negative, zero-stride broadcast, unaligned bytes), values
(NaN, +-inf, huge, denormal) and argument values at and past their limits. Each call must either
return the reference answer within its stated tolerance or raise TypeError/ValueError.

Run long: ``python -m pytest tests/test_fuzz.py --fuzz-long`` (>= 10^5 examples in total)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numkern
from _reference import log_softmax_ref, softmax_ref

SPECIAL = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 3e38, -3e38, 7e5, -7e5, 1e-40, 5e-324, 88.0, -104.0]


def _values(dtype):
    if np.dtype(dtype).kind == "f":
        finfo = np.finfo(dtype)
        with np.errstate(all="ignore"):
            specials = [dtype(v) for v in SPECIAL if abs(v) <= finfo.max or not np.isfinite(v)]
        return st.one_of(
            st.sampled_from(specials),
            st.floats(-100, 100, width=32).map(dtype),
        )
    if np.dtype(dtype).kind == "b":
        return st.booleans()
    info = np.iinfo(dtype)
    return st.integers(max(info.min, -1000), min(info.max, 1000))


@st.composite
def arrays(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.uint8, np.bool_]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=9))
    base = draw(hnp.arrays(dtype, tuple(s * 2 + 1 for s in shape), elements=_values(dtype)))
    kind = draw(st.sampled_from(["plain", "fortran", "reversed", "strided", "broadcast", "unaligned"]))
    if kind == "plain":
        return base[tuple(slice(0, s) for s in shape)]
    if kind == "fortran":
        return np.asfortranarray(base[tuple(slice(0, s) for s in shape)])
    if kind == "reversed":
        return base[tuple(slice(s - 1 if s else 0, None, -1) if s else slice(0, 0) for s in shape)][
            tuple(slice(0, s) for s in shape)
        ]
    if kind == "strided":
        return base[tuple(slice(0, 2 * s, 2) for s in shape)]
    if kind == "broadcast":
        row = base[(0,) * (len(shape) - 1) + (slice(0, shape[-1]),)]
        return np.broadcast_to(row, shape)
    # Unaligned: the same values laid out one byte past an aligned address.
    arr = np.ascontiguousarray(base[tuple(slice(0, s) for s in shape)])
    raw = np.zeros(arr.nbytes + 1, np.uint8)
    raw[1:] = np.frombuffer(arr.tobytes(), np.uint8)
    return np.frombuffer(raw[1:].data, dtype=arr.dtype).reshape(arr.shape)


def _check_softmax_result(y, x, axis, log):
    result_dtype = np.float64 if x.dtype.kind in "biu" else x.dtype
    assert y.dtype == result_dtype and y.shape == x.shape
    if x.size == 0:
        return
    compute = x.astype(np.float32) if x.dtype == np.float16 else x
    ref = (log_softmax_ref if log else softmax_ref)(compute, axis)
    yw = y.astype(np.longdouble)
    # Special values as the result type has them: -6e38 is -inf in float32, as scipy would give.
    with np.errstate(over="ignore", invalid="ignore"):
        ref_t = ref.astype(y.dtype)
    np.testing.assert_array_equal(np.isnan(yw), np.isnan(ref_t))
    np.testing.assert_array_equal(np.isposinf(yw), np.isposinf(ref_t))
    np.testing.assert_array_equal(np.isneginf(yw), np.isneginf(ref_t))
    finite = np.isfinite(ref_t)
    if y.dtype == np.float16:
        tol_rel, floor, tol_log = 1e-3, 1e-4, 1e-3
    elif y.dtype == np.float32:
        tol_rel, floor, tol_log = 1e-6, 1e-30, 2e-6
    else:
        tol_rel, floor, tol_log = 1e-14, 1e-300, 4e-15
    if log:
        err = np.abs(yw[finite] - ref[finite]) / np.maximum(1, np.abs(ref[finite]))
        assert err.size == 0 or err.max() <= tol_log
    else:
        big = finite & (ref >= floor)
        rel = np.abs(yw[big] - ref[big]) / ref[big]
        assert rel.size == 0 or rel.max() <= tol_rel
        small = finite & (ref < floor)
        assert np.all((yw[small] >= 0) & (yw[small] <= floor * (1 + tol_rel)))


@pytest.fixture
def fuzz_settings(request):
    return settings.get_profile(request.config.fuzz_profile)


@pytest.mark.parametrize("log", [False, True])
def test_fuzz_softmax(log, fuzz_settings, isa):
    fn = numkern.log_softmax if log else numkern.softmax

    @settings(fuzz_settings, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(x=arrays(), axis=st.integers(-4, 3), algorithm=st.sampled_from(
        ["auto", "two_pass", "three_pass_reload", "three_pass_recompute", "bogus"]), use_out=st.booleans())
    def run(x, axis, algorithm, use_out):
        before = x.copy()
        out = None
        if use_out:
            out = np.full(x.shape, 7, dtype=np.float64 if x.dtype.kind in "biu" else x.dtype)
        try:
            y = fn(x, axis=axis, out=out, algorithm=algorithm)
        except (TypeError, ValueError) as exc:
            assert str(exc)
            bad_axis = not -x.ndim <= axis < x.ndim
            assert algorithm == "bogus" or bad_axis, f"unexpected {type(exc).__name__}: {exc}"
            if out is not None:
                assert np.all(out == 7), "a raising call must not write into out"
        else:
            assert algorithm != "bogus" and -x.ndim <= axis < x.ndim
            if out is not None:
                assert y is out
            _check_softmax_result(y, x, axis, log)
        np.testing.assert_array_equal(x, before)

    run()


def test_fuzz_wrong_dtypes_raise_type_error(fuzz_settings):
    @settings(fuzz_settings)
    @given(dtype=st.sampled_from([np.complex64, np.complex128, object, "U2", "S2", "M8[s]", "m8[s]", np.longdouble]),
           shape=hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=4))
    def run(dtype, shape):
        x = np.zeros(shape, dtype=dtype)
        for fn in (numkern.softmax, numkern.log_softmax):
            with pytest.raises(TypeError):
                fn(x)

    run()
