"""The solvers behind numkern.lstsq and numkern.dask.lstsq: argument checks, the sketch-and-solve
step with its bootstrap error estimate, preconditioned conjugate gradients and the iterative
refinement of the augmented system in double-double (see docs/design/sketch.md)."""

from __future__ import annotations

import math
from typing import cast

import numpy as np

from . import _core
from ._runtime import limit_threads
from ._sparse import CsrRows
from .sketch import SRHT, CountSketch, Gaussian, SparseSign


def one_blas_thread():
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
#: From this sketch rank on, the bootstrap's systems are solved by batched CG (O(m r) per step and
#: replicate) instead of forming B Gram matrices (O(m r^2) each).
BOOTSTRAP_CG_RANK = 40
#: Step cap of that CG (the systems are near I; a dozen steps reach its tolerance).
BOOTSTRAP_CG_STEPS = 100
#: Relative residual at which that CG stops. It solves for each replicate's difference from x, so
#: this is the relative accuracy of the differences, far below the bootstrap's own sampling error.
BOOTSTRAP_CG_TOL = 1e-5


def check_eps_delta(eps, delta):
    if eps is not None and not (
        isinstance(eps, (int, float, np.floating, np.integer)) and math.isfinite(eps) and eps > 0
    ):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    if not (isinstance(delta, (int, float, np.floating, np.integer)) and 0 < delta < 1):
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")


def check_shapes(A, b):
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


def check_solver_options(method, eps, delta, tol, maxiter):
    """The option checks every lstsq front end shares (numkern.lstsq, numkern.dask.lstsq)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_eps_delta(eps, delta)
    if not (isinstance(tol, (int, float, np.floating)) and tol > 0):
        raise ValueError(f"tol must be positive, got {tol!r}")
    if maxiter is not None and (isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1):
        raise ValueError(f"maxiter must be a positive integer, got {maxiter!r}")


def make_sketch(kind, n, m, g):
    if kind == "srht":
        return SRHT(n, m, rng=g)
    if kind == "gaussian":
        return Gaussian(n, m, rng=g)
    if kind == "sparse_sign":
        # 8 nonzeros per column, or every row when the sketch has fewer than 8.
        return SparseSign(n, m, nnz_per_col=min(8, m), rng=g)
    return CountSketch(n, m, rng=g)


def row_residual(A, u, b, g, t):
    """``_core.row_residual`` on a dense A or its CSR counterpart on a :class:`CsrRows` A."""
    if isinstance(A, CsrRows):
        return A.row_residual(u, b, g, t)
    return _core.row_residual(A, u, b, g, t)


def frobenius(A) -> float:
    """||A||_F in one pass, without a temporary the size of A."""
    if isinstance(A, CsrRows):
        return A.frobenius()
    a = A.reshape(A.shape[0], -1)
    step = max(1, (4 << 20) // max(1, a.shape[1]))
    return math.sqrt(
        sum(float(np.einsum("ij,ij->", a[i : i + step], a[i : i + step])) for i in range(0, a.shape[0], step))
    )


def check_lsqr_options(atol, btol):
    for name, v in (("atol", atol), ("btol", btol)):
        if v is not None and not (
            isinstance(v, (int, float, np.floating, np.integer))
            and not isinstance(v, bool)
            and math.isfinite(v)
            and v >= 0
        ):
            raise ValueError(f"{name} must be a nonnegative finite number, got {v!r}")


class LsqrTest:
    """LSQR's stopping rules (Paige & Saunders 1982, as in scipy.sparse.linalg.lsqr) for x = P y:
    ``||r|| <= btol ||b|| + atol ||A|| ||x||`` or ``||A^T r|| <= atol ||A|| ||r||``, with ``||A||`` the
    Frobenius norm (the norm LSQR estimates)."""

    def __init__(self, atol, btol, anorm, bnorm):
        self.atol, self.btol, self.anorm, self.bnorm = float(atol), float(btol), float(anorm), float(bnorm)

    @staticmethod
    def _quot(num, den):
        return num / den if den > 0 else (0.0 if num == 0 else math.inf)

    def ratio(self, rnorm, arnorm, xnorm):
        """min over the two tests of (left side / right side): the tests hold when it is <= 1."""
        return min(
            self._quot(rnorm, self.btol * self.bnorm + self.atol * self.anorm * xnorm),
            self._quot(arnorm, self.atol * self.anorm * rnorm),
        )


def finite_or_raise(arr, name):
    if isinstance(arr, CsrRows):
        return  # its entries were checked when it was made
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")


def small_svd(SA, dtype_eps):
    U, s, Vt = np.linalg.svd(SA, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return U[:, :0], s[:0], Vt[:0], 0
    rcond = max(SA.shape) * dtype_eps
    r = int(np.count_nonzero(s > rcond * s[0]))
    return U[:, :r], s[:r], Vt[:r], r


#: From this many sketch rows per column on, the sketch is factored through a QR of [SA Sb] first.
QR_FIRST_ROWS_PER_COL = 2
#: Largest s[0] / s[r-1] at which the sketch's left singular vectors are formed as SA V / s (their
#: loss of orthogonality is about u times this ratio, 2e-8 at most, far below what the bootstrap
#: resolves); above it they come from a full SVD.
BASIS_BY_PRODUCT_COND = 1e8


def factor_sketch(SA, Sb, rank_eps, basis=False):
    """The sketch's truncated SVD ``SA = U diag(s) Vt`` (rank r: singular values above
    ``max(m, d) * rank_eps * s[0]``) and the coordinates ``c = U^T Sb`` of the sketched solution
    ``x = Vt^T (c / s)``. Returns ``(U, s, Vt, r, c)``; U is None unless ``basis``.

    A tall sketch (m >= 2d) is reduced by a QR of ``[SA Sb]`` that keeps only R (its last
    columns are ``Q^T Sb``) and the SVD of the d x d triangle: the m x d orthonormal factor is
    never formed, which makes this about 1.8x faster than the SVD of SA at m = 8d. When
    ``basis`` asks for U (the bootstrap resamples its rows) it is ``SA V / s`` for a well
    conditioned sketch, else the SVD of SA is taken."""
    m, d = SA.shape
    if m < QR_FIRST_ROWS_PER_COL * d:
        U, s, Vt, r = small_svd(SA, rank_eps)
        return (U if basis else None), s, Vt, r, U.T @ Sb
    R = cast(np.ndarray, np.linalg.qr(np.hstack([SA, Sb]), mode="r"))  # R only (typed as a tuple)
    Ur, s, Vt = np.linalg.svd(R[:d, :d])
    r = 0 if s[0] == 0 else int(np.count_nonzero(s > m * rank_eps * s[0]))
    Ur, s, Vt = Ur[:, :r], s[:r], Vt[:r]
    c = Ur.T @ R[:d, d:]
    U = None
    if basis and r:
        if s[0] <= BASIS_BY_PRODUCT_COND * s[-1]:
            U = (SA @ Vt.T) / s
        else:
            U, s, Vt, r = small_svd(SA, rank_eps)
            c = U.T @ Sb
    elif basis:
        U = np.zeros((m, 0))
    return U, s, Vt, r, c


def bootstrap_linf(Q, s, Vt, SA, Sb, x, g, delta):
    """Bootstrap (Lopes, Wang & Mahoney 2018) of ||x' - x*||_inf: resample the sketched rows with
    replacement and re-solve in the orthonormal coordinates of the sketch's SVD.

    Each replicate solves for its difference from the sketched solution x, whose right side is
    the resampled sketch residual ``Sb - SA x``: the difference is computed to a relative accuracy
    (no cancellation against x, and Q need only be near orthonormal), and a consistent system
    (zero residual) gets an estimate at rounding level."""
    m, r = Q.shape
    if r == 0:
        return np.zeros(Sb.shape[1])
    counts = g.multinomial(m, np.full(m, 1.0 / m), size=BOOTSTRAP_SAMPLES).astype(np.float64)
    res = Sb - SA @ x
    if r >= BOOTSTRAP_CG_RANK:
        z = _bootstrap_cg(Q, counts, res)
    else:
        G = np.empty((counts.shape[0], r, r))  # near m * I
        for b, cb in enumerate(counts):
            Qs = Q * np.sqrt(cb)[:, None]
            np.matmul(Qs.T, Qs, out=G[b])  # Q^T C_b Q as X^T X: BLAS's symmetric update, half the flops
        rhs = Q.T @ (counts[:, :, None] * res)  # (B, r, k)
        try:
            z = np.linalg.solve(G, rhs)
        except np.linalg.LinAlgError:
            z = np.linalg.pinv(G) @ rhs
    err = np.abs((Vt.T / s) @ z).max(axis=1)  # (B, k): |x_b - x|
    return np.quantile(err, 1.0 - delta, axis=0)


def _bootstrap_cg(Q, counts, res):
    """The bootstrap's B systems (Q^T C_b Q) z = Q^T C_b res, C_b = diag(counts_b), res the sketch
    residual (z: each replicate's difference from x, in Q's coordinates), by conjugate
    gradients run on all of them at once: each step is two (m, r) x (r, B k) products, against
    B m r^2 for forming the B Gram matrices. Q^T C_b Q is near I (Q orthonormal, counts of mean 1),
    so CG from z = Q^T C_b res reaches BOOTSTRAP_CG_TOL in about a dozen steps; a singular resample
    (too few distinct rows) gives the minimum-norm CG iterate in place of pinv's."""
    m, r = Q.shape
    nb, k = counts.shape[0], res.shape[1]
    cw = counts.T[:, :, None]  # (m, B, 1)

    def op(Z):  # Z (r, B, k) -> (r, B, k)
        QZ = (Q @ Z.reshape(r, nb * k)).reshape(m, nb, k)
        return (Q.T @ (QZ * cw).reshape(m, nb * k)).reshape(r, nb, k)

    rhs = (Q.T @ (res[:, None, :] * cw).reshape(m, nb * k)).reshape(r, nb, k)
    Z = rhs.copy()
    R = rhs - op(Z)
    Pd = R.copy()
    rs = np.einsum("rbk,rbk->bk", R, R)
    goal = BOOTSTRAP_CG_TOL**2 * np.einsum("rbk,rbk->bk", rhs, rhs)
    for _ in range(BOOTSTRAP_CG_STEPS):
        if (rs <= goal).all():
            break
        q = op(Pd)
        pq = np.einsum("rbk,rbk->bk", Pd, q)
        alpha = np.divide(rs, pq, out=np.zeros_like(rs), where=(pq > 0) & (rs > goal))
        Z += alpha * Pd
        R -= alpha * q
        rs_new = np.einsum("rbk,rbk->bk", R, R)
        Pd = R + np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0) * Pd
        rs = rs_new
    return Z.transpose(1, 0, 2)  # (B, r, k)


def solve_sketch(A, B, kind, m, g, delta, rank_eps=None, basis=False):
    S = make_sketch(kind, A.shape[0], m, g)
    if A.dtype == np.float32 and B.dtype == np.float64:
        # A float32-stored A of the float64 solver: sketched in float64 from its entries (dense: by
        # column blocks, the same numbers as the sketch of its float64 copy, which numkern.dask
        # relies on) without a float64 copy.
        SA, Sb = S.apply_widened(A), S.apply(B)
    else:
        # One pass of the operator over A and b (the Gaussian sketch generates S once for both).
        SA, Sb = (M.astype(np.float64, copy=False) for M in S.apply_pair(A, B))
    if not (np.isfinite(SA).all() and np.isfinite(Sb).all()):
        finite_or_raise(A, "A")
        raise ValueError("the sketch of A overflowed; scale A and b down")
    with one_blas_thread():
        rank_eps = np.finfo(A.dtype).eps if rank_eps is None else rank_eps
        U, s, Vt, r, c = factor_sketch(SA, Sb, rank_eps, basis)
        x = Vt.T @ (c / s[:, None]) if r else np.zeros((A.shape[1], B.shape[1]))
    return S, SA, Sb, U, s, Vt, r, c, x


def residual_norms(A, X, B):
    out = np.empty(B.shape[1])
    for j in range(B.shape[1]):
        # In B's dtype: float64 vectors with a float32-stored A compute in float64.
        u = np.ascontiguousarray(X[:, j], dtype=B.dtype)
        bj = np.ascontiguousarray(B[:, j])
        out[j] = math.sqrt(row_residual(A, u, bj, None, None))
    return out


def cg_steps(mat, y, res, it, maxiter, done, energy=None):
    """Conjugate-gradient steps for the SPD operator ``mat`` from ``y`` with residual ``res``, until
    ``done(res, y)``, ``it`` reaches ``maxiter`` or the recurrence breaks down; returns y, res, it.
    With ``energy`` (a one-element list holding ``||A x - b||^2`` for the normal equations of A P),
    it follows that squared residual norm, which drops by ``alpha * res^T res`` each step."""
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
        if energy is not None:
            energy[0] = max(energy[0] - alpha * rs, 0.0)
        rs_new = float(res @ res)
        p = res + (rs_new / rs) * p
        rs = rs_new
        it += 1
    return y, res, it


def pcg_column(A, b, P, y, tol, maxiter, residual=None):
    """CG on the right-preconditioned normal equations (AP)^T (AP) y = (AP)^T b, from y.

    Each product A^T (A v) is one fused pass over A (row blocks stay in cache between the two
    products). Since (AP)^T (AP) is within a small factor of I, the forward error of x = P y is
    about ||P g|| for the gradient g = (AP)^T (b - A P y): CG stops when ||P g|| <= tol ||P y||,
    or when restarts from the true gradient stop improving it (the rounding floor, about
    u cond(A) (||x|| + ||b|| / ||A||), reached when cond(A) is large).
    `residual(u, b, g)` replaces the pass over an in-memory A (numkern.dask: a pass over row
    blocks): it must return ||A u - b||^2 and write A^T (A u - b) to g, as _core.row_residual.
    Returns y, iterations and the final true gradient."""
    y, it, gk, _ = pcg_solve(A, b, P, y, tol, maxiter, residual)
    return y, it, gk


def pcg_solve(A, b, P, y, tol, maxiter, residual=None, lsqr=None, sigma=None):
    """:func:`pcg_column` with an optional LSQR-style stop: with ``lsqr`` (an :class:`LsqrTest`)
    and ``sigma`` (the sketch's singular values, ``P = V diag(1/sigma)``), CG stops when
    ``lsqr.met`` holds for the residual norm it tracks and ``||A^T r|| ~ ||sigma * g||``, checked
    again on the true residual at each restart. Returns y, iterations, the final true gradient and
    whether the stopping test was met."""
    d = P.shape[0]
    gA = np.empty(d)
    last = [0.0]  # ||A x - b||^2 of the latest true gradient
    if residual is None:

        def residual(u, bv, g):
            return row_residual(A, u, bv, g, None)

    def grad(yv):
        last[0] = float(residual(np.ascontiguousarray(P @ yv), b, gA))
        return -(P.T @ gA)

    def mat(v):
        residual(np.ascontiguousarray(P @ v), None, gA)
        return P.T @ gA

    def fwd(gv, yv):
        xn = float(np.linalg.norm(P @ yv))
        return float(np.linalg.norm(P @ gv)) / xn if xn > 0 else (0.0 if not gv.any() else math.inf)

    if lsqr is None:
        err, goal = fwd, tol

        def done(g, yv):
            return fwd(g, yv) <= 0.1 * tol

        energy = None
    else:

        def err(gv, yv):
            return lsqr.ratio(math.sqrt(last[0]), float(np.linalg.norm(gA)), float(np.linalg.norm(P @ yv)))

        goal = 1.0
        energy = [0.0]

        def done(g, yv):
            # ||A^T r|| from the recurrence: A^T r = V diag(sigma) g on the sketch's row space.
            est = lsqr.ratio(math.sqrt(energy[0]), float(np.linalg.norm(sigma * g)), float(np.linalg.norm(P @ yv)))
            return est <= 0.5

    it = 0
    gk = grad(y)
    best = err(gk, y)
    best_y, best_g = y, gk
    while best > goal and it < maxiter:
        if energy is not None:
            energy[0] = last[0]
        y, gk, it = cg_steps(mat, y, gk, it, maxiter, done, energy)
        gk = grad(y)  # the true gradient: the recurrence drifts below the rounding floor
        e = err(gk, y)
        if e >= 0.5 * best and e > goal:
            if e < best:
                best, best_y, best_g = e, y, gk
            break
        best, best_y, best_g = e, y, gk
    return best_y, it, best_g, best <= goal


def cg_correction(normal, P, c, maxiter):
    """CG on (AP)^T (AP) y = c from y = c (AP is near-orthonormal), to 1e-8 relative or a stall.
    ``normal(v, g)`` writes A^T (A v) to g (one pass over A)."""
    gA = np.empty(P.shape[0])

    def mat(v):
        normal(np.ascontiguousarray(P @ v), gA)
        return P.T @ gA

    y = c.copy()
    goal = 1e-16 * float(c @ c)
    y, _, it = cg_steps(mat, y, c - mat(y), 1, maxiter, lambda res, _: float(res @ res) <= goal)
    return y, it


class RefinementPasses:
    """The three passes of a refinement over an in-memory A, holding the per-row state r and f.
    numkern.dask supplies the same three over row blocks (bit-identical, as the sums are merged in
    the same chunk order)."""

    def __init__(self, A, b):
        n = A.shape[0]
        self.A, self.b = A, b
        self.r, self.f, self.t = np.empty(n), np.empty(n), np.empty(n)

    def residual(self, x, first, h):
        """h = A^T (b - A x) accurate to a few ulps (r = b - A x rounded once when first)."""
        if isinstance(self.A, CsrRows):
            self.A.ls_refine_residual(x, self.r, first, self.b, self.f, h)
        else:
            _core.ls_refine_residual(self.A, x, self.r, first, self.b, self.f, h)

    def normal(self, v, g):
        row_residual(self.A, v, None, g, None)

    def update(self, dx):
        """r <- r + f - A dx, the new residual's leading part."""
        row_residual(self.A, dx, self.f, None, self.t)  # t = A dx - f
        np.subtract(self.r, self.t, out=self.r)


def refine_column(passes, P, x, tol, maxiter):
    """Iterative refinement of the augmented system [I A; A^T 0][r; x] = [b; 0] (Bjorck 1967) with
    its residuals evaluated in double-double (``_core.ls_refine_residual``); ``passes`` holds A, b
    and the state (see ``RefinementPasses``).

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
        y, k = cg_correction(passes.normal, P, c, max(1, maxiter - iters))
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


def misses_rank(grad_norm, a_norm, x_norm, b_norm, tol):
    """Whether a preconditioned x (from a sketch of lower rank than d) misses part of the solution:
    its normal-equation gradient ||A^T (A x - b)|| is far above rounding (else x is the min-norm
    solution of a rank-deficient A)."""
    bound = max(1e-8, 10 * float(tol)) * a_norm * (a_norm * x_norm + b_norm)
    return not grad_norm <= bound
