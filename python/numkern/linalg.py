"""Least squares by sketching: sketch-and-solve with an l-infinity error guarantee (Song, Ye, Yin
& Zhang, ICML 2023), sketch-and-precondition to full accuracy (Blendenpik / LSRN style), and a
LAPACK fallback."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._lstsq_solve import (
    C_ROWS,
    PRECONDITION_ROWS_PER_COL,
    SKETCH_ROWS_PER_COL,
    SKETCHES,
    LsqrTest,
    RefinementPasses,
    bootstrap_linf,
    check_eps_delta,
    check_lsqr_options,
    check_shapes,
    check_solver_options,
    finite_or_raise,
    frobenius,
    misses_rank,
    one_blas_thread,
    pcg_solve,
    refine_column,
    residual_norms,
    row_residual,
    solve_sketch,
)
from ._sparse import CsrRows, csr_rows, dense_rhs, is_scipy_sparse
from ._validate import c_aligned, float_operand, generator, next_pow2, scale_rows

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._validate import RngLike

__all__ = ["LstsqResult", "lstsq", "sketch_rows"]


@dataclass
class LstsqResult:
    """Result of :func:`lstsq`.

    Attributes
    ----------
    x : ndarray
        Solution, shape ``(d,)`` or ``(d, k)``, in the result dtype.
    residual_norm : float or ndarray
        ``||A x - b||_2`` (weighted if ``weights`` were given), one per column of ``b``.
    rank : int
        Numerical rank used (of the sketch ``S A``, or of ``A`` for ``"direct"``).
    iterations : int
        Iterations of the preconditioned solver (largest over columns); 0 otherwise.
    method : str
        The method that ran (``"auto"`` resolved).
    sketch_rows : int
        Rows of the sketch (0 for ``"direct"``).
    linf_error_estimate : float or ndarray
        Estimate of ``||x - x*||_inf`` per column (see :func:`lstsq`, Notes).
    reason : str
        Why the solver stopped (the worst over the columns of ``b``): ``"converged"`` (the
        preconditioned solver met its test: ``tol``, or LSQR's tests with ``atol``/``btol``),
        ``"refined"`` (iterative refinement corrections took ``x`` to ``tol``), ``"stalled"``
        (the float64 rounding floor was reached before the test held), ``"maxiter"`` (the
        iteration cap was reached first); ``"solved"`` for ``"sketch"`` and ``"direct"``, which
        do not iterate.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> A = np.vander(np.linspace(0, 1, 100), 3)
    >>> res = numkern.lstsq(A, A @ np.array([1.0, -2.0, 0.5]), method="direct")
    >>> print(res.method, res.rank, res.x.round(6) + 0.0, res.iterations, res.sketch_rows)
    direct 3 [ 1.  -2.   0.5] 0 0
    """

    x: np.ndarray
    residual_norm: float | np.ndarray
    rank: int
    iterations: int
    method: str
    sketch_rows: int
    linf_error_estimate: float | np.ndarray
    reason: str = "solved"


def sketch_rows(d: int, eps: float, delta: float = 0.1, sketch: str = "srht") -> int:
    """Sketch rows for the l-infinity bound with probability ``1 - delta``.

    The calibrated rule ``ceil(C_ROWS * d * ln(2d / delta) / eps**2)``; for ``"gaussian"`` at
    least the rows of the proven sufficient condition (docs/design/sketch.md)
    ``sqrt(m) >= sqrt(d) + sqrt(2 ln(2/delta)) + sqrt(2 d ln(2d/delta)) / eps``.
    """
    check_eps_delta(eps, delta)
    m = int(math.ceil(C_ROWS * d * math.log(2 * d / delta) / eps**2))
    if sketch == "gaussian":
        root = math.sqrt(d) + math.sqrt(2 * math.log(2 / delta)) + math.sqrt(2 * d * math.log(2 * d / delta)) / eps
        m = max(m, int(math.ceil(root**2)))
    return m


def lstsq(
    A: ArrayLike,
    b: ArrayLike,
    *,
    method: str = "auto",
    sketch: str | None = None,
    m: int | None = None,
    eps: float | None = None,
    delta: float = 0.1,
    tol: float = 1e-10,
    maxiter: int | None = None,
    weights: ArrayLike | None = None,
    rng: RngLike = None,
    x0: ArrayLike | None = None,
    atol: float | None = None,
    btol: float | None = None,
) -> LstsqResult:
    """Least squares ``argmin_x ||A x - b||_2`` by sketching.

    Parameters
    ----------
    A : array_like or scipy.sparse array/matrix, shape (n, d)
        Dense, or a scipy.sparse CSR, CSC or COO array or matrix (converted to canonical CSR in
        O(nnz), never densified except by ``method="direct"``; other sparse formats raise
        TypeError: call ``A.tocsr()``). With a sparse ``A`` every pass over ``A`` (the sketch, the
        CG products ``A^T (A v)``, the refinement residuals) runs on the stored entries in C++,
        threaded, in a fixed summation order.
    b : array_like, shape (n,) or (n, k)
        float32 or float64 (float16/int/bool are promoted as elsewhere in numkern). The result is
        float32 only if both are float32. A scipy.sparse ``b`` is densified. A float32 ``A``
        (dense or sparse) is kept in float32 by ``method="precondition"``, without a float64 copy:
        the sketch, the CG products and the double-double refinement read the float32 entries and
        compute in float64, so ``x`` is the solution of the float32-stored
        problem to ``tol`` (measured 1e-11 or better at cond 1e4 and 1e8; see
        docs/design/sketch.md).
    method : {"auto", "sketch", "precondition", "direct"}
        ``"sketch"``: sketch-and-solve, ``x' = argmin ||S A x - S b||``. ``"precondition"``:
        sketch-and-precondition to ``tol``: SVD ``S A = U Sigma V^T`` with ``m`` about ``4d``
        rows, right preconditioner ``P = V_r Sigma_r^-1``, conjugate gradients on
        ``(AP)^T (AP) y = (AP)^T b`` warm-started from the sketch-and-solve answer
        ``y0 = U^T S b`` (Rokhlin & Tygert 2008; Avron, Maymounkov & Toledo 2010, Blendenpik;
        Meng, Saunders & Mahoney 2014, LSRN); ``x = P y`` lies in the row space of ``A``, so a
        rank-deficient ``A`` gets the minimum-norm solution. ``"direct"``:
        ``numpy.linalg.lstsq`` (LAPACK gelsd; a sparse ``A`` is densified for it). ``"auto"``:
        precondition for tall large problems (``n >= 8 d`` and ``n d >= 2**20``) or when ``x0``,
        ``atol`` or ``btol`` is given, direct otherwise.
    sketch : {"srht", "gaussian", "sparse_sign", "countsketch"}, optional
        The sketch operator (see :mod:`numkern.sketch`). Default ``"srht"`` for a dense ``A``,
        ``"sparse_sign"`` for a sparse one (``O(8 nnz)``; SRHT and Gaussian apply to a sparse
        ``A`` through dense column blocks, at the cost of a dense ``A``).
    m : int, optional
        Sketch rows, ``d <= m <= 2**ceil(log2 n)``.
    eps, delta : float, optional
        For ``"sketch"`` without ``m``: rows from the rule
        ``m = ceil(C_ROWS * d * ln(2d/delta) / eps**2)`` (``C_ROWS = 2``), aiming at
        ``||x' - x*||_inf <= eps / sqrt(d) * ||A x* - b||_2 * ||A^+||_2`` with probability
        ``>= 1 - delta``. Default rows: ``8 d`` (sketch), ``4 d`` (precondition).
    tol : float, default 1e-10
        Relative forward-error target of the preconditioned solver, against the exact solution
        of the stored problem. CG runs to its float64 floor, then iterative refinement of the
        augmented system with residuals in double-double (Bjorck 1967; Dot2 of Ogita, Rump &
        Oishi 2005) takes ``x`` to ``tol`` while ``u cond(A)`` is well below 1 (tested to cond
        1e10 with ``||r|| = 1000 ||A x||``, where LAPACK's gelsd is off by order one). A
        well-conditioned problem pays one extra pass over ``A`` for the check.
    maxiter : int, optional
        Iteration cap of the preconditioned solver, CG steps of the solve and of the refinement
        together (default 200).
    weights : array_like, shape (n,), optional
        Nonnegative finite weights: minimizes ``sum_i w_i (A x - b)_i^2``.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator
        Randomness of the sketch and of the bootstrap; fixed ``rng`` gives identical results for
        any thread count.
    x0 : array_like, shape (d,) or (d, k), optional
        Warm start of ``method="precondition"`` (in place of the sketch-and-solve answer; its
        component outside the row space of the sketch is dropped). ValueError with
        ``"sketch"``/``"direct"``.
    atol, btol : float, optional
        LSQR's stopping tests (Paige & Saunders 1982; as ``scipy.sparse.linalg.lsqr``) for
        ``method="precondition"``: stop when ``||r|| <= btol ||b|| + atol ||A|| ||x||`` or
        ``||A^T r|| <= atol ||A|| ||r||``, ``r = b - A x``, ``||A||`` the Frobenius norm. When
        either is given the other defaults to 1e-6 (scipy's default), these tests replace
        ``tol`` and no refinement runs; CG tracks ``||r||`` and ``||A^T r||`` through its
        recurrences and confirms the test on the true residual.

    Returns
    -------
    LstsqResult

    Notes
    -----
    ``linf_error_estimate``: for ``"sketch"``, the ``1 - delta`` quantile over 20 bootstrap
    resamples of the sketched rows of ``||x_boot - x'||_inf`` (Lopes, Wang & Mahoney, "Error
    estimation for randomized least-squares algorithms via the bootstrap", ICML 2018); it costs
    no pass over ``A``. For ``"precondition"``: the infinity norm of the last refinement
    correction (near the rounding floor, at ``cond(A) = 1e10``, within a factor 20 of
    ``||x - x*||_inf`` over 60 sketch seeds), or when no correction was needed of ``P g`` (``g``
    CG's final gradient, within the factor ``cond(AP)**2``, about 9, of ``x - x*``). For
    ``"direct"``: ``u * cond(A) * ||x||_inf``.

    What is proven and what is measured: see ``docs/design/sketch.md``. In short, the l-infinity bound
    is proven for the Gaussian sketch with the rows of the rule (for ``C_ROWS`` large enough;
    the docs give the exact sufficient condition) and measured for SRHT on the test families.

    Raises
    ------
    TypeError
        For unsupported dtypes or argument types.
    ValueError
        For bad shapes, NaN/inf in ``A``, ``b`` or ``weights``, negative weights, ``m < d``,
        ``m`` larger than the padded ``n``, ``eps <= 0``, ``delta`` outside ``(0, 1)``, an
        unknown method or sketch, ``tol <= 0``, ``maxiter < 1``, negative or non-finite
        ``atol``/``btol``, ``x0`` of the wrong shape or with NaN/inf, ``x0``/``atol``/``btol``
        with ``"sketch"`` or ``"direct"``.
    TypeError
        Also for a sparse ``A`` in a format other than CSR, CSC or COO, or with complex data.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((5000, 4))
    >>> b = A @ np.array([1.0, 2.0, 3.0, 4.0]) + 0.01 * rng.standard_normal(5000)
    >>> res = numkern.lstsq(A, b, method="precondition", rng=0)
    >>> print(res.method, res.rank, res.x.round(2))
    precondition 4 [1. 2. 3. 4.]
    >>> ref = np.linalg.lstsq(A, b, rcond=None)[0]
    >>> print(np.allclose(res.x, ref, rtol=1e-10, atol=0))
    True
    >>> fast = numkern.lstsq(A, b, method="sketch", eps=0.5, rng=0)
    >>> print(fast.sketch_rows, bool(np.abs(fast.x - ref).max() < 0.01))
    141 True

    A sparse ``A`` and LSQR's stopping tests:

    >>> import scipy.sparse as sp
    >>> As = sp.random_array((20000, 30), density=0.01, format="csr", rng=1) + sp.eye_array(20000, 30)
    >>> bs = As @ np.ones(30) + 0.01 * rng.standard_normal(20000)
    >>> res = numkern.lstsq(As, bs, atol=1e-12, btol=0.0, rng=0)
    >>> r = bs - As @ res.x
    >>> print(res.method, res.reason, bool(np.linalg.norm(As.T @ r) <= 1e-12 * sp.linalg.norm(As) * np.linalg.norm(r)))
    precondition converged True
    """
    sparse = is_scipy_sparse(A)
    if sketch is None:
        sketch = "sparse_sign" if sparse else "srht"
    if sketch not in SKETCHES:
        raise ValueError(f"sketch must be one of {SKETCHES}, got {sketch!r}")
    check_solver_options(method, eps, delta, tol, maxiter)
    check_lsqr_options(atol, btol)
    a: np.ndarray | CsrRows
    if sparse:
        a = csr_rows(A, "A")
    else:
        a, _ = float_operand(A, "A")
    bb, _ = float_operand(dense_rhs(b, "b"), "b")
    n, d, vector = check_shapes(a, bb)
    B = bb.reshape(n, -1)
    dtype = np.float32 if (a.dtype == np.float32 and bb.dtype == np.float32) else np.float64
    finite_or_raise(B, "b")
    N = next_pow2(n)
    if m is not None:
        if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)):
            raise TypeError(f"m must be an integer, got {type(m).__name__}")
        m = int(m)
        if m < d:
            raise ValueError(f"m={m} sketch rows are fewer than the d={d} columns of A")
        if m > N:
            raise ValueError(f"m={m} exceeds the padded row count {N} of A")
    elif eps is not None:
        m = sketch_rows(d, eps, delta, sketch)
        if m > N:
            raise ValueError(
                f"eps={eps}, delta={delta} need m={m} sketch rows, more than the padded row count {N}; "
                "use a larger eps or method='precondition'/'direct'"
            )
    if (atol is not None or btol is not None) and method in ("sketch", "direct"):
        raise ValueError(f"atol/btol are stopping tests of method='precondition'; method={method!r} does not iterate")
    X0 = None
    if x0 is not None:
        if method in ("sketch", "direct"):
            raise ValueError(f"x0 is a warm start of method='precondition'; method={method!r} does not iterate")
        X0, _ = float_operand(x0, "x0")
        if X0.shape != ((d,) if vector else (d, B.shape[1])):
            raise ValueError(
                f"x0 must have the shape of the solution, {(d,) if vector else (d, B.shape[1])}, got {X0.shape}"
            )
        finite_or_raise(X0, "x0")
        X0 = X0.reshape(d, -1).astype(np.float64)
    if method == "auto":
        iterate = X0 is not None or atol is not None or btol is not None
        method = "precondition" if (iterate or (n >= 8 * d and n * d >= 2**20)) else "direct"

    # A float32 A stays float32 for "precondition" (half the memory and traffic): its passes compute
    # in float64 from the stored entries, so the solution is that of the float32-stored problem.
    store = np.float32 if (a.dtype == np.float32 and method == "precondition") else None
    adt = store or (dtype if method == "sketch" else np.float64)
    a = a.astype(adt) if isinstance(a, CsrRows) else c_aligned(a, adt)
    B = c_aligned(B, np.float64 if store else a.dtype)
    if weights is not None:
        w, _ = float_operand(weights, "weights")
        if w.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got {w.shape}")
        finite_or_raise(w, "weights")
        if (w < 0).any():
            raise ValueError("weights must be nonnegative")
        sw = np.sqrt(w.astype(np.float64))
        swa = sw.astype(a.dtype)
        a = a.scale_rows(swa) if isinstance(a, CsrRows) else scale_rows(a, swa)
        B = scale_rows(B, sw.astype(B.dtype))
    g = generator(rng)

    def pack(v):
        v = np.asarray(v, dtype=np.float64)
        return float(v[0]) if vector else v

    def direct():
        finite_or_raise(a, "A")
        ad = a.toarray() if isinstance(a, CsrRows) else a  # LAPACK needs the dense matrix
        x, _, rank, sv = np.linalg.lstsq(ad, B, rcond=None)
        res = residual_norms(a, x, B)
        cond = sv[0] / sv[rank - 1] if rank else 0.0
        est = np.finfo(np.float64).eps * cond * np.abs(x).max(axis=0)
        x = x.astype(dtype)
        return LstsqResult(x[:, 0] if vector else x, pack(res), int(rank), 0, "direct", 0, pack(est), "solved")

    if method == "direct":
        return direct()

    if m is None:
        m = min(N, max(d, (SKETCH_ROWS_PER_COL if method == "sketch" else PRECONDITION_ROWS_PER_COL) * d))
    maxiter = 200 if maxiter is None else int(maxiter)

    def sketched():
        """The sketched solve; None when it must fall back to the direct one."""
        if method == "sketch":
            S, SA, Sb, U, s, Vt, r, _, x = solve_sketch(a, B, sketch, m, g, delta, basis=True)
            with one_blas_thread():  # small products on the sketch, as in its factorization
                est = bootstrap_linf(U, s, Vt, SA, Sb, x, g, delta)
            res = residual_norms(a, x, B)
            x = x.astype(dtype)
            return LstsqResult(x[:, 0] if vector else x, pack(res), r, 0, "sketch", m, pack(est), "solved")

        # precondition
        # A float32-stored A is sketched in float64 from its entries, so the rank is judged at
        # float64's rounding (a float32 sketch's noise would pass for rank).
        S, SA, Sb, _, s, Vt, r, c, _ = solve_sketch(a, B, sketch, m, g, delta, rank_eps=np.finfo(np.float64).eps)
        P = np.ascontiguousarray(Vt.T / s)  # d x r
        X = np.zeros((d, B.shape[1]))
        res = np.empty(B.shape[1])
        est = np.empty(B.shape[1])
        iters = 0
        lsqr_mode = atol is not None or btol is not None
        anorm = frobenius(a) if lsqr_mode else 0.0
        reasons = []
        for j in range(B.shape[1]):
            bj = np.ascontiguousarray(B[:, j])
            y0 = (s * (Vt @ X0[:, j])) if X0 is not None else c[:, j]
            test = (
                LsqrTest(1e-6 if atol is None else atol, 1e-6 if btol is None else btol, anorm, np.linalg.norm(bj))
                if lsqr_mode
                else None
            )
            y, it, gk, met = pcg_solve(a, bj, P, y0, float(tol), maxiter, lsqr=test, sigma=s)
            xj = P @ y
            e = P @ gk
            why = "converged" if met else ("maxiter" if it >= maxiter else "stalled")
            if r and not lsqr_mode:
                xj, it_ref, e_ref = refine_column(RefinementPasses(a, bj), P, xj, float(tol), maxiter)
                if it_ref:  # corrections ran: their size is the estimate; else CG's own stands
                    it, e = it + it_ref, e_ref
                    why = "maxiter" if it >= maxiter else "refined"
                else:
                    why = "converged"  # the refinement's first, extra-precise residual found x within tol
            reasons.append(why)
            X[:, j] = xj
            iters = max(iters, it)
            res[j] = math.sqrt(row_residual(a, np.ascontiguousarray(X[:, j]), bj, None, None))
            est[j] = float(np.abs(e).max()) if r else 0.0
        if r < d:
            # The preconditioner spans only the sketch's row space. If A has more rank than S A (a small
            # sketch can lose some: found by fuzzing with SparseSign on 2 x 2 problems), x misses part
            # of the solution and the full normal-equation gradient A^T (A x - b) is not ~0; then solve
            # directly. For a rank-deficient A it is ~0 (min-norm solution) and x is kept.
            gA = np.empty(d)
            scale = frobenius(a)
            for j in range(B.shape[1]):
                bj = np.ascontiguousarray(B[:, j])
                row_residual(a, np.ascontiguousarray(X[:, j]), bj, gA, None)
                if misses_rank(np.linalg.norm(gA), scale, np.linalg.norm(X[:, j]), np.linalg.norm(bj), tol):
                    return None  # solved directly below, with BLAS at its own thread count
        X = X.astype(dtype)
        reason = max(reasons, key=("converged", "refined", "stalled", "maxiter").index)
        return LstsqResult(X[:, 0] if vector else X, pack(res), r, iters, "precondition", m, pack(est), reason)

    # BLAS stays at one thread for the whole sketched solve: its calls there are small (d x d
    # factorizations and products, norms of b), and a multi-threaded OpenBLAS's workers keep
    # spinning after each call, taking the cores that numkern's own passes over A run on.
    with one_blas_thread():
        result = sketched()
    return direct() if result is None else result
