"""Fuzzing every public function with hypothesis: random shapes (0- and 1-sized axes), dtypes
(wrong ones too), memory orders, strides (negative, zero-stride broadcast, unaligned bytes), values
(NaN, +-inf, huge, denormal) and argument values at and past their limits. Each call must either
return the reference answer within its stated tolerance or raise TypeError/ValueError.

The other families are in tests/test_fuzz_*.py; strategies are shared in _fuzz_strategies.py.
Run long: ``python -m pytest tests -k fuzz --fuzz-long`` (>= 10^5 examples in total)."""

import numpy as np
import pytest
from _fuzz_strategies import WRONG_DTYPES, arrays, checked, fuzz
from _reference import log_softmax_ref, softmax_ref
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numkern


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


@pytest.mark.parametrize("log", [False, True])
def test_fuzz_softmax(log, fuzz_settings, isa):
    fn = numkern.log_softmax if log else numkern.softmax

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
            checked()
            if out is not None:
                assert y is out
            _check_softmax_result(y, x, axis, log)
        np.testing.assert_array_equal(x, before)

    fuzz(
        fuzz_settings,
        run,
        x=arrays(),
        axis=st.integers(-4, 3),
        algorithm=st.sampled_from(["auto", "two_pass", "three_pass_reload", "three_pass_recompute", "bogus"]),
        use_out=st.booleans(),
    )


def test_fuzz_wrong_dtypes_raise_type_error(fuzz_settings):
    def run(dtype, shape):
        x = np.zeros(shape, dtype=dtype)
        for fn in (numkern.softmax, numkern.log_softmax):
            with pytest.raises(TypeError):
                fn(x)

    fuzz(
        fuzz_settings,
        run,
        dtype=st.sampled_from(WRONG_DTYPES),
        shape=hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=4),
    )


@st.composite
def int8_operands(draw):
    m, k, n = draw(st.integers(0, 9)), draw(st.integers(0, 70)), draw(st.integers(0, 9))
    extreme = draw(st.booleans())
    elements = st.sampled_from([-128, 127, -127]) if extreme else st.integers(-128, 127)
    a = draw(hnp.arrays(np.int8, (m + 1, 2 * k + 1), elements=elements))
    b = draw(hnp.arrays(np.int8, (2 * k + 1, n + 1), elements=elements))
    a_kind = draw(st.sampled_from(["plain", "strided", "fortran", "reversed"]))
    a = {
        "plain": a[:m, :k],
        "strided": a[:m, : 2 * k : 2],
        "fortran": np.asfortranarray(a[:m, :k]),
        "reversed": a[m - 1 :: -1, :k] if m else a[:0, :k],
    }[a_kind]
    b = b[:k, ::-1][:, :n] if draw(st.booleans()) else b[:k, :n]
    return a, b


def test_fuzz_int8_matmul(fuzz_settings, isa):
    def run(ops, bad_dtype):
        a, b = ops
        before = a.copy(), b.copy()
        if bad_dtype is not None:
            with pytest.raises(TypeError):
                numkern.int8_matmul(a.astype(bad_dtype), b)
            return
        c = numkern.int8_matmul(a, b)
        checked()
        np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))
        with pytest.raises(ValueError):
            numkern.int8_matmul(a, b[:-1] if b.shape[0] else np.zeros((1, 1), np.int8))
        np.testing.assert_array_equal(a, before[0])
        np.testing.assert_array_equal(b, before[1])

    fuzz(fuzz_settings, run, ops=int8_operands(), bad_dtype=st.sampled_from([None, np.int16, np.uint8, np.float32]))


def test_fuzz_shiftquant(fuzz_settings, isa):
    def run(x, bits, axis, rounding):
        before = x.copy()
        try:
            t = numkern.shiftquant(x, bits, axis=axis, rounding=rounding, rng=1)
        except (TypeError, ValueError) as exc:
            assert str(exc)
            xf = np.asarray(x, dtype=np.float64)
            assert (
                bits not in (4, 6, 8)
                or rounding not in ("nearest", "stochastic")
                or not -x.ndim <= axis < x.ndim
                or not np.all(np.isfinite(xf))
                or x.ndim == 0
                or np.any(np.abs(xf) > np.finfo(np.float32).max)
            ), f"unexpected {type(exc).__name__}: {exc}"
        else:
            checked()
            q = t.qdata if not getattr(t, "packed", False) else t.unpack().qdata
            Q = 2 ** (bits - 1) - 1
            assert q.dtype == np.int8 and np.all(np.abs(q.astype(np.int32)) <= Q)
            err = np.abs(t.dequantize().astype(np.float64) - x.astype(np.float32).astype(np.float64))
            scale = np.broadcast_to(t.scales().astype(np.float64), err.shape) if err.size else err
            limit = 0.5 if rounding == "nearest" else 1.0
            assert np.all(err <= limit * scale * (1 + 1e-6) + 2.0**-149)  # a float32 base scale can underflow
        np.testing.assert_array_equal(x, before)

    fuzz(
        fuzz_settings,
        run,
        x=arrays(),
        bits=st.sampled_from([4, 6, 8, 3, 16]),
        axis=st.integers(-4, 3),
        rounding=st.sampled_from(["nearest", "stochastic", "up"]),
    )
