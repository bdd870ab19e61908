"""Fuzzing l1_norm (centred or not), layer_norm, rms_norm (with and without the fused residual),
their backward passes and l1_norm_int8: random shapes,
dtypes (wrong ones too), layouts, special values and argument values at and past their limits.
Each call returns the float64 / exact-integer reference within the documented tolerance, or
raises TypeError/ValueError for inputs that are wrong; inputs are never mutated."""

import numpy as np
import pytest
from _fuzz_strategies import (
    ALL_DTYPES,
    WRONG_DTYPES,
    arrays,
    assert_raised_for,
    checked,
    compute_dtype,
    fuzz,
    pick,
    snapshot,
)
from hypothesis import strategies as st
from test_norm import CENTERED, IS_L1, ref_backward, ref_forward, ref_int8

import numkern

TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12, np.dtype(np.float16): 2e-5}
EPS = [1e-5, 0.0, 1.0, 0.1, -1e-5, np.nan, np.inf, "1e-5", True, None]


def _eps_problem(eps):
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        return "eps type"
    return None if (eps >= 0 and np.isfinite(eps)) else "eps value"


@st.composite
def _param(draw, n):
    """A weight/bias: None, right, wrong length or wrong dtype."""
    kind = draw(pick(["none", "ok"], ["short", "complex"], 8))
    if kind == "none":
        return None, None
    length = n if kind != "short" else n + 1
    v = np.array(draw(st.lists(st.floats(-100, 100, width=32), min_size=length, max_size=length)))
    if kind == "complex":
        return v.astype(np.complex128), "param dtype"
    if kind == "short":
        return v, "param shape"
    return v.astype(draw(st.sampled_from([np.float32, np.float64]))), None


@st.composite
def _forward_case(draw):
    x = draw(arrays(dtypes=ALL_DTYPES + [np.complex64] * (draw(st.integers(0, 9)) == 0), max_side=8))
    axis = draw(pick(st.integers(-x.ndim, x.ndim - 1), [-4, 3, x.ndim, -x.ndim - 1]))
    n = x.shape[axis] if -x.ndim <= axis < x.ndim else 3
    weight, wp = draw(_param(n))
    bias, bp = draw(_param(n))
    eps = draw(pick([1e-5, 0.0, 1.0, 0.1], [-1e-5, np.nan, np.inf, "1e-5", True]))
    out_kind = draw(pick(["none", "none", "ok", "in_place"], ["shape", "dtype", "readonly", "list"]))
    residual = draw(pick(["none", "none", "none", "ok"], ["shape"]))
    if residual == "ok" and x.dtype.kind in "fiub":
        residual = draw(arrays(dtypes=[np.float32, np.float64, np.float16, np.int16], shape=x.shape))
    elif residual == "shape":
        residual = np.ones(x.shape + (2,))
    else:
        residual = None
    return x, axis, weight, wp, bias, bp, eps, out_kind, residual


def _make_out(x, out_kind, result_dtype):
    """(out, problem) for the drawn kind of out=."""
    if out_kind == "none":
        return None, None
    if out_kind == "ok":
        return np.full(x.shape, 7, dtype=result_dtype), None
    if out_kind == "in_place":
        if x.dtype == result_dtype and x.flags.writeable:
            return x, None
        return np.full(x.shape, 7, dtype=result_dtype), None
    if out_kind == "shape":
        return np.full(x.shape + (1,), 7, dtype=result_dtype), "out shape"
    if out_kind == "dtype":
        return np.full(x.shape, 7, dtype=np.float64 if result_dtype != np.float64 else np.float32), "out dtype"
    if out_kind == "readonly":
        o = np.full(x.shape, 7, dtype=result_dtype)
        o.flags.writeable = False
        return o, "out read-only"
    return [7.0] * (x.shape[0] if x.ndim else 1), "out type"


def _slice_ok(xf, axis):
    """Slices where the documented bound applies: finite, mean within 1e3 standard deviations of 0."""
    with np.errstate(all="ignore"):
        mean = xf.mean(axis=axis, keepdims=True)
        sd = xf.std(axis=axis, keepdims=True)
        return np.broadcast_to(np.isfinite(mean) & np.isfinite(sd) & (np.abs(mean) <= 1e3 * sd), xf.shape)


def _check_forward(y, x, axis, weight, bias, eps, kind, result_dtype):
    assert y.dtype == result_dtype and y.shape == x.shape
    if x.size == 0:
        return
    xf = x.astype(np.float64)
    with np.errstate(all="ignore"):
        ref = ref_forward(xf, axis, weight, bias, eps, kind)
    yf = y.astype(np.float64)
    finite_slice = np.broadcast_to(np.isfinite(xf).all(axis=axis, keepdims=True), x.shape)
    # A slice with a NaN or an infinity is all NaN.
    assert np.isnan(yf[~finite_slice]).all(), "a non-finite slice must give NaN"
    ok = finite_slice & _slice_ok(xf, axis) & np.isfinite(ref)
    wmax = 1.0 if weight is None else max(1.0, float(np.abs(weight).max()))
    with np.errstate(all="ignore"):
        xhat = np.abs(ref_forward(xf, axis, None, None, eps, kind))
    tol = TOL[np.dtype(compute_dtype(x) if x.dtype != np.float16 else np.float32)]
    bound = tol * (1 + xhat) * wmax
    if result_dtype == np.float16:
        bound = bound + 1e-3 * np.abs(ref) + 6e-8
    err = np.abs(yf - ref)
    bad = ok & ~(err <= bound)
    assert not bad.any(), (
        f"max error {err[bad].max()} vs bound {bound[bad].min()}: x={x[bad][:4]}, y={yf[bad][:4]}, ref={ref[bad][:4]}"
    )


FORWARD = {
    "l1": numkern.l1_norm,
    "l2": numkern.layer_norm,
    "l1u": lambda *a, **k: numkern.l1_norm(*a, center=False, **k),
    "rms": numkern.rms_norm,
}


@pytest.mark.parametrize("kind", list(FORWARD))
def test_fuzz_norm_forward(kind, fuzz_settings, isa):
    fn = FORWARD[kind]

    def run(case):
        x, axis, weight, wp, bias, bp, eps, out_kind, residual = case
        if kind == "rms":  # rms_norm takes no bias
            bias, bp = None, None
        problems = [p for p in (wp, bp, _eps_problem(eps)) if p]
        if residual is not None and residual.shape != x.shape:
            problems.append("residual shape")
        if x.dtype.kind == "c":
            problems.append("x dtype")
            result_dtype = np.dtype(np.complex64)
        else:
            result_dtype = compute_dtype(x)
        if not -x.ndim <= axis < x.ndim:
            problems.append("axis")
        out, op = _make_out(x, out_kind, result_dtype)
        if op:
            problems.append(op)
        in_place = out is x
        before = snapshot(x, weight, bias, residual)
        out_before = None if out is None or in_place else out.copy()
        x_ref = x.copy()
        kw = {} if kind == "rms" else {"bias": bias}
        if residual is not None:
            kw["residual"] = residual
            if out is not None and residual.shape == x.shape and x.dtype.kind != "c":
                result_dtype = np.result_type(result_dtype, compute_dtype(residual))
                if op is None and out.dtype != result_dtype:
                    problems.append("out dtype")
                elif op == "out dtype" and out.dtype == result_dtype:
                    # x's compute dtype was swapped for out, but the residual promotes to that
                    # dtype: out is right after all.
                    problems.remove("out dtype")
        try:
            y = fn(x, axis, weight=weight, eps=eps, out=out if residual is None else (out, None), **kw)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            if out_before is not None and isinstance(out, np.ndarray):
                np.testing.assert_array_equal(out, out_before)
            assert snapshot(x, weight, bias, residual) == before
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        if residual is not None:
            y, h = y
            rdt = np.result_type(compute_dtype(x), compute_dtype(residual))
            # h = x + residual in the compute type (float16 pairs: float32, then rounded once).
            ct = np.float32 if rdt == np.float16 else rdt
            with np.errstate(all="ignore"):
                h_ct = x_ref.astype(ct) + residual.astype(ct)
                h_ref = h_ct.astype(rdt)
            np.testing.assert_array_equal(h, h_ref)
            x_ref, result_dtype = h_ct, rdt
        if out is not None:
            assert y is out
        _check_forward(y, x_ref, axis, weight, bias, eps, kind, result_dtype)
        if not in_place:
            assert snapshot(x, weight, bias, residual) == before

    fuzz(fuzz_settings, run, case=_forward_case())


@st.composite
def _backward_case(draw):
    x = draw(arrays(dtypes=[np.float32, np.float64, np.int32, np.float16], max_side=8, special=False))
    dy_kind = draw(pick(["same", "same", "other_dtype"], ["shape", "complex"]))
    if dy_kind == "shape":
        dy = np.ones(x.shape + (2,))
    else:
        dt = x.dtype if dy_kind != "other_dtype" else draw(st.sampled_from([np.float32, np.float64, np.uint8]))
        dy = draw(arrays(dtypes=[dt], shape=x.shape, special=False))
        if dy_kind == "complex":
            dy = dy.astype(np.complex64)
    axis = draw(pick(st.integers(-x.ndim, x.ndim - 1), [3, -4]))
    n = x.shape[axis] if -x.ndim <= axis < x.ndim else 3
    weight, wp = draw(_param(n))
    eps = draw(pick([1e-5, 0.1, 1.0], [-1.0, np.nan, "x"]))
    special = draw(st.sampled_from([None, np.nan, np.inf]))
    return x, dy, dy_kind, axis, weight, wp, eps, special


BACKWARD = {
    "l1": numkern.l1_norm_backward,
    "l2": numkern.layer_norm_backward,
    "l1u": lambda *a, **k: numkern.l1_norm_backward(*a, center=False, **k),
    "rms": lambda *a, **k: numkern.rms_norm_backward(*a, **k) + (None,),
}


@pytest.mark.parametrize("kind", list(BACKWARD))
def test_fuzz_norm_backward(kind, fuzz_settings, isa):
    fn = BACKWARD[kind]
    l1, centered = IS_L1[kind], CENTERED[kind]

    def run(case):
        x, dy, dy_kind, axis, weight, wp, eps, special = case
        if special is not None and x.size and x.dtype.kind == "f" and x.flags.writeable and x.base is None:
            x.flat[0] = special
        problems = [p for p in (wp, _eps_problem(eps)) if p]
        if dy_kind in ("shape", "complex"):
            problems.append("dy " + dy_kind)
        if not -x.ndim <= axis < x.ndim:
            problems.append("axis")
        before = snapshot(dy, x, weight)
        try:
            dx, dw, db = fn(dy, x, axis, weight=weight, eps=eps)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert snapshot(dy, x, weight) == before
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        assert snapshot(dy, x, weight) == before
        rdt = np.result_type(compute_dtype(x), compute_dtype(dy))
        assert dx.dtype == rdt and dx.shape == x.shape
        assert dw.shape == (x.shape[axis],) and (db is None or db.shape == dw.shape)
        if x.size == 0:
            return
        xf, dyf = x.astype(np.float64), dy.astype(np.float64)
        with np.errstate(all="ignore"):
            rdx, rdw, rdb = ref_backward(dyf, xf, axis, weight, eps, kind)
        finite = np.isfinite(xf).all()
        if not finite:
            bad_slices = ~np.broadcast_to(np.isfinite(xf).all(axis=axis, keepdims=True), x.shape)
            assert np.isnan(dx.astype(np.float64)[bad_slices]).all()
            return
        tol = 10 * TOL[np.dtype(np.float32) if rdt != np.float64 else np.dtype(np.float64)]
        with np.errstate(all="ignore"):
            xd = np.moveaxis(xf, axis, -1)
            d = xd - xd.mean(axis=-1, keepdims=True) if centered else xd
            D = (np.abs(d).mean(axis=-1, keepdims=True) if l1 else np.sqrt((d * d).mean(axis=-1, keepdims=True))) + (
                eps if l1 else 0
            )
            if not l1:
                D = np.sqrt(D * D + eps)
            w = 1.0 if weight is None else max(1.0, float(np.abs(weight).max()))
            g = np.abs(np.moveaxis(dyf, axis, -1)).max(axis=-1, keepdims=True) * w
            xh = np.abs(d / D).max(axis=-1, keepdims=True)
            scale = np.moveaxis(np.broadcast_to(g / D * (2 + xh) * (1 + xh), xd.shape), -1, axis)
        bound = tol * (1 + np.abs(rdx) + scale)
        if rdt == np.float16:
            bound = bound + 1e-3 * np.abs(rdx) + 6e-8
        err = np.abs(dx.astype(np.float64) - rdx)
        if rdt == np.float16:  # beyond float16's range: an infinity of the right sign
            over = np.abs(rdx) > 6e4
            assert (np.sign(dx[over]) == np.sign(rdx[over])).all()
            err[over] = 0
        assert (err <= bound).all(), f"dx error {(err - bound).max()}"
        cnt = x.size // x.shape[axis]
        pb = tol * cnt * (1 + np.abs(dyf).max() * (1 + float(np.max(np.abs(np.moveaxis(d / D, -1, axis))))))
        if rdt == np.float16:
            if max(np.abs(rdw).max(), np.abs(rdb).max()) > 6e4:
                return
            pb = pb + 1e-3 * (np.abs(rdw) + np.abs(rdb)) + 6e-8
        assert (np.abs(dw.astype(np.float64) - rdw) <= pb).all()
        assert db is None or (np.abs(db.astype(np.float64) - rdb) <= pb).all()

    fuzz(fuzz_settings, run, case=_backward_case())


@st.composite
def _int8_case(draw):
    dtype = draw(pick([np.int8], [np.uint8, np.int16, np.float32]))
    x = draw(arrays(dtypes=[dtype], max_side=9, layouts=("plain", "fortran", "reversed", "strided", "broadcast")))
    if dtype == np.int8 and draw(st.booleans()):
        x = np.clip(x.astype(np.int16) * 200, -128, 127).astype(np.int8)  # saturated extremes
    axis = draw(pick(st.integers(-x.ndim, x.ndim - 1), [-4, 3]))
    out_shift = draw(pick([5, 0, 7, 3, np.int64(2)], [-1, 8, 5.0, True]))
    out_kind = draw(pick(["none", "ok"], ["shape", "dtype", "readonly"]))
    center = draw(pick([True, False], [1, None]))
    return x, axis, out_shift, out_kind, center


def test_fuzz_l1_norm_int8(fuzz_settings, isa):
    def run(case):
        x, axis, out_shift, out_kind, center = case
        problems = [] if isinstance(center, bool) else ["center"]
        if x.dtype != np.int8:
            problems.append("dtype")
        if isinstance(out_shift, (bool, float)) or not 0 <= out_shift <= 7:
            problems.append("out_shift")
        if not -x.ndim <= axis < x.ndim:
            problems.append("axis")
        out = None
        if out_kind != "none":
            out = np.full(
                x.shape if out_kind != "shape" else x.shape + (1,),
                9,
                dtype=np.int8 if out_kind != "dtype" else np.int16,
            )
            if out_kind == "readonly":
                out.flags.writeable = False
            if out_kind != "ok":
                problems.append("out " + out_kind)
        before = snapshot(x)
        try:
            y = numkern.l1_norm_int8(x, axis, out_shift=out_shift, center=center, out=out)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert snapshot(x) == before
            if out is not None:
                assert (out == 9).all()
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        assert snapshot(x) == before
        assert y.dtype == np.int8 and y.shape == x.shape
        if out is not None:
            assert y is out
        # Within 1 of the correctly rounded, saturated exact value (docstring guarantee).
        ref = np.clip(np.round(ref_int8(x, axis, int(out_shift), center)), -128, 127)
        assert np.all(np.abs(y.astype(np.int64) - ref) <= 1)

    fuzz(fuzz_settings, run, case=_int8_case())


def test_fuzz_norm_wrong_dtypes_raise_type_error(fuzz_settings, isa):
    def run(dtype, which):
        x = np.zeros((3, 4), dtype=dtype)
        fn = {
            "l1": numkern.l1_norm,
            "l2": numkern.layer_norm,
            "l1b": lambda a: numkern.l1_norm_backward(np.ones((3, 4)), a),
            "l2b": lambda a: numkern.layer_norm_backward(a, np.ones((3, 4))),
            "rms": numkern.rms_norm,
            "rmsb": lambda a: numkern.rms_norm_backward(np.ones((3, 4)), a),
            "res": lambda a: numkern.layer_norm(np.ones((3, 4)), residual=a),
            "int8": numkern.l1_norm_int8,
        }[which]
        with pytest.raises(TypeError, match="dtype"):
            fn(x)

    fuzz(
        fuzz_settings,
        run,
        scale=0.3,
        dtype=st.sampled_from(WRONG_DTYPES),
        which=st.sampled_from(["l1", "l2", "l1b", "l2b", "rms", "rmsb", "res", "int8"]),
    )
