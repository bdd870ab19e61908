"""Fuzzing fwht, the sketch operators (SRHT, Gaussian, SparseSign, CountSketch) and lstsq:
each call matches a dense float64 NumPy reference within the documented error bound, or raises
TypeError/ValueError for inputs that are wrong; inputs are never mutated."""

import math

import numpy as np
import pytest
import scipy.linalg
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
from test_sketch import _np_fwht

import numkern
from numkern.sketch import SRHT, CountSketch, Gaussian, SparseSign

UNIT = {np.dtype(np.float32): 2.0**-24, np.dtype(np.float64): 2.0**-53}


@st.composite
def _fwht_case(draw):
    pow2 = draw(pick([True], [False], 20))
    shape = list(draw(st.lists(st.integers(0, 5), min_size=1, max_size=3)))
    axis = draw(pick(st.integers(-len(shape), len(shape) - 1), [-4, 3]))
    if pow2 and -len(shape) <= axis < len(shape):
        shape[axis] = 1 << draw(st.integers(0, 6))
    x = draw(arrays(dtypes=ALL_DTYPES + [np.complex128] * (draw(st.integers(0, 9)) == 0), shape=tuple(shape)))
    normalize = draw(st.sampled_from([False, True]))
    out_kind = draw(pick(["none", "none", "ok", "in_place"], ["shape", "dtype", "readonly"]))
    return x, axis, normalize, out_kind


def test_fuzz_fwht(fuzz_settings, isa):
    def run(case):
        x, axis, normalize, out_kind = case
        problems = []
        rdt = compute_dtype(x)
        if x.dtype.kind == "c":
            problems.append("dtype")
        if not -x.ndim <= axis < x.ndim:
            problems.append("axis")
        else:
            n = x.shape[axis]
            if n < 1 or n & (n - 1):
                problems.append("length")
        out = None
        if out_kind == "in_place" and x.dtype == rdt and x.flags.writeable:
            out = x
        elif out_kind != "none":
            out = np.full(
                x.shape if out_kind != "shape" else x.shape + (2,),
                7,
                dtype=rdt if out_kind != "dtype" else (np.float32 if rdt != np.float32 else np.float64),
            )
            if out_kind == "readonly":
                out.flags.writeable = False
            if out_kind in ("shape", "dtype", "readonly"):
                problems.append("out " + out_kind)
        x0 = x.copy()
        before = snapshot(x)
        out_before = None if out is None or out is x else out.copy()
        try:
            y = numkern.fwht(x, axis, normalize=normalize, out=out)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert snapshot(x) == before
            if out_before is not None:
                np.testing.assert_array_equal(out, out_before)
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        if out is not x:
            assert snapshot(x) == before
        if out is not None:
            assert y is out
        assert y.dtype == rdt and y.shape == x0.shape
        if x0.size == 0:
            return
        n = x0.shape[axis]
        xf = x0.astype(np.float64)
        with np.errstate(all="ignore"):
            ref = _np_fwht(xf, axis) / (math.sqrt(n) if normalize else 1.0)
            norm2 = np.sqrt((xf * xf).sum(axis=axis, keepdims=True))
        u = UNIT[np.dtype(np.float32) if rdt != np.float64 else np.dtype(np.float64)]
        cmax = float(np.finfo(np.float32 if rdt != np.float64 else np.float64).max)
        finite_in = np.broadcast_to(np.isfinite(xf).all(axis=axis, keepdims=True), x0.shape)
        yf = y.astype(np.float64)
        # A slice with inf/NaN gives no finite output (every output sums every input).
        assert not np.isfinite(yf[~finite_in]).any()
        # Value check where no intermediate can overflow the compute type.
        ok = finite_in & np.broadcast_to(norm2 * math.sqrt(n) < cmax / 4, x0.shape)
        # Plus one denormal ulp of the compute type per butterfly stage and the scaling (absolute floor).
        tiny = 2.0**-149 if rdt != np.float64 else 2.0**-1074
        bound = (max(1, math.log2(n)) + 1) * (u * math.sqrt(n) * np.broadcast_to(norm2, x0.shape) + tiny)
        if rdt == np.float16:
            bound = bound + 1e-3 * np.abs(ref) + 6e-8
            ok &= np.abs(ref) < 6e4
        with np.errstate(invalid="ignore"):
            err = np.abs(yf - ref)
        assert (err[ok] <= bound[ok]).all(), f"fwht error {err[ok].max()} > {bound[ok].min()}"

    fuzz(fuzz_settings, run, case=_fwht_case())


# ---------------------------------------------------------------------------------------- sketches


def _dense(S):
    """The operator S as a dense float64 matrix, from its internal random state."""
    if isinstance(S, SRHT):
        H = scipy.linalg.hadamard(S.N).astype(np.float64)
        D = np.zeros((S.N, S.n))
        D[np.arange(S.n), S._perm] = np.where(S._neg == 1, -1.0, 1.0)
        return (H @ D)[S._rows.astype(np.int64)] / np.sqrt(S.m)
    if isinstance(S, Gaussian):
        return S.rows()
    D = np.zeros((S.m, S.n))
    for t in range(S._idx.shape[1]):
        D[S._idx[:, t], np.arange(S.n)] += S._sign[:, t]
    return D


KINDS = {"srht": SRHT, "gaussian": Gaussian, "sparse": SparseSign, "count": CountSketch}


@st.composite
def _sketch_case(draw):
    kind = draw(st.sampled_from(list(KINDS)))
    n = draw(pick(st.integers(1, 70), [0, -3, 2.0, True], 8))
    npow = 1 << max(0, (int(n) - 1).bit_length()) if isinstance(n, int) and n >= 1 else 1
    m = draw(pick(st.one_of(st.integers(1, npow), st.just(npow), st.just(np.int64(1))), [0, npow + 1, 1.0], 8))
    nnz = draw(pick(st.integers(1, 9), [0, -1, 2.5], 8))
    rng = draw(pick([0, 7, None, np.random.default_rng(3), np.int32(5)], ["seed", 1.5], 5))
    k_shape = draw(pick(["vec", "mat", "mat", "empty_k"], ["wrong_n", "3d", "wrong_dtype"]))
    k = draw(st.integers(1, 4))
    rows = int(n) if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 3
    if k_shape == "wrong_n":
        shape = (rows + 1, k)
    elif k_shape == "vec":
        shape = (rows,)
    elif k_shape == "3d":
        shape = (rows, k, 2)
    elif k_shape == "empty_k":
        shape = (rows, 0)
    else:
        shape = (rows, k)
    dtypes = [np.complex64] if k_shape == "wrong_dtype" else [np.float32, np.float64, np.int32, np.float16, np.bool_]
    A = draw(arrays(dtypes=dtypes, shape=shape, special=draw(st.booleans())))
    return kind, n, m, nnz, rng, k_shape, A


def test_fuzz_sketch_operators(fuzz_settings, isa):
    def run(case):
        kind, n, m, nnz, rng, k_shape, A = case
        cls = KINDS[kind]
        ctor_problems = []
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            ctor_problems.append("n")
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
            ctor_problems.append("m type")
        elif not ctor_problems and not 1 <= m <= (1 << max(0, (n - 1).bit_length())):
            ctor_problems.append("m range")
        if kind == "sparse" and (
            not isinstance(nnz, int) or not 1 <= nnz <= (m if isinstance(m, (int, np.integer)) else 0)
        ):
            ctor_problems.append("nnz")
        if isinstance(rng, (str, float)):
            ctor_problems.append("rng")
        try:
            S = cls(n, m, nnz_per_col=nnz, rng=rng) if kind == "sparse" else cls(n, m, rng=rng)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, ctor_problems)
            return
        assert not ctor_problems, f"constructor accepted bad input ({ctor_problems})"
        assert S.shape == (m, n)
        problems = ["shape"] if k_shape in ("wrong_n", "3d") else (["dtype"] if k_shape == "wrong_dtype" else [])
        before = snapshot(A)
        try:
            Y = S @ A
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert snapshot(A) == before
            return
        assert not problems, f"apply accepted bad input ({problems})"
        checked()
        assert snapshot(A) == before
        rdt = np.dtype(np.float32) if A.dtype in (np.float32, np.float16) else np.dtype(np.float64)
        assert Y.dtype == rdt and Y.shape == (m,) + A.shape[1:]
        if A.size == 0:
            assert not Y.any()
            return
        D = _dense(S)
        Af = A.astype(np.float64).reshape(n, -1)
        Yf = Y.astype(np.float64).reshape(m, -1)
        for j in range(Af.shape[1]):
            col = Af[:, j]
            if not np.isfinite(col).all():
                continue  # NaN/inf: 0 * inf makes the dense reference NaN where S skips the entry
            with np.errstate(all="ignore"):
                ref = D @ col
                mag = np.abs(D) @ np.abs(col)
            if not (np.isfinite(mag).all() and mag.max() < np.finfo(rdt).max / 4):
                continue  # overflow of the compute type is allowed
            tiny = 2.0**-149 if rdt == np.float32 else 2.0**-1074  # denormal results: one ulp per step
            bound = 4 * (n + 2) * (UNIT[rdt] * mag + tiny)
            err = np.abs(Yf[:, j] - ref)
            assert (err <= bound).all(), f"{kind}: error {err.max()} > {bound.min()}"

    fuzz(fuzz_settings, run, case=_sketch_case())


# ---------------------------------------------------------------------------------------- lstsq


@st.composite
def _lstsq_case(draw):
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31))
    k = draw(st.sampled_from([None, 1, 2]))
    method = draw(pick(["direct", "sketch", "precondition", "auto"], ["qr"], 4))
    sketch = draw(pick(["srht", "gaussian", "sparse_sign", "countsketch"], ["fft"], 4))
    m = draw(pick([None, None, "d", "2d", "N"], ["N+1", "d-1", 2.0], 6))
    eps = draw(pick([None, None, None, 0.5], [0.0, -1.0, np.inf], 4))
    delta = draw(pick([0.1, 0.5], [0.0, 1.0, np.nan], 4))
    tol = draw(pick([1e-10, 1e-6], [0.0, -1.0], 4))
    maxiter = draw(pick([None, None, 1, 50], [0, 2.5], 4))
    weights = draw(pick([None, None, "ok"], ["negative", "nan", "shape"], 6))
    special = draw(pick([None, None, "zero_col", "huge", "f32", "int"], ["nan_A", "inf_b"], 6))
    return n, d, seed, k, method, sketch, m, eps, delta, tol, maxiter, weights, special


def _resolve_m(m, n, d):
    N = 1 << max(0, (n - 1).bit_length())
    return {"d": d, "2d": 2 * d, "N": N, "N+1": N + 1, "d-1": d - 1}.get(m, m) if isinstance(m, str) else m


def test_fuzz_lstsq(fuzz_settings, isa):
    def run(case):
        n, d, seed, k, method, sketch, m, eps, delta, tol, maxiter, weights, special = case
        g = np.random.default_rng(seed)
        A = g.standard_normal((n, d))
        B = g.standard_normal(n if k is None else (n, k))
        w = None
        if weights == "ok":
            w = g.uniform(0, 2, n)
        elif weights == "negative":
            w = -np.ones(n)
        elif weights == "nan":
            w = np.full(n, np.nan)
        elif weights == "shape":
            w = np.ones(n + 1)
        if special == "nan_A":
            A[0, 0] = np.nan
        elif special == "inf_b":
            B.flat[0] = np.inf
        elif special == "zero_col":
            A[:, 0] = 0
        elif special == "huge":
            A *= 1e150
        elif special == "f32":
            A, B = A.astype(np.float32), B.astype(np.float32)
        elif special == "int":
            A = np.round(A * 10).astype(np.int32)
        m = _resolve_m(m, n, d)
        N = 1 << max(0, (n - 1).bit_length())
        problems = []
        if method not in ("direct", "sketch", "precondition", "auto"):
            problems.append("method")
        if sketch not in ("srht", "gaussian", "sparse_sign", "countsketch"):
            problems.append("sketch")
        if eps is not None and not (np.isfinite(eps) and eps > 0):
            problems.append("eps")
        if not 0 < delta < 1:
            problems.append("delta")
        if tol <= 0:
            problems.append("tol")
        if maxiter is not None and (not isinstance(maxiter, int) or maxiter < 1):
            problems.append("maxiter")
        if weights in ("negative", "nan", "shape"):
            problems.append("weights")
        if special in ("nan_A", "inf_b"):
            problems.append("non-finite")
        if m is not None and (not isinstance(m, int) or not d <= m <= N):
            problems.append("m")
        # eps gives m by the row rule when m is None (method "sketch"): may exceed the padded n.
        before = snapshot(A, B, w)
        try:
            res = numkern.lstsq(
                A,
                B,
                method=method,
                sketch=sketch,
                m=m,
                eps=eps,
                delta=delta,
                tol=tol,
                maxiter=maxiter,
                weights=w,
                rng=seed,
            )
        except (TypeError, ValueError) as exc:
            msg = str(exc)
            if not problems and eps is not None and m is None and "sketch rows" in msg:
                return  # documented: the eps/delta rule needs more rows than the padded n
            if not problems and special == "huge" and "overflow" in msg:
                return
            assert_raised_for(exc, problems)
            assert snapshot(A, B, w) == before
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        assert snapshot(A, B, w) == before
        x = res.x
        assert x.shape == ((d,) if k is None else (d, k))
        rdt = np.float32 if special == "f32" else np.float64
        assert x.dtype == rdt
        Af, Bf = A.astype(np.float64), B.astype(np.float64).reshape(n, -1)
        sw = np.ones(n) if w is None else np.sqrt(w)
        Aw, Bw = Af * sw[:, None], Bf * sw[:, None]
        xf = x.astype(np.float64).reshape(d, -1)
        r = np.linalg.norm(Aw @ xf - Bw, axis=0)
        u = 2.0**-24 if rdt == np.float32 else 2.0**-53
        tol_res = 1e3 * u * (np.linalg.norm(Aw) * np.linalg.norm(xf, axis=0) + np.linalg.norm(Bw, axis=0)) + 1e-300
        assert np.all(np.abs(np.atleast_1d(res.residual_norm) - r) <= tol_res + 1e-6 * r)
        if res.method == "sketch":
            return  # a random approximation; its quality is checked statistically in test_lstsq.py
        x_ref = np.linalg.pinv(Aw, rcond=max(n, d) * np.finfo(np.float64).eps) @ Bw
        cond = np.linalg.cond(Aw) if np.linalg.matrix_rank(Aw) == d else 1e8
        rel = np.linalg.norm(xf - x_ref, axis=0) / np.maximum(np.linalg.norm(x_ref, axis=0), 1e-300)
        lim = max(1e-6, float(tol)) * max(1.0, cond) * 10 + (1e-5 if rdt == np.float32 else 0)
        converged = res.method == "direct" or maxiter is None or res.iterations < maxiter
        if converged and (res.method == "direct" or np.linalg.matrix_rank(Aw) == d):
            assert np.all((rel <= lim) | (np.linalg.norm(x_ref, axis=0) == 0)), f"{res.method}: rel error {rel}"

    fuzz(fuzz_settings, run, scale=0.6, case=_lstsq_case())


def test_fuzz_sketch_wrong_dtypes_raise_type_error(fuzz_settings, isa):
    def run(dtype, which):
        x = np.zeros((4, 2), dtype=dtype)
        fn = {
            "fwht": numkern.fwht,
            "srht": SRHT(4, 2, rng=0).apply,
            "gauss": Gaussian(4, 2, rng=0).apply,
            "sparse": SparseSign(4, 2, nnz_per_col=2, rng=0).apply,
            "count": CountSketch(4, 2, rng=0).apply,
            "lstsq": lambda a: numkern.lstsq(a, np.ones(4)),
            "lstsq_b": lambda a: numkern.lstsq(np.eye(4), a),
        }[which]
        with pytest.raises(TypeError, match="dtype"):
            fn(x)

    fuzz(
        fuzz_settings,
        run,
        scale=0.3,
        dtype=st.sampled_from(WRONG_DTYPES),
        which=st.sampled_from(["fwht", "srht", "gauss", "sparse", "count", "lstsq", "lstsq_b"]),
    )
