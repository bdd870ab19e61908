"""Least squares by sketching: sketch-and-solve with an l-infinity error guarantee (Song, Ye, Yin
& Zhang, ICML 2023), sketch-and-precondition to full accuracy (Blendenpik / LSRN style), and a
LAPACK fallback."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import _core
from ._runtime import limit_threads
from ._validate import c_aligned, float_operand, generator, scale_rows
from .sketch import SRHT, CountSketch, Gaussian, SparseSign, _next_pow2

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._validate import RngLike

__all__ = ["LstsqResult", "lstsq", "sketch_rows"]


def _one_blas_thread():
    """Context limiting BLAS to one thread while the small m x d factorizations run.

    They make hundreds of tiny BLAS calls; a multi-threaded OpenBLAS synchronizes its threads in
    each, which on a busy machine costs milliseconds per call (an 800 x 100 SVD measured 3.3 s
    with two threads against 12 ms with one). Uses threadpoolctl when it is installed."""
    return limit_threads("blas")


METHODS = ("auto", "sketch", "precondition", "direct")
SKETCHES = ("srht", "gaussian", "sparse_sign", "countsketch")

#: Calibrated constant of the row-count rule m = ceil(C_ROWS * d * ln(2d/delta) / eps**2); see
#: docs/design/sketch.md for the calibration and for what is proven (Gaussian) vs measured (SRHT).
C_ROWS = 2.0
#: Sketch rows per column of A for sketch-and-precondition (Blendenpik uses 4).
PRECONDITION_ROWS_PER_COL = 4
#: Default sketch rows per column for sketch-and-solve when neither m nor eps is given.
SKETCH_ROWS_PER_COL = 8
#: Cap on the refinement steps of the preconditioned solver (each gains about -log10(u cond(A))
#: digits; three reach 1e-10 at cond(A) = 1e10 with a large residual).
MAX_REFINEMENT_STEPS = 6
#: Bootstrap replicates of the a-posteriori error estimate.
BOOTSTRAP_SAMPLES = 20


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


def sketch_rows(d: int, eps: float, delta: float = 0.1, sketch: str = "srht") -> int:
    """Sketch rows for the l-infinity bound with probability ``1 - delta``.

    The calibrated rule ``ceil(C_ROWS * d * ln(2d / delta) / eps**2)``; for ``"gaussian"`` at
    least the rows of the proven sufficient condition (docs/design/sketch.md)
    ``sqrt(m) >= sqrt(d) + sqrt(2 ln(2/delta)) + sqrt(2 d ln(2d/delta)) / eps``.
    """
    _check_eps_delta(eps, delta)
    m = int(math.ceil(C_ROWS * d * math.log(2 * d / delta) / eps**2))
    if sketch == "gaussian":
        root = math.sqrt(d) + math.sqrt(2 * math.log(2 / delta)) + math.sqrt(2 * d * math.log(2 * d / delta)) / eps
        m = max(m, int(math.ceil(root**2)))
    return m


def _check_eps_delta(eps, delta):
    if eps is not None and not (
        isinstance(eps, (int, float, np.floating, np.integer)) and math.isfinite(eps) and eps > 0
    ):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    if not (isinstance(delta, (int, float, np.floating, np.integer)) and 0 < delta < 1):
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")


def _check_shapes(A, b):
    """Shape checks shared by numkern.lstsq and numkern.dask.lstsq (NumPy or Dask arrays); returns
    n, d and whether b is a vector."""
    if A.ndim != 2:
        raise ValueError(f"A must be 2-d (n, d), got shape {A.shape}")
    n, d = A.shape
    if n < 1 or d < 1:
        raise ValueError(f"A must have at least one row and one column, got shape {A.shape}")
    if b.ndim not in (1, 2) or b.shape[0] != n:
        raise ValueError(f"b must have shape ({n},) or ({n}, k) to match A {A.shape}, got {b.shape}")
    if b.ndim == 2 and b.shape[1] < 1:
        raise ValueError("b must have at least one column")
    return n, d, b.ndim == 1


def _check_solver_options(method, eps, delta, tol, maxiter):
    """The option checks every lstsq front end shares (numkern.lstsq, numkern.dask.lstsq)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_eps_delta(eps, delta)
    if not (isinstance(tol, (int, float, np.floating)) and tol > 0):
        raise ValueError(f"tol must be positive, got {tol!r}")
    if maxiter is not None and (isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1):
        raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")


def _make_sketch(kind, n, m, g):
    if kind == "srht":
        return SRHT(n, m, rng=g)
    if kind == "gaussian":
        return Gaussian(n, m, rng=g)
    if kind == "sparse_sign":
        # 8 nonzeros per column, or every row when the sketch has fewer than 8.
        return SparseSign(n, m, nnz_per_col=min(8, m), rng=g)
    return CountSketch(n, m, rng=g)


def _finite_or_raise(arr, name):
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")


def _small_svd(SA, dtype_eps):
    U, s, Vt = np.linalg.svd(SA, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return U[:, :0], s[:0], Vt[:0], 0
    rcond = max(SA.shape) * dtype_eps
    r = int(np.count_nonzero(s > rcond * s[0]))
    return U[:, :r], s[:r], Vt[:r], r


def _bootstrap_linf(Q, s, Vt, Sb, x, g, delta):
    """Bootstrap (Lopes, Wang & Mahoney 2018) of ||x' - x*||_inf: resample the sketched rows with
    replacement and re-solve in the orthonormal coordinates of the sketch's SVD."""
    m, r = Q.shape
    if r == 0:
        return np.zeros(Sb.shape[1])
    counts = g.multinomial(m, np.full(m, 1.0 / m), size=BOOTSTRAP_SAMPLES).astype(np.float64)
    QW = Q[None, :, :] * counts[:, :, None]  # (B, m, r)
    QWt = QW.transpose(0, 2, 1)
    G = QWt @ Q  # (B, r, r), near m * I
    rhs = QWt @ Sb  # (B, r, k)
    try:
        z = np.linalg.solve(G, rhs)
    except np.linalg.LinAlgError:
        z = np.linalg.pinv(G) @ rhs
    xb = (Vt.T / s) @ z  # (B, d, k)
    err = np.abs(xb - x[None]).max(axis=1)  # (B, k)
    return np.quantile(err, 1.0 - delta, axis=0)


def _solve_sketch(A, B, kind, m, g, delta):
    S = _make_sketch(kind, A.shape[0], m, g)
    # One pass of the operator over A and b (the Gaussian sketch generates S once for both).
    SA, Sb = (M.astype(np.float64, copy=False) for M in S.apply_pair(A, B))
    if not (np.isfinite(SA).all() and np.isfinite(Sb).all()):
        _finite_or_raise(A, "A")
        raise ValueError("the sketch of A overflowed; scale A and b down")
    with _one_blas_thread():
        U, s, Vt, r = _small_svd(SA, np.finfo(A.dtype).eps)
        x = Vt.T @ ((U.T @ Sb) / s[:, None]) if r else np.zeros((A.shape[1], B.shape[1]))
    return S, SA, Sb, U, s, Vt, r, x


def _residual_norms(A, X, B):
    out = np.empty(B.shape[1])
    for j in range(B.shape[1]):
        u = np.ascontiguousarray(X[:, j], dtype=A.dtype)
        bj = np.ascontiguousarray(B[:, j], dtype=A.dtype)
        out[j] = math.sqrt(_core.row_residual(A, u, bj, None, None))
    return out


def _cg_steps(mat, y, res, it, maxiter, done):
    """Conjugate-gradient steps for the SPD operator ``mat`` from ``y`` with residual ``res``, until
    ``done(res, y)``, ``it`` reaches ``maxiter`` or the recurrence breaks down; returns y, res, it."""
    rs = float(res @ res)
    p = res.copy()
    while it < maxiter and rs > 0.0 and not done(res, y):
        q = mat(p)
        pq = float(p @ q)
        if pq <= 0:
            break
        alpha = rs / pq
        y = y + alpha * p
        res = res - alpha * q
        rs_new = float(res @ res)
        p = res + (rs_new / rs) * p
        rs = rs_new
        it += 1
    return y, res, it


def _pcg_column(A, b, P, y, tol, maxiter, residual=None):
    """CG on the right-preconditioned normal equations (AP)^T (AP) y = (AP)^T b, from y.

    Each product A^T (A v) is one fused pass over A (row blocks stay in cache between the two
    products). Since (AP)^T (AP) is within a small factor of I, the forward error of x = P y is
    about ||P g|| for the gradient g = (AP)^T (b - A P y): CG stops when ||P g|| <= tol ||P y||,
    or when restarts from the true gradient stop improving it (the rounding floor, about
    u cond(A) (||x|| + ||b|| / ||A||), reached when cond(A) is large).
    `residual(u, b, g)` replaces the pass over an in-memory A (numkern.dask: a pass over row
    blocks): it must return ||A u - b||^2 and write A^T (A u - b) to g, as _core.row_residual.
    Returns y, iterations and the final true gradient."""
    d = P.shape[0]
    gA = np.empty(d)
    if residual is None:

        def residual(u, bv, g):
            return _core.row_residual(A, u, bv, g, None)

    def grad(yv):
        residual(np.ascontiguousarray(P @ yv), b, gA)
        return -(P.T @ gA)

    def mat(v):
        residual(np.ascontiguousarray(P @ v), None, gA)
        return P.T @ gA

    def fwd(gv, yv):
        xn = float(np.linalg.norm(P @ yv))
        return float(np.linalg.norm(P @ gv)) / xn if xn > 0 else (0.0 if not gv.any() else math.inf)

    it = 0
    gk = grad(y)
    best = fwd(gk, y)
    best_y, best_g = y, gk
    while best > tol and it < maxiter:
        y, gk, it = _cg_steps(mat, y, gk, it, maxiter, lambda g, yv: fwd(g, yv) <= 0.1 * tol)
        gk = grad(y)  # the true gradient: the recurrence drifts below the rounding floor
        e = fwd(gk, y)
        if e >= 0.5 * best:
            if e < best:
                best, best_y, best_g = e, y, gk
            break
        best, best_y, best_g = e, y, gk
    return best_y, it, best_g


def _cg_correction(normal, P, c, maxiter):
    """CG on (AP)^T (AP) y = c from y = c (AP is near-orthonormal), to 1e-8 relative or a stall.
    ``normal(v, g)`` writes A^T (A v) to g (one pass over A)."""
    gA = np.empty(P.shape[0])

    def mat(v):
        normal(np.ascontiguousarray(P @ v), gA)
        return P.T @ gA

    y = c.copy()
    goal = 1e-16 * float(c @ c)
    y, _, it = _cg_steps(mat, y, c - mat(y), 1, maxiter, lambda res, _: float(res @ res) <= goal)
    return y, it


class _RefinementPasses:
    """The three passes of a refinement over an in-memory A, holding the per-row state r and f.
    numkern.dask supplies the same three over row blocks (bit-identical, as the sums are merged in
    the same chunk order)."""

    def __init__(self, A, b):
        n = A.shape[0]
        self.A, self.b = A, b
        self.r, self.f, self.t = np.empty(n), np.empty(n), np.empty(n)

    def residual(self, x, first, h):
        """h = A^T (b - A x) accurate to a few ulps (r = b - A x rounded once when first)."""
        _core.ls_refine_residual(self.A, x, self.r, first, self.b, self.f, h)

    def normal(self, v, g):
        _core.row_residual(self.A, v, None, g, None)

    def update(self, dx):
        """r <- r + f - A dx, the new residual's leading part."""
        _core.row_residual(self.A, dx, self.f, None, self.t)  # t = A dx - f
        np.subtract(self.r, self.t, out=self.r)


def _refine_column(passes, P, x, tol, maxiter):
    """Iterative refinement of the augmented system [I A; A^T 0][r; x] = [b; 0] (Bjorck 1967) with
    its residuals evaluated in double-double (``_core.ls_refine_residual``); ``passes`` holds A, b
    and the state (see ``_RefinementPasses``).

    A float64 solver, LAPACK included, stops at a forward error of about
    ``u cond(A) (1 + cond(A) ||r|| / (||A|| ||x||))``: 1e-6 to 1e+2 at cond(A) = 1e10. Each step
    here solves for the correction with the same preconditioned CG, which contracts the error by
    about ``u cond(A)``, while the extra-precise residual moves the attainable floor to a few ulps
    of x; so while ``u cond(A) << 1`` a few steps reach ``tol`` against the exact solution of the
    stored problem.

    The first residual also gives a free error estimate ``P P^T h`` (within a factor
    ``cond(AP)^2 ~ 9`` of the exact correction) whose own rounding is about
    ``u ||h|| ||P||^2``; when both are far below ``tol`` (well-conditioned problems) no correction
    is solved and the refinement costs one pass. Otherwise steps run until the correction is below
    ``tol`` or stops shrinking. Returns x, the CG iterations spent, and an estimate of ``x - x*``."""
    h = np.empty(P.shape[0])
    p_norm2 = float(np.linalg.norm(P, 2)) ** 2
    u = np.finfo(np.float64).eps
    iters = 0
    est = None
    prev = math.inf
    for step in range(MAX_REFINEMENT_STEPS):
        passes.residual(np.ascontiguousarray(x), step == 0, h)
        c = P.T @ h
        goal = 0.25 * tol * float(np.linalg.norm(x))
        if step == 0:
            dx_est = P @ c
            est = dx_est
            if float(np.linalg.norm(dx_est)) + 4.0 * u * float(np.linalg.norm(h)) * p_norm2 <= goal:
                break
        if iters >= maxiter:
            break
        y, k = _cg_correction(passes.normal, P, c, max(1, maxiter - iters))
        iters += k
        dx = np.ascontiguousarray(P @ y)
        size = float(np.linalg.norm(dx))
        if size > 0.5 * prev:
            break  # no longer contracting: u cond(A) is near 1, the float64 floor of this problem
        passes.update(dx)
        x = x + dx
        est, prev = dx, size
        if size <= goal:
            break
    return x, iters, est


def _misses_rank(grad_norm, a_norm, x_norm, b_norm, tol):
    """Whether a preconditioned x (from a sketch of lower rank than d) misses part of the solution:
    its normal-equation gradient ||A^T (A x - b)|| is far above rounding (else x is the min-norm
    solution of a rank-deficient A)."""
    bound = max(1e-8, 10 * float(tol)) * a_norm * (a_norm * x_norm + b_norm)
    return not grad_norm <= bound


def lstsq(
    A: ArrayLike,
    b: ArrayLike,
    *,
    method: str = "auto",
    sketch: str = "srht",
    m: int | None = None,
    eps: float | None = None,
    delta: float = 0.1,
    tol: float = 1e-10,
    maxiter: int | None = None,
    weights: ArrayLike | None = None,
    rng: RngLike = None,
) -> LstsqResult:
    """Least squares ``argmin_x ||A x - b||_2`` by sketching.

    Parameters
    ----------
    A : array_like, shape (n, d)
    b : array_like, shape (n,) or (n, k)
        float32 or float64 (float16/int/bool are promoted as elsewhere in numkern). The result is
        float32 only if both are float32.
    method : {"auto", "sketch", "precondition", "direct"}
        ``"sketch"``: sketch-and-solve, ``x' = argmin ||S A x - S b||``. ``"precondition"``:
        sketch-and-precondition to ``tol``: SVD ``S A = U Sigma V^T`` with ``m`` about ``4d``
        rows, right preconditioner ``P = V_r Sigma_r^-1``, conjugate gradients on
        ``(AP)^T (AP) y = (AP)^T b`` warm-started from the sketch-and-solve answer
        ``y0 = U^T S b`` (Rokhlin & Tygert 2008; Avron, Maymounkov & Toledo 2010, Blendenpik;
        Meng, Saunders & Mahoney 2014, LSRN); ``x = P y`` lies in the row space of ``A``, so a
        rank-deficient ``A`` gets the minimum-norm solution. ``"direct"``:
        ``numpy.linalg.lstsq`` (LAPACK gelsd). ``"auto"``: precondition for tall large problems
        (``n >= 8 d`` and ``n d >= 2**20``), direct otherwise.
    sketch : {"srht", "gaussian", "sparse_sign", "countsketch"}
        The sketch operator (see :mod:`numkern.sketch`).
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
        Iteration cap of the preconditioned solver (default 200).
    weights : array_like, shape (n,), optional
        Nonnegative finite weights: minimizes ``sum_i w_i (A x - b)_i^2``.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator
        Randomness of the sketch and of the bootstrap; fixed ``rng`` gives identical results for
        any thread count.

    Returns
    -------
    LstsqResult

    Notes
    -----
    ``linf_error_estimate``: for ``"sketch"``, the ``1 - delta`` quantile over 20 bootstrap
    resamples of the sketched rows of ``||x_boot - x'||_inf`` (Lopes, Wang & Mahoney, "Error
    estimation for randomized least-squares algorithms via the bootstrap", ICML 2018); it costs
    no pass over ``A``. For ``"precondition"``: the infinity norm of the last refinement
    correction, or when no correction was needed of ``P g`` (``g`` CG's final gradient, within
    the factor ``cond(AP)**2``, about 9, of ``x - x*``). For ``"direct"``: ``u * cond(A) * ||x||_inf``.

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
        unknown method or sketch, ``tol <= 0`` or ``maxiter < 1``.

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
    """
    if sketch not in SKETCHES:
        raise ValueError(f"sketch must be one of {SKETCHES}, got {sketch!r}")
    _check_solver_options(method, eps, delta, tol, maxiter)
    a, _ = float_operand(A, "A")
    bb, _ = float_operand(b, "b")
    n, d, vector = _check_shapes(a, bb)
    B = bb.reshape(n, -1)
    dtype = np.float32 if (a.dtype == np.float32 and bb.dtype == np.float32) else np.float64
    _finite_or_raise(B, "b")
    N = _next_pow2(n)
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
    if method == "auto":
        method = "precondition" if (n >= 8 * d and n * d >= 2**20) else "direct"

    a = c_aligned(a, dtype if method == "sketch" else np.float64)
    B = c_aligned(B, a.dtype)
    if weights is not None:
        w, _ = float_operand(weights, "weights")
        if w.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got {w.shape}")
        _finite_or_raise(w, "weights")
        if (w < 0).any():
            raise ValueError("weights must be nonnegative")
        sw = np.sqrt(w.astype(np.float64)).astype(a.dtype)
        a = scale_rows(a, sw)
        B = scale_rows(B, sw)
    g = generator(rng)

    def pack(v):
        v = np.asarray(v, dtype=np.float64)
        return float(v[0]) if vector else v

    def direct():
        _finite_or_raise(a, "A")
        x, _, rank, sv = np.linalg.lstsq(a, B, rcond=None)
        res = _residual_norms(a, x, B)
        cond = sv[0] / sv[rank - 1] if rank else 0.0
        est = np.finfo(np.float64).eps * cond * np.abs(x).max(axis=0)
        x = x.astype(dtype)
        return LstsqResult(x[:, 0] if vector else x, pack(res), int(rank), 0, "direct", 0, pack(est))

    if method == "direct":
        return direct()

    if method == "sketch":
        if m is None:
            m = min(N, max(d, SKETCH_ROWS_PER_COL * d))
        S, SA, Sb, U, s, Vt, r, x = _solve_sketch(a, B, sketch, m, g, delta)
        with _one_blas_thread():
            est = _bootstrap_linf(U, s, Vt, Sb, x, g, delta)
        res = _residual_norms(a, x, B)
        x = x.astype(dtype)
        return LstsqResult(x[:, 0] if vector else x, pack(res), r, 0, "sketch", m, pack(est))

    # precondition
    if m is None:
        m = min(N, max(d, PRECONDITION_ROWS_PER_COL * d))
    maxiter = 200 if maxiter is None else int(maxiter)
    S, SA, Sb, U, s, Vt, r, _ = _solve_sketch(a, B, sketch, m, g, delta)
    P = np.ascontiguousarray(Vt.T / s)  # d x r
    X = np.zeros((d, B.shape[1]))
    res = np.empty(B.shape[1])
    est = np.empty(B.shape[1])
    iters = 0
    for j in range(B.shape[1]):
        bj = np.ascontiguousarray(B[:, j])
        y0 = U.T @ Sb[:, j]
        with _one_blas_thread():
            y, it, gk = _pcg_column(a, bj, P, y0, float(tol), maxiter)
            xj = P @ y
            e = P @ gk
            if r:
                xj, it_ref, e_ref = _refine_column(_RefinementPasses(a, bj), P, xj, float(tol), maxiter)
                if it_ref:  # corrections ran: their size is the estimate; else CG's own stands
                    it, e = it + it_ref, e_ref
        X[:, j] = xj
        iters = max(iters, it)
        res[j] = math.sqrt(_core.row_residual(a, np.ascontiguousarray(X[:, j]), bj, None, None))
        est[j] = float(np.abs(e).max()) if r else 0.0
    if r < d:
        # The preconditioner spans only the sketch's row space. If A has more rank than S A (a small
        # sketch can lose some: found by fuzzing with SparseSign on 2 x 2 problems), x misses part
        # of the solution and the full normal-equation gradient A^T (A x - b) is not ~0; then solve
        # directly. For a rank-deficient A it is ~0 (min-norm solution) and x is kept.
        gA = np.empty(d)
        scale = float(np.linalg.norm(a))
        for j in range(B.shape[1]):
            bj = np.ascontiguousarray(B[:, j])
            _core.row_residual(a, np.ascontiguousarray(X[:, j]), bj, gA, None)
            if _misses_rank(np.linalg.norm(gA), scale, np.linalg.norm(X[:, j]), np.linalg.norm(bj), tol):
                return direct()
    X = X.astype(dtype)
    return LstsqResult(X[:, 0] if vector else X, pack(res), r, iters, "precondition", m, pack(est))
