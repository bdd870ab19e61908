"""Least squares on a Dask array chunked by rows: one sketch pass (randomness keyed by the global
row index, summed in a fixed tree), then sketch-and-solve or a preconditioned solver whose
iterations, refinement steps included, are passes of blockwise products."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import dask
import dask.array as da
import numpy as np

from .. import _core
from .._lstsq_solve import (
    PRECONDITION_ROWS_PER_COL,
    SKETCH_ROWS_PER_COL,
    bootstrap_linf,
    check_shapes,
    check_solver_options,
    factor_sketch,
    misses_rank,
    one_blas_thread,
    pcg_solve,
    refine_column,
)
from .._validate import generator, next_pow2
from ..linalg import LstsqResult, sketch_rows
from ..sketch import TILE, fold_tile_sums, merge_tile_sums, sparse_sign_rows, sparse_sign_scale
from ._common import aligned, task, tree_reduce

if TYPE_CHECKING:
    from .._validate import RngLike
    from ..linalg import LstsqResult

#: Rows per tile of the fixed summation tree (the C++ kernel's tile; see _core.gaussian_apply).
METHODS = ("sketch", "precondition")
SKETCHES = ("gaussian", "sparse_sign", "countsketch")


def _aligned_row_chunks(chunks, n):
    """Row chunks whose boundaries are the nearest multiples of TILE to the given ones."""
    bounds = np.cumsum((0,) + tuple(chunks))[1:-1]
    cuts = sorted({0, n} | {int(min(n, round(b / TILE) * TILE)) for b in bounds})
    return tuple(b - a for a, b in zip(cuts[:-1], cuts[1:]) if b > a)


@task
def _sketch_block(a, b, row0, key, m, dtype, kind="gaussian", nnz=8):
    """Unscaled sketch of [a b] (rows row0.. of the global array), one node per tile, without forming
    [a b]: every output column is summed on its own, so the sketches of a and b side by side are
    those of [a b] bit for bit."""
    a = aligned(a, dtype)
    b = aligned(np.asarray(b).reshape(len(a), -1), dtype)
    d, k = a.shape[1], b.shape[1]
    scale = sparse_sign_scale(nnz, dtype)
    nodes = {}
    for t0 in range(0, a.shape[0], TILE):
        y = np.empty((m, d + k), dtype=dtype)
        ta, tb = a[t0 : t0 + TILE], b[t0 : t0 + TILE]
        if kind == "gaussian":
            _core.gaussian_apply_pair(ta, tb, key, 1.0, y, row0 + t0)
        else:
            idx, neg = sparse_sign_rows(key, row0 + t0, ta.shape[0], m, nnz)
            signs = neg.view(np.uint8)
            ya, yb = np.empty((m, d), dtype=dtype), np.empty((m, k), dtype=dtype)
            _core.sparse_apply(ta, idx, signs, scale, ya)
            _core.sparse_apply(tb, idx, signs, scale, yb)
            y[:, :d], y[:, d:] = ya, yb
        nodes[(0, (row0 + t0) // TILE)] = y
    return merge_tile_sums(nodes)


@task
def _residual_block(a, b, U, want_g, dtype):
    """Per tile and per column of U: ||a u - b||^2 and, if want_g, a^T (a u - b) (the C++ row
    residual on one tile, i.e. one of the in-memory kernel's 4096-row chunks)."""
    a = aligned(a, dtype)
    b = None if b is None else aligned(np.asarray(b).reshape(len(a), -1), dtype)
    out = []
    for t0 in range(0, a.shape[0], TILE):
        at = a[t0 : t0 + TILE]
        cols = []
        for j in range(U.shape[1]):
            g = np.empty(a.shape[1], dtype=dtype) if want_g else None
            bj = None if b is None else aligned(b[t0 : t0 + TILE, j])
            ss = _core.row_residual(at, aligned(U[:, j], dtype), bj, g, None)
            cols.append((ss, g))
        out.append(cols)
    return out


@task
def _refine_block(a, b, x, r):
    """One row block's share of a refinement residual pass: f and the per-tile partials, and with
    r None (the first pass) also r = b - a x rounded once. The kernel reads a given r only."""
    a = aligned(a, np.float64)
    n = a.shape[0]
    first = r is None
    r = np.empty(n) if first else np.require(r, np.float64, ("C", "A", "W"))  # arrays off the network may be read-only
    f = np.empty(n)
    parts = np.empty((-(-n // TILE), 3, a.shape[1]))
    _core.ls_refine_partials(a, aligned(x, np.float64), r, first, aligned(np.ravel(b), np.float64), f, parts)
    return (r, f, parts) if first else (f, parts)


@task
def _update_block(a, dx, f, r):
    """r + f - a dx for one row block (the in-memory refinement's update, row by row)."""
    a = aligned(a, np.float64)
    t = np.empty(a.shape[0])
    _core.row_residual(a, aligned(dx, np.float64), aligned(f, np.float64), None, t)
    return np.subtract(r, t)


class _BlockRefinement:
    """The passes of ``numkern.linalg.refine_column`` over row blocks: r and f stay on the workers
    (persisted per block, 16 bytes per row), only the (tiles, 3, d) partials come back and are
    merged in tile order."""

    def __init__(self, rows: _Rows) -> None:
        self.rows = rows
        self.r: list = []  # per row block: the persisted residual r and its rounding error f
        self.f: list = []

    def residual(self, x, first, h):
        self.f = []  # the previous f is not needed again: release it before the pass
        nout = 3 if first else 2
        prev = [None] * len(self.rows.A) if first else self.r
        states = [
            dask.delayed(_refine_block, pure=True, nout=nout)(a, b, x, r)
            for a, b, r in zip(self.rows.A, self.rows.B, prev)
        ]
        kept = dask.persist(*[st[i] for i in range(nout) for st in states])
        nb = len(states)
        if first:
            self.r = list(kept[:nb])
        self.f = list(kept[-2 * nb : -nb])
        parts = dask.compute(*kept[-nb:])
        _core.ls_refine_merge(np.ascontiguousarray(np.concatenate(parts)), h)

    def normal(self, v, g):
        g[:] = self.rows.residual(v[:, None], False, True)[1][:, 0]

    def update(self, dx):
        self.r = list(
            dask.persist(
                *[dask.delayed(_update_block, pure=True)(a, dx, f, r) for a, f, r in zip(self.rows.A, self.f, self.r)]
            )
        )


class _Rows:
    """A and B as aligned delayed row blocks, with the passes over them."""

    def __init__(self, A, B, dtype):
        chunks = _aligned_row_chunks(A.chunks[0], A.shape[0])
        self.A = A.rechunk({0: chunks, 1: -1}).to_delayed().ravel()
        self.B = B.rechunk({0: chunks, 1: -1}).to_delayed().ravel()
        self.starts = np.cumsum((0,) + chunks)[:-1]
        self.dtype = dtype

    def sketch(self, key, m, split_every, kind, nnz):
        parts = [
            dask.delayed(_sketch_block, pure=True)(a, b, int(r0), key, m, self.dtype, kind, nnz)
            for a, b, r0 in zip(self.A, self.B, self.starts)
        ]
        return fold_tile_sums(tree_reduce(parts, merge_tile_sums, split_every).compute())

    def residual(self, U, with_b, want_g):
        """Sums over tiles, in ascending tile order as the in-memory kernel: per column of U,
        ||A u - b||^2 (or ||A u||^2) and A^T (A u - b)."""
        U = np.asarray(U).reshape(U.shape[0], -1)
        parts = [
            dask.delayed(_residual_block, pure=True)(a, b if with_b else None, U, want_g, self.dtype)
            for a, b in zip(self.A, self.B)
        ]
        tiles = [cols for block in dask.compute(*parts) for cols in block]
        ss = np.zeros(U.shape[1])
        g = np.zeros((U.shape[0], U.shape[1]), dtype=self.dtype) if want_g else None
        for j in range(U.shape[1]):
            total = 0.0
            for cols in tiles:
                total += cols[j][0]
                if g is not None:
                    g[:, j] += cols[j][1]
            ss[j] = total
        return ss, g


def lstsq(
    A: da.Array,
    b: da.Array,
    *,
    method: str = "sketch",
    sketch: str = "gaussian",
    m: int | None = None,
    eps: float | None = None,
    delta: float = 0.1,
    tol: float = 1e-10,
    maxiter: int | None = None,
    rng: RngLike = None,
    split_every: int = 8,
) -> LstsqResult:
    """Least squares ``argmin_x ||A x - b||_2`` for Dask arrays chunked by rows.

    Parameters
    ----------
    A : dask.array.Array or array_like, shape (n, d)
    b : dask.array.Array or array_like, shape (n,) or (n, k)
        Row chunks of any sizes (they are realigned to multiples of 4096 rows, see Notes).
    method : {"sketch", "precondition"}
        ``"sketch"``: sketch-and-solve from one pass over the data. ``"precondition"``: the sketch
        gives the preconditioner of conjugate gradients on the normal equations (as
        :func:`numkern.lstsq`), each iteration one pass of blockwise products ``A^T (A u)`` (one
        task per row block); persist ``A`` first if it is recomputed otherwise.
    sketch : {"gaussian", "sparse_sign", "countsketch"}
        :class:`numkern.sketch.Gaussian`, ``SparseSign`` (8 nonzeros per column) or
        ``CountSketch``: each draws column j of ``S`` from a counter-based function of (key, j)
        and sums over a fixed tree of row tiles, so the result is bit-identical to
        :func:`numkern.lstsq` with the same ``sketch`` and ``rng``, for any row chunking.
        SRHT is not available: see docs/design/dask.md.
    m, eps, delta, tol, maxiter, rng
        As :func:`numkern.lstsq`. Randomness is drawn on the driver in the same order.
    split_every : int, default 8
        Fan-in of the tree that sums the row blocks' sketches.

    Returns
    -------
    numkern.linalg.LstsqResult

    Notes
    -----
    ``S A`` is formed by the Gaussian sketch of :class:`numkern.sketch.Gaussian`, whose entry
    ``(i, j)`` is a hash of the key and ``(i, j)`` with ``j`` the global row: a row block builds its
    ``S_i A_i`` alone (the sparse sketches: a hash of the key and ``j``). Floating-point sums depend on their order, so the order is fixed by the
    data's row index, not by the chunking: rows are summed within tiles of 4096 rows, tiles in the
    dyadic tree over tile indices (``numkern.lstsq`` uses the same tree in C++). Row chunks are
    realigned to tile boundaries (a cheap rechunk), so every tile is in one block. The result is
    bit-identical for every chunking, every ``split_every`` and every scheduler, and bit-identical
    to ``numkern.lstsq(A, b, sketch="gaussian", method=method, rng=rng)`` on the whole array
    (also the residuals and the preconditioned iterations, whose per-tile sums are added in
    ascending tile order as the in-memory kernel does).

    ``method="precondition"`` runs the in-memory solver's iterative refinement in double-double
    (needed on ill-conditioned problems, where CG and LAPACK stop at their float64 floor): the
    residual and its rounding error stay on the workers, 16 bytes per row, and only ``3 d`` sums
    per tile come back to the driver. If the sketch has lower rank than ``A`` and ``x`` misses
    part of the solution (checked as in memory), the result comes from a distributed QR of ``A``
    instead (``method == "direct"``; not bit-identical to the in-memory fallback, which is LAPACK's
    ``gelsd``).

    Raises
    ------
    ValueError
        Bad shapes or parameters, NaN/inf in the sketch of ``A`` or ``b`` (checked after the pass).
    NotImplementedError
        For ``sketch="srht"``.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> import numkern
    >>> import numkern.dask as nkd
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((10000, 5))
    >>> b = A @ np.arange(5.0) + rng.standard_normal(10000)
    >>> res = nkd.lstsq(da.from_array(A, chunks=(3000, 5)), da.from_array(b, chunks=3000), rng=0)
    >>> ref = numkern.lstsq(A, b, method="sketch", sketch="gaussian", rng=0)
    >>> print(res.method, np.array_equal(res.x, ref.x))       # bit-identical for any chunking
    sketch True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if sketch not in SKETCHES:
        raise NotImplementedError(f"numkern.dask.lstsq supports sketch in {SKETCHES}, got {sketch!r}")
    check_solver_options(method, eps, delta, tol, maxiter)
    A, b = da.asarray(A), da.asarray(b)
    for arr, name in ((A, "A"), (b, "b")):
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    n, d, vector = check_shapes(A, b)
    if n >= 2**32:
        raise ValueError("the Gaussian sketch supports n < 2**32 rows")
    B = b.reshape(n, 1) if vector else b
    k = B.shape[1]
    N = next_pow2(n)
    if m is not None:
        if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)):
            raise TypeError(f"m must be an integer, got {type(m).__name__}")
        m = int(m)
        if m < d or m > N:
            raise ValueError(f"m={m} must be in [d={d}, {N}] (the columns of A and its padded row count)")
    elif eps is not None and method == "sketch":
        m = sketch_rows(d, eps, delta, sketch)
        if m > N:
            raise ValueError(f"eps={eps}, delta={delta} need m={m} sketch rows, more than the padded row count {N}")
    if m is None:
        m = min(N, max(d, (SKETCH_ROWS_PER_COL if method == "sketch" else PRECONDITION_ROWS_PER_COL) * d))
    out_dtype = np.float32 if (A.dtype == np.float32 and b.dtype == np.float32) else np.float64
    dtype = out_dtype if method == "sketch" else np.float64
    g = generator(rng)
    key = int(g.integers(0, 2**63, dtype=np.int64))  # as numkern.sketch.Gaussian(n, m, rng=g)

    rows = _Rows(A, B, dtype)
    nnz = 1 if sketch == "countsketch" else min(8, m)  # SparseSign's default nnz_per_col
    SAB = rows.sketch(key, m, split_every, sketch, nnz)
    scale = dtype(1.0 / math.sqrt(m))
    if sketch == "gaussian" and scale != 1:
        SAB = SAB * scale
    SAB = SAB.astype(np.float64, copy=False)
    SA, Sb = SAB[:, :d], SAB[:, d:]
    if not (np.isfinite(SA).all() and np.isfinite(Sb).all()):
        raise ValueError("the sketch of A or b is not finite: NaN/inf in the data, or overflow (scale A and b down)")
    with one_blas_thread():
        U, s, Vt, r, c = factor_sketch(SA, Sb, np.finfo(dtype).eps, basis=method == "sketch")

    def pack(v):
        v = np.asarray(v, dtype=np.float64)
        return float(v[0]) if vector else v

    if method == "sketch":
        with one_blas_thread():
            x = Vt.T @ (c / s[:, None]) if r else np.zeros((d, k))
            est = bootstrap_linf(U, s, Vt, SA, Sb, x, g, delta)
        ss, _ = rows.residual(x.astype(dtype), True, False)
        x = x.astype(out_dtype)
        return LstsqResult(x[:, 0] if vector else x, pack(np.sqrt(ss)), r, 0, "sketch", m, pack(est))

    maxiter = 200 if maxiter is None else int(maxiter)
    P = np.ascontiguousarray(Vt.T / s)
    X = np.zeros((d, k))
    res, est = np.empty(k), np.empty(k)
    iters = 0
    reasons = []
    for j in range(k):
        sel = rows_for_column(rows, j) if k > 1 else rows

        def residual(u, bv, gout, sel=sel):
            ss, gg = sel.residual(u[:, None], bv is not None, True)
            gout[:] = gg[:, 0]
            return ss[0]

        with one_blas_thread():  # b="b": pcg_solve passes it through to residual as "with b"
            y, it, gk, met = pcg_solve(None, "b", P, c[:, j], float(tol), maxiter, residual=residual)
            xj = P @ y
            e = P @ gk
            why = "converged" if met else ("maxiter" if it >= maxiter else "stalled")
            if r:  # as numkern.lstsq: the same refinement, its passes over the row blocks
                xj, it_ref, e_ref = refine_column(_BlockRefinement(sel), P, xj, float(tol), maxiter)
                if it_ref:
                    it, e = it + it_ref, e_ref
                    why = "maxiter" if it >= maxiter else "refined"
                else:
                    why = "converged"
        reasons.append(why)
        X[:, j] = xj
        iters = max(iters, it)
        res[j] = math.sqrt(sel.residual(X[:, j : j + 1], True, False)[0][0])
        est[j] = float(np.abs(e).max()) if r else 0.0
    if r < d:  # the sketch may have lost rank of A: as numkern.lstsq, check the gradient
        a_norm = float(da.linalg.norm(A.astype(np.float64)).compute())
        b_norms = np.sqrt(da.sum(B.astype(np.float64) ** 2, axis=0).compute())
        for j in range(k):
            sel = rows_for_column(rows, j) if k > 1 else rows
            gA = sel.residual(X[:, j : j + 1], True, True)[1][:, 0]
            if misses_rank(np.linalg.norm(gA), a_norm, np.linalg.norm(X[:, j]), b_norms[j], tol):
                return _direct(A, B, rows, vector, out_dtype, pack)
    X = X.astype(out_dtype)
    reason = max(reasons, key=("converged", "refined", "stalled", "maxiter").index)
    return LstsqResult(X[:, 0] if vector else X, pack(res), r, iters, "precondition", m, pack(est), reason)


def _direct(A, B, rows, vector, out_dtype, pack):
    """The fallback of a sketch that lost rank of A (numkern.lstsq falls back to LAPACK): a
    distributed QR of A (dask's TSQR), then the minimum-norm solution of the small R x = Q^T b by
    LAPACK, as A = Q R with orthonormal Q leaves the same problem in R."""
    A64 = A.astype(np.float64).rechunk({1: -1})
    if A64.shape[0] < A64.shape[1]:
        A64 = A64.rechunk({0: -1})  # dask's TSQR needs n >= d across blocks; such an A is small
    q, R = da.linalg.qr(A64)
    R, qtb = dask.compute(R, q.T @ B.astype(np.float64).rechunk({0: A64.chunks[0], 1: -1}))
    x, _, rank, sv = np.linalg.lstsq(R, qtb, rcond=None)
    res = np.sqrt(rows.residual(x, True, False)[0])
    cond = sv[0] / sv[rank - 1] if rank else 0.0
    est = np.finfo(np.float64).eps * cond * np.abs(x).max(axis=0)
    x = x.astype(out_dtype)
    return LstsqResult(x[:, 0] if vector else x, pack(res), int(rank), 0, "direct", 0, pack(est))


def rows_for_column(rows, j):
    """A view of `rows` whose right-hand side is column j of B."""
    view = object.__new__(_Rows)
    view.A, view.starts, view.dtype = rows.A, rows.starts, rows.dtype
    view.B = [dask.delayed(_column, pure=True)(blk, j) for blk in rows.B]
    return view


def _column(block, j):
    return np.asarray(block)[:, j : j + 1]
