"""Sketch peers: fwht against one memory pass (np.copyto) and a NumPy butterfly; lstsq against
numpy.linalg.lstsq (LAPACK gelsd) and scipy.linalg.lstsq(lapack_driver="gelsy"); lstsq on a
scipy.sparse A against scipy.sparse.linalg.lsqr and lsmr."""

from __future__ import annotations

import numpy as np

import numkern
from numkern import _core
from numkern._lstsq_solve import bootstrap_linf, factor_sketch, one_blas_thread
from numkern.sketch import SRHT, CountSketch, SparseSign

from ._harness import Case


def _numpy_fwht(x):
    """In-place radix-2 butterfly along axis 0, vectorized over each stage."""
    n = x.shape[0]
    h = 1
    while h < n:
        v = x.reshape((n // (2 * h), 2, h) + x.shape[1:])
        a = v[:, 0].copy()
        v[:, 0] += v[:, 1]
        np.subtract(a, v[:, 1], out=v[:, 1])
        h *= 2
    return x


def _fwht_case(n, d, quick):
    rng = np.random.default_rng(0)
    shape = (n,) if d == 1 else (n, d)
    x = rng.standard_normal(shape)
    y = x.copy()
    z = x.copy()
    impls = {
        "numkern fwht (in place, normalized)": lambda: numkern.fwht(y, normalize=True, out=y),
        "np.copyto (one read+write pass)": lambda: np.copyto(z, x),
    }
    if n * max(d, 1) <= (1 << 24):
        w = x.copy()
        impls["numpy butterfly (in place)"] = lambda: _numpy_fwht(w)
    label = f"fwht {n}" + ("" if d == 1 else f" x {d}") + " float64"
    return Case(
        "sketch",
        label,
        impls,
        reference="numkern fwht (in place, normalized)",
        bound=("np.copyto (one read+write pass)",),
        threaded_bound=lambda: _core.convert(z, x),
    )


def _serial_part(S, A, b, method):
    """The part of ``lstsq(A, b, method=...)`` with sketch S that runs on one thread by design: the
    LAPACK work on the m x d sketch (QR, SVD; for sketch-and-solve also the bootstrap's products),
    which the solver runs with BLAS at one thread. Timed on the same sketch shape."""
    SA, Sb = np.asarray(S @ A, dtype=np.float64), np.asarray(S @ b, dtype=np.float64)[:, None]
    solve = method == "sketch"

    def run():
        with one_blas_thread():
            U, s, Vt, r, c = factor_sketch(SA, Sb, np.finfo(np.float64).eps, basis=solve)
            if solve and r:
                bootstrap_linf(U, s, Vt, SA, Sb, Vt.T @ (c / s[:, None]), np.random.default_rng(0), 0.1)

    return run


def _lstsq_case(n, d, quick):
    import scipy.linalg

    rng = np.random.default_rng(1)
    A = rng.standard_normal((n, d))
    A *= np.logspace(0, 3, d)  # condition number ~1e3
    b = A @ rng.standard_normal(d) + rng.standard_normal(n)
    impls = {
        f"numkern lstsq sketch (srht, m={8 * d})": lambda: numkern.lstsq(A, b, method="sketch", m=8 * d, rng=0),
        "numkern lstsq precondition (tol 1e-10)": lambda: numkern.lstsq(A, b, method="precondition", rng=0),
        "numpy.linalg.lstsq (gelsd)": lambda: np.linalg.lstsq(A, b, rcond=None),
        "scipy.linalg.lstsq gelsy": lambda: scipy.linalg.lstsq(A, b, lapack_driver="gelsy", check_finite=False),
    }
    x_ref = np.linalg.lstsq(A, b, rcond=None)[0]
    xp = numkern.lstsq(A, b, method="precondition", rng=0)
    err = np.linalg.norm(xp.x - x_ref) / np.linalg.norm(x_ref)
    note = (
        f"precondition: {xp.iterations} CG passes, rel. difference to numpy {err:.1e}; "
        f"sketch-and-solve rel. difference "
        f"{np.linalg.norm(numkern.lstsq(A, b, method='sketch', m=8 * d, rng=0).x - x_ref) / np.linalg.norm(x_ref):.1e}"
    )

    def passes():
        # The preconditioned solver reads A at least once per CG step, for the sketch and for the
        # final residual.
        for _ in range(xp.iterations + 2):
            _core.bandwidth_read(A)

    # Sketch-and-solve reads A twice (the sketch, then the residual): two threaded reads bound it.
    return Case(
        "sketch",
        f"lstsq {n} x {d} float64",
        impls,
        reference=f"numkern lstsq sketch (srht, m={8 * d})",
        note=note,
        threaded_bound=lambda: (_core.bandwidth_read(A), _core.bandwidth_read(A)),
        threaded_bound_of={"numkern lstsq precondition (tol 1e-10)": passes},
        serial_part_of={
            f"numkern lstsq sketch (srht, m={8 * d})": _serial_part(SRHT(n, 8 * d, rng=0), A, b, "sketch"),
            "numkern lstsq precondition (tol 1e-10)": _serial_part(SRHT(n, 4 * d, rng=0), A, b, "precondition"),
        },
    )


def _sparse_problem(n, d, density, cond, seed=2):
    """A random sparse CSR matrix (n, d) with about density * n * d normal entries, its columns
    scaled by logspace(0, log10(cond)) (condition number about cond), and b = A x + noise."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    nnz = int(n * d * density)
    A = sp.csr_array((rng.standard_normal(nnz), (rng.integers(0, n, nnz), rng.integers(0, d, nnz))), shape=(n, d))
    A.sum_duplicates()
    if cond > 1:
        A = sp.csr_array(A @ sp.diags_array(np.logspace(0, np.log10(cond), d)))
    b = A @ rng.standard_normal(d) + rng.standard_normal(n)
    return A, b


def _normal_residual(A, b, x, anorm):
    """||A^T r|| / (||A||_F ||r||), r = b - A x: the relative normal-equation residual (LSQR's test)."""
    r = b - A @ x
    return float(np.linalg.norm(A.T @ r) / (anorm * np.linalg.norm(r)))


def _sparse_lstsq_case(n, d, density, cond, quick):
    from scipy.sparse.linalg import lsmr, lsqr

    A, b = _sparse_problem(n, d, density, cond)
    anorm = float(np.linalg.norm(A.data))
    cap = 2 * d  # scipy's default iteration cap of lsqr and lsmr (min(m, n) for lsmr)
    runs = {
        "numkern lstsq precondition (atol 1e-10)": lambda: numkern.lstsq(
            A, b, method="precondition", atol=1e-10, btol=0.0, rng=0
        ),
        f"numkern lstsq sketch (sparse_sign, m={8 * d})": lambda: numkern.lstsq(A, b, method="sketch", rng=0),
        "numkern lstsq sketch (countsketch)": lambda: numkern.lstsq(A, b, method="sketch", sketch="countsketch", rng=0),
        "scipy lsqr (atol=btol=1e-10)": lambda: lsqr(A, b, atol=1e-10, btol=1e-10, iter_lim=cap),
        "scipy lsmr (atol=btol=1e-10)": lambda: lsmr(A, b, atol=1e-10, btol=1e-10, maxiter=cap),
        "scipy lsqr (atol=btol=1e-3)": lambda: lsqr(A, b, atol=1e-3, btol=1e-3, iter_lim=cap),
        "scipy lsmr (atol=btol=1e-3)": lambda: lsmr(A, b, atol=1e-3, btol=1e-3, maxiter=cap),
    }
    # One run of each for the accuracy it reaches (the timed runs repeat the same computation).
    parts = []
    for label, fn in runs.items():
        out = fn()
        x, its = (out.x, out.iterations) if hasattr(out, "x") else (out[0], out[2])
        capped = " (iteration cap)" if not hasattr(out, "x") and its >= cap else ""
        parts.append(f"{label}: {its} it.{capped}, ||A^T r||/(||A|| ||r||) = {_normal_residual(A, b, x, anorm):.1e}")
    return Case(
        "sketch",
        f"sparse lstsq {n} x {d}, density {density}, cond {cond:.0e}",
        runs,
        reference="numkern lstsq precondition (atol 1e-10)",
        note="; ".join(parts),
        threaded_bound=lambda: (_core.bandwidth_read(A.data), _core.bandwidth_read(A.indices)),
        serial_part_of={
            "numkern lstsq precondition (atol 1e-10)": _serial_part(SparseSign(n, 4 * d, rng=0), A, b, "precondition"),
            f"numkern lstsq sketch (sparse_sign, m={8 * d})": _serial_part(SparseSign(n, 8 * d, rng=0), A, b, "sketch"),
            "numkern lstsq sketch (countsketch)": _serial_part(CountSketch(n, 8 * d, rng=0), A, b, "sketch"),
        },
    )


def cases(quick: bool) -> list[Case]:
    if quick:  # the acceptance sizes, with the harness's smaller round budget
        return [
            _fwht_case(1 << 24, 1, quick),
            _fwht_case(1 << 14, 64, quick),
            _lstsq_case(1 << 20, 100, quick),
            _sparse_lstsq_case(1 << 17, 200, 0.005, 1.0, quick),
            _sparse_lstsq_case(1 << 17, 200, 0.005, 1e6, quick),
        ]
    return [
        _fwht_case(1 << 24, 1, quick),
        _fwht_case(1 << 20, 1, quick),
        _fwht_case(1 << 16, 256, quick),
        _lstsq_case(1 << 20, 100, quick),
        _sparse_lstsq_case(1 << 20, 500, 0.005, 1.0, quick),
        _sparse_lstsq_case(1 << 20, 500, 0.005, 1e6, quick),
    ]
