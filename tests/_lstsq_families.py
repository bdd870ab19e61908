"""Test matrices with known solution x*, residual r (orthogonal to range(A)) and ||A^+||_2."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Problem:
    A: np.ndarray
    b: np.ndarray
    x: np.ndarray  # the minimum-norm solution
    r_norm: float
    pinv_norm: float


def _orth(rng, n, d):
    q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    return q


def _from_svd(U, s, Vt, rng, r_scale=1.0):
    """b = A x* + r with x* in the row space and r orthogonal to range(A)."""
    A = (U * s) @ Vt
    keep = s > s.max() * 1e-13
    x = Vt[keep].T @ rng.standard_normal(int(keep.sum()))
    g = rng.standard_normal(A.shape[0])
    Uk = U[:, keep]
    r = g - Uk @ (Uk.T @ g)
    r *= r_scale * np.linalg.norm(A @ x) / np.linalg.norm(r)
    return Problem(A, A @ x + r, x, float(np.linalg.norm(r)), float(1.0 / s[keep].min()))


def _numeric(A, rng, r_scale=1.0):
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    return _from_svd(U, s, Vt, rng, r_scale) if np.allclose((U * s) @ Vt, A, rtol=0, atol=1e-12 * s[0]) else None


def incoherent(rng, n, d, cond):
    U = _orth(rng, n, d)
    V = _orth(rng, d, d)
    s = np.logspace(0, -np.log10(cond), d)
    return _from_svd(U, s, V.T, rng)


def _with_exact_svd(A, rng):
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    # Rebuild A from its SVD so that the SVD, x* and r are exact for the matrix we hand out.
    return _from_svd(U, s, Vt, rng)


def semi_coherent(rng, n, d):
    h = d // 2
    A = np.zeros((n, d))
    A[: n - (d - h), :h] = rng.standard_normal((n - (d - h), h))
    A[n - (d - h) :, h:] = np.eye(d - h)
    return _with_exact_svd(A + 1e-8, rng)


def coherent(rng, n, d):
    A = np.zeros((n, d))
    A[:d, :d] = np.diag(rng.standard_normal(d))
    return _with_exact_svd(A + 1e-8, rng)


def _sigma(d):
    i = np.arange(d)
    return 2.0 * 0.5 ** np.abs(i[:, None] - i[None, :])


def gaussian_rows(rng, n, d):
    L = np.linalg.cholesky(_sigma(d))
    return _with_exact_svd(rng.standard_normal((n, d)) @ L.T, rng)


def t_rows(rng, n, d, df):
    L = np.linalg.cholesky(_sigma(d))
    Z = rng.standard_normal((n, d)) @ L.T
    w = np.sqrt(rng.chisquare(df, size=n) / df)
    return _with_exact_svd(Z / w[:, None], rng)


def rank_deficient(rng, n, d):
    U = _orth(rng, n, d - 1)
    V = _orth(rng, d - 1, d - 1)
    B = (U * np.logspace(0, -2, d - 1)) @ V.T
    A = np.hstack([B, B[:, :1]])  # duplicated column
    return _with_exact_svd(A, rng)


def high_leverage(rng, n, d, count=3):
    A = rng.standard_normal((n, d))
    A[rng.choice(n, count, replace=False)] *= 1e4
    return _with_exact_svd(A, rng)


FAMILIES = {
    "incoherent_cond1": lambda rng, n, d: incoherent(rng, n, d, 1.0),
    "incoherent_cond1e3": lambda rng, n, d: incoherent(rng, n, d, 1e3),
    "incoherent_cond1e6": lambda rng, n, d: incoherent(rng, n, d, 1e6),
    "incoherent_cond1e10": lambda rng, n, d: incoherent(rng, n, d, 1e10),
    "semi_coherent": semi_coherent,
    "coherent": coherent,
    "GA": gaussian_rows,
    "T3": lambda rng, n, d: t_rows(rng, n, d, 3),
    "T1": lambda rng, n, d: t_rows(rng, n, d, 1),
    "rank_deficient": rank_deficient,
    "high_leverage": high_leverage,
}


def _as_integers(arrays):
    """The float64 arrays as Python integers under one common power-of-two scale (exact)."""
    exps = [np.frexp(a)[1][a != 0] for a in arrays]
    allexp = np.concatenate(exps) if exps else np.zeros(0, dtype=int)
    shift = 53 - int(allexp.min()) if allexp.size else 0
    out = []
    for a in arrays:
        m, e = np.frexp(a)
        mant = (m * 2.0**53).astype(np.int64).ravel().tolist()
        sh = (e.astype(np.int64) - 53 + shift).ravel().tolist()
        obj = np.empty(a.size, dtype=object)
        obj[:] = [v << s if v else 0 for v, s in zip(mant, sh)]
        out.append(obj.reshape(a.shape))
    return out


def exact_lstsq(A, b):
    """The exact least-squares solution of the stored float64 (A, b) (full column rank): the
    normal equations in integers, solved in rationals, rounded once to float64. Independent of
    any floating-point solver, so it can judge errors far below LAPACK's."""
    from fractions import Fraction

    Ai, bi = _as_integers([np.asarray(A, np.float64), np.asarray(b, np.float64)])
    G, c = Ai.T.dot(Ai), Ai.T.dot(bi)
    d = G.shape[0]
    M = [[Fraction(int(G[i, j])) for j in range(d)] + [Fraction(int(c[i]))] for i in range(d)]
    for k in range(d):
        p = max(range(k, d), key=lambda i: abs(M[i][k]))
        M[k], M[p] = M[p], M[k]
        for i in range(k + 1, d):
            q = M[i][k] / M[k][k]
            if q:
                for j in range(k, d + 1):
                    M[i][j] -= q * M[k][j]
    x = [Fraction(0)] * d
    for i in reversed(range(d)):
        x[i] = (M[i][d] - sum(M[i][j] * x[j] for j in range(i + 1, d))) / M[i][i]
    return np.array([float(v) for v in x])
