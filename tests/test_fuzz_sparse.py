"""Fuzzing the scipy.sparse paths: the sketch operators on CSR/CSC/COO input (against the dense
float64 operator) and numkern.lstsq on sparse A with the solver controls (x0, atol, btol, maxiter)
(against the pseudo-inverse solution); bad input (formats, dtypes, shapes, NaN/inf, option values)
raises TypeError/ValueError, and inputs are never mutated."""

import numpy as np
import scipy.sparse as sp
from _fuzz_strategies import assert_raised_for, checked, fuzz, pick
from hypothesis import strategies as st
from test_fuzz_sketch import KINDS, UNIT, _dense

import numkern


def _sparse_snapshot(A):
    if not sp.issparse(A):
        return None
    c = A.tocoo(copy=True)
    return (A.format, A.shape, c.data.tobytes(), c.coords[0].tobytes(), c.coords[1].tobytes())


def _make(draw, n, d, fmt, dtype, special):
    density = draw(st.sampled_from([0.0, 0.1, 0.4, 1.0]))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    mask = rng.random((n, d)) < density
    vals = rng.standard_normal((n, d))
    if dtype in (np.int32, np.bool_):
        vals = np.round(vals * 3)
        special = None  # integers hold no NaN/inf
    if special == "nan" and mask.any():
        vals[np.argwhere(mask)[0][0], np.argwhere(mask)[0][1]] = np.nan
    if special == "inf" and mask.any():
        vals[np.argwhere(mask)[0][0], np.argwhere(mask)[0][1]] = -np.inf
    dense = np.where(mask, vals, 0).astype(dtype)
    A = sp.csr_array(dense) if fmt != "matrix" else sp.csr_matrix(dense)
    return A.asformat(fmt if fmt != "matrix" else "csr"), dense, special


@st.composite
def _case(draw):
    kind = draw(st.sampled_from(list(KINDS)))
    n = draw(st.integers(1, 60))
    d = draw(st.integers(1, 5))
    npow = 1 << max(0, (n - 1).bit_length())
    m = draw(st.integers(1, npow))
    fmt = draw(pick(["csr", "csc", "coo", "matrix"], ["lil", "dok", "dia"], 10))
    dtype = draw(pick([np.float64, np.float32, np.int32, np.bool_], [np.complex128], 8))
    special = draw(pick([None], ["nan", "inf"], 8))
    rows = draw(pick([n], [n + 1], 8))
    A, dense, special = _make(draw, rows, d, fmt, dtype, special)
    return kind, n, m, A, dense, special


def test_fuzz_sparse_sketch(fuzz_settings, isa):
    def run(case):
        kind, n, m, A, dense, special = case
        cls = KINDS[kind]
        S = cls(n, m, nnz_per_col=min(3, m), rng=1) if kind == "sparse" else cls(n, m, rng=1)
        problems = []
        if A.format not in ("csr", "csc", "coo"):
            problems.append("format")
        if A.dtype.kind == "c":
            problems.append("dtype")
        if A.shape[0] != n:
            problems.append("shape")
        if special and A.nnz and not np.isfinite(dense).all():
            problems.append("non-finite")
        before = _sparse_snapshot(A)
        try:
            Y = S @ A
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert _sparse_snapshot(A) == before
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        assert _sparse_snapshot(A) == before
        rdt = np.dtype(np.float32) if dense.dtype == np.float32 else np.dtype(np.float64)
        assert Y.dtype == rdt and Y.shape == (m, dense.shape[1])
        D = _dense(S)
        Af = dense.astype(np.float64)
        ref = D @ Af
        bound = 4 * (n + 2) * (UNIT[rdt] * (np.abs(D) @ np.abs(Af)) + 2.0**-149)
        assert (np.abs(Y - ref) <= bound).all(), f"{kind}: error {np.abs(Y - ref).max()}"
        # The dense operand gives the same numbers (bit for bit for the dense sketches).
        Yd = S @ dense
        if kind in ("srht", "gaussian"):
            np.testing.assert_array_equal(Y, Yd)
        else:
            assert (np.abs(Y - Yd) <= 2 * bound).all()

    fuzz(fuzz_settings, run, case=_case())


@st.composite
def _lstsq_case(draw):
    n = draw(st.integers(1, 50))
    d = draw(st.integers(1, 5))
    fmt = draw(pick(["csr", "csc", "coo"], ["lil"], 5))
    dtype = draw(pick([np.float64, np.float32], [np.complex128], 5))
    special = draw(pick([None], ["nan"], 5))
    A, dense, special = _make(draw, n, d, fmt, dtype, special)
    seed = draw(st.integers(0, 2**31))
    k = draw(st.sampled_from([None, 2]))
    method = draw(st.sampled_from(["precondition", "precondition", "sketch", "direct", "auto"]))
    sketch = draw(st.sampled_from([None, "srht", "gaussian", "sparse_sign", "countsketch"]))
    atol = draw(pick([None, None, 1e-6, 1e-12, 0.0], [-1.0, np.nan], 5))
    btol = draw(pick([None, None, 1e-8, 0.0], [-1.0], 5))
    maxiter = draw(pick([None, None, 1, 500], [0], 5))
    x0 = draw(pick([None, None, "zeros", "ones"], ["shape", "nan"], 6))
    return A, dense, seed, k, method, sketch, atol, btol, maxiter, x0, special


def test_fuzz_sparse_lstsq(fuzz_settings, isa):
    def run(case):
        A, dense, seed, k, method, sketch, atol, btol, maxiter, x0, special = case
        n, d = dense.shape
        g = np.random.default_rng(seed)
        B = g.standard_normal(n if k is None else (n, k))
        sol_shape = (d,) if k is None else (d, k)
        X0 = {
            "zeros": np.zeros(sol_shape),
            "ones": np.ones(sol_shape),
            "shape": np.ones(d + 1),
            "nan": np.full(sol_shape, np.nan),
        }.get(x0)
        problems = []
        if A.format not in ("csr", "csc", "coo"):
            problems.append("format")
        if A.dtype.kind == "c":
            problems.append("dtype")
        if special and A.nnz and not np.isfinite(dense).all():
            problems.append("non-finite")
        for v in (atol, btol):
            if v is not None and not (np.isfinite(v) and v >= 0):
                problems.append("tol")
        if maxiter is not None and maxiter < 1:
            problems.append("maxiter")
        if x0 in ("shape", "nan"):
            problems.append("x0")
        if (X0 is not None or atol is not None or btol is not None) and method in ("sketch", "direct"):
            problems.append("x0/atol/btol with a method that does not iterate")
        before = _sparse_snapshot(A), B.tobytes()
        try:
            res = numkern.lstsq(
                A, B, method=method, sketch=sketch, atol=atol, btol=btol, maxiter=maxiter, x0=X0, rng=seed
            )
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert (_sparse_snapshot(A), B.tobytes()) == before
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        assert (_sparse_snapshot(A), B.tobytes()) == before
        rdt = np.float64  # b is float64
        assert res.x.shape == sol_shape and res.x.dtype == rdt
        assert res.reason in ("converged", "refined", "stalled", "maxiter", "solved")
        Af = dense.astype(np.float64)
        xf = res.x.reshape(d, -1)
        r = np.linalg.norm(Af @ xf - B.reshape(n, -1), axis=0)
        assert np.allclose(np.atleast_1d(res.residual_norm), r, rtol=1e-6, atol=1e-9)
        if res.method == "sketch" or res.reason in ("maxiter", "stalled"):
            return
        x_ref = np.linalg.pinv(Af, rcond=max(n, d) * np.finfo(np.float64).eps) @ B.reshape(n, -1)
        full = np.linalg.matrix_rank(Af) == d
        if res.method == "direct" or (full and atol is None and btol is None):
            cond = np.linalg.cond(Af) if full else 1e8
            rel = np.linalg.norm(xf - x_ref, axis=0) / np.maximum(np.linalg.norm(x_ref, axis=0), 1e-300)
            lim = 1e-6 * max(1.0, cond) * 10 + (1e-5 if dense.dtype == np.float32 else 0)
            assert np.all((rel <= lim) | (np.linalg.norm(x_ref, axis=0) == 0)), f"{res.method}: rel error {rel}"
        elif res.reason == "converged" and atol is not None and btol is not None:
            # LSQR's tests hold (up to the rounding of this float64 check).
            anorm = np.linalg.norm(Af)
            for j in range(xf.shape[1]):
                rj = B.reshape(n, -1)[:, j] - Af @ xf[:, j]
                rn, arn = np.linalg.norm(rj), np.linalg.norm(Af.T @ rj)
                slack = 1e-12 * anorm * (anorm * np.linalg.norm(xf[:, j]) + np.linalg.norm(B))
                ok = (
                    rn
                    <= btol * np.linalg.norm(B.reshape(n, -1)[:, j]) + atol * anorm * np.linalg.norm(xf[:, j]) + slack
                )
                assert ok or arn <= atol * anorm * rn + slack * anorm

    fuzz(fuzz_settings, run, scale=0.6, case=_lstsq_case())
