"""numkern.lstsq: the l-infinity guarantee of sketch-and-solve on the test matrix families,
accuracy of sketch-and-precondition, the minimum-norm solution, and argument checking."""

import math

import numpy as np
import pytest
import scipy.stats
from _lstsq_families import FAMILIES, Problem, exact_lstsq, incoherent, rank_deficient
from _reference import matmul_wide

import numkern
from numkern.linalg import C_ROWS, sketch_rows


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """The small dense factorizations (m x d SVDs, bootstrap solves) run hundreds of tiny BLAS
    calls; on a shared 2-core machine a second OpenBLAS thread makes each wait for the scheduler.
    One BLAS thread keeps this file fast; numkern's own kernels still use every thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


N_LINF, D_LINF, EPS, DELTA, SEEDS = 2048, 8, 0.5, 0.1, 200
BEST_ISA = numkern.cpu_info()["detected"]


def _seeds(isa, sketch):
    """200 seeds where cheap; the lower ISA levels only re-check the statistics with fewer (their
    kernels are checked entry by entry against dense references in test_sketch.py)."""
    if isa in (None, BEST_ISA):
        return SEEDS
    return 100 if sketch == "srht" else 40


def _binomial_ok(failures, trials, delta):
    """One-sided test at 1%: is the failure rate consistent with <= delta?"""
    return scipy.stats.binom.sf(failures - 1, trials, delta) >= 0.01


def _linf_failures(P: Problem, sketch, seeds):
    d = P.A.shape[1]
    bound = EPS / math.sqrt(d) * P.r_norm * P.pinv_norm
    fails = 0
    for s in range(seeds):
        res = numkern.lstsq(P.A, P.b, method="sketch", sketch=sketch, eps=EPS, delta=DELTA, rng=s)
        fails += np.abs(res.x - P.x).max() > bound
    return fails


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("sketch", ["srht", "gaussian"])
def test_linf_bound_holds_in_1_minus_delta_of_seeds(family, sketch, isa):
    P = FAMILIES[family](np.random.default_rng(sorted(FAMILIES).index(family)), N_LINF, D_LINF)
    seeds = _seeds(isa, sketch)
    fails = _linf_failures(P, sketch, seeds)
    assert _binomial_ok(fails, seeds, DELTA), f"{family}/{sketch}: {fails}/{seeds} seeds broke the bound"


def test_countsketch_breaks_the_linf_bound_on_the_coherent_matrix():
    # Song et al. (ICML 2023): sparse sketches cannot give the guarantee. Heavy rows of the
    # coherent matrix collide in one CountSketch bucket with probability ~ d^2 / (2m).
    d = 32
    P = FAMILIES["coherent"](np.random.default_rng(5), 4096, d)
    bound = EPS / math.sqrt(d) * P.r_norm * P.pinv_norm
    fails_cs = fails_srht = 0
    seeds = 100
    for s in range(seeds):
        for kind in ("countsketch", "srht"):
            res = numkern.lstsq(P.A, P.b, method="sketch", sketch=kind, eps=EPS, delta=DELTA, rng=s)
            bad = np.abs(res.x - P.x).max() > bound
            if kind == "countsketch":
                fails_cs += bad
            else:
                fails_srht += bad
    assert not _binomial_ok(fails_cs, seeds, DELTA), f"CountSketch failed only {fails_cs}/{seeds}"
    assert _binomial_ok(fails_srht, seeds, DELTA)


@pytest.mark.isa_independent
def test_row_rule_uses_the_documented_constant():
    assert C_ROWS == 2.0
    assert sketch_rows(8, 0.5, 0.1) == math.ceil(2.0 * 8 * math.log(160) / 0.25)
    proof = (math.sqrt(8) + math.sqrt(2 * math.log(20)) + math.sqrt(2 * 8 * math.log(160)) / 0.5) ** 2
    assert sketch_rows(8, 0.5, 0.1, "gaussian") == max(sketch_rows(8, 0.5, 0.1), math.ceil(proof))


def test_linf_error_estimate_tracks_the_true_error():
    P = FAMILIES["incoherent_cond1e3"](np.random.default_rng(1), 4096, 16)
    ratios = []
    for s in range(40):
        res = numkern.lstsq(P.A, P.b, method="sketch", m=200, rng=s)
        ratios.append(res.linf_error_estimate / np.abs(res.x - P.x).max())
    ratios = np.array(ratios)
    assert np.median(ratios) > 0.3 and np.median(ratios) < 5
    assert (ratios > 0.1).mean() >= 0.9


def _forward(x, P):
    return np.linalg.norm(x - P.x) / np.linalg.norm(P.x)


_EXACT = {}


def _incoherent_with_exact(cond, r_scale):
    """An incoherent problem with ||r|| = r_scale ||A x*|| and the exact least-squares solution of
    the stored float64 (A, b): rounding A and b moves the solution by up to u cond(A)^2 ||r|| /
    (||A|| ||x||), about 1 at cond 1e10, so x* of the construction cannot judge 1e-10."""
    key = (cond, r_scale)
    if key not in _EXACT:
        P = incoherent(np.random.default_rng(int(math.log10(cond)) * 7 + 1), 4096, 16, cond)
        b = P.A @ P.x + r_scale * (P.b - P.A @ P.x)
        _EXACT[key] = (P.A, b, exact_lstsq(P.A, b))
    return _EXACT[key]


@pytest.mark.parametrize("cond,r_scale", [(1.0, 1.0), (1e3, 1.0), (1e6, 1.0), (1e10, 0.0), (1e10, 1.0), (1e10, 1e3)])
@pytest.mark.parametrize("sketch", ["srht", "gaussian"])
def test_precondition_reaches_1e10_of_the_exact_solution_up_to_cond_1e10(cond, r_scale, sketch):
    A, b, x_exact = _incoherent_with_exact(cond, r_scale)
    res = numkern.lstsq(A, b, method="precondition", sketch=sketch, rng=0)
    err = np.linalg.norm(res.x - x_exact) / np.linalg.norm(x_exact)
    assert err <= 1e-10
    assert res.method == "precondition" and res.iterations <= 200 and res.rank == 16
    # The estimate tracks the error: here it is the last refinement correction, at the rounding
    # floor, which over 60 sketch seeds stayed within a factor 20 of the true error.
    assert np.abs(res.x - x_exact).max() <= 30 * res.linf_error_estimate + 1e-15 * np.abs(x_exact).max()


@pytest.mark.isa_independent
def test_lapack_misses_1e10_where_refinement_reaches_it():
    """Why the refinement exists: at cond 1e10 with a residual, gelsd is off by order one."""
    A, b, x_exact = _incoherent_with_exact(1e10, 1.0)
    ref = np.linalg.lstsq(A, b, rcond=None)[0]
    assert np.linalg.norm(ref - x_exact) / np.linalg.norm(x_exact) > 1e-6


@pytest.mark.isa_independent
def test_exact_reference_agrees_with_lapack_on_a_well_conditioned_problem():
    A, b, x_exact = _incoherent_with_exact(1.0, 1.0)
    ref = np.linalg.lstsq(A, b, rcond=None)[0]
    assert np.linalg.norm(ref - x_exact) / np.linalg.norm(x_exact) < 1e-14


def test_refinement_residual_kernel_is_as_accurate_as_twice_the_precision(rng):
    """f = b - r - A x and h = A^T f + A^T r against exact rational arithmetic, on rows and columns
    that cover every vector tail, values spread over 30 binades and a cancelling b."""
    from fractions import Fraction

    for n, d in [(1, 1), (5, 3), (37, 9), (64, 17)]:
        A = rng.standard_normal((n, d)) * np.exp2(rng.integers(-15, 15, (n, d)))
        x = rng.standard_normal(d)
        b = A @ x + 1e-9 * rng.standard_normal(n)
        for init in (True, False):
            r = np.zeros(n) if init else (b - A @ x) * (1 + 1e-3 * rng.standard_normal(n))
            r_in = r.copy()
            f, h = np.empty(n), np.empty(d)
            numkern._core.ls_refine_residual(A, x, r, init, b, f, h)
            Af = [[Fraction(v) for v in row] for row in A.tolist()]
            rx = [Fraction(b[i]) - sum(Af[i][k] * Fraction(x[k]) for k in range(d)) for i in range(n)]
            if init:
                assert np.array_equal(r, np.array([float(v) for v in rx]))  # b - A x rounded once
            else:
                assert np.array_equal(r, r_in)
            f_exact = [rx[i] - Fraction(r[i]) for i in range(n)]
            scale = [sum(abs(Af[i][k] * Fraction(x[k])) for k in range(d)) + abs(Fraction(b[i])) for i in range(n)]
            for i in range(n):
                # Dot2's bound: u |f| + gamma_{2d+2}^2 sum |terms|, with room to spare.
                assert (
                    abs(Fraction(f[i]) - f_exact[i]) <= 2.3e-16 * abs(f_exact[i]) + 1e-30 * (2 * d + 2) ** 2 * scale[i]
                )
            h_exact = [sum(Af[i][j] * (Fraction(f[i]) + Fraction(r[i])) for i in range(n)) for j in range(d)]
            h_scale = [sum(abs(Af[i][j] * Fraction(f[i])) for i in range(n)) for j in range(d)]
            for j in range(d):
                assert abs(Fraction(h[j]) - h_exact[j]) <= 2.3e-16 * abs(h_exact[j]) + 1e-15 * n * h_scale[
                    j
                ] + 1e-30 * n * n * sum(abs(Af[i][j] * Fraction(r[i])) for i in range(n))


@pytest.mark.parametrize("family", ["semi_coherent", "coherent", "GA", "T3", "T1", "high_leverage"])
def test_precondition_on_coherent_and_heavy_tailed_families(family):
    P = FAMILIES[family](np.random.default_rng(3), 4096, 16)
    res = numkern.lstsq(P.A, P.b, method="precondition", rng=0)
    assert _forward(res.x, P) <= 1e-10


def test_precondition_returns_the_minimum_norm_solution_for_rank_deficient_A(rng):
    P = rank_deficient(rng, 4096, 12)
    res = numkern.lstsq(P.A, P.b, method="precondition", rng=0)
    ref = np.linalg.lstsq(P.A, P.b, rcond=None)[0]
    assert res.rank == 11
    np.testing.assert_allclose(res.x, ref, rtol=0, atol=1e-8 * np.linalg.norm(ref))
    assert abs(res.x[0] - res.x[-1]) <= 1e-8 * np.linalg.norm(ref)  # duplicated columns share weight
    res_s = numkern.lstsq(P.A, P.b, method="sketch", m=400, rng=0)
    assert res_s.rank == 11 and abs(res_s.x[0] - res_s.x[-1]) <= 1e-10 * np.linalg.norm(ref)


def test_multiple_right_hand_sides_match_column_by_column(rng):
    """b of shape (n, k) is solved column by column: each column of the result agrees with solving
    that column alone, to the accuracy each method has, and the zero column gives exactly zero.

    The columns are not bit-identical to the single solves and the test does not ask for it: a
    vector b is sketched by the SRHT's in-register path and a matrix by its strip path (equal up to
    rounding, see test_sketch.py), and the dense steps run as BLAS matrix-matrix instead of
    matrix-vector products, whose rounding depends on the BLAS kernel. The preconditioned solver
    stops anywhere within tol of the solution, so a different start moves its answer by up to
    about tol ||x*||. References are the exact least-squares solutions of the stored (A, b_j) in
    rational arithmetic and residuals in long double: no BLAS."""
    P = incoherent(rng, 3000, 10, 1e2)
    B = np.stack([P.b, 2 * P.b + rng.standard_normal(3000), np.zeros(3000)], axis=1)
    X_exact = np.stack([exact_lstsq(P.A, B[:, j]) for j in range(3)], axis=1)
    Ax = matmul_wide(P.A, X_exact)
    r_exact = np.linalg.norm((Ax - B).astype(np.float64), axis=0)
    x_norm = np.linalg.norm(X_exact, axis=0)
    # LAPACK's error bound for least squares (LAPACK Users' Guide, 3rd ed., sec. 4.5):
    # ||x - x*|| / ||x*|| <= p(n) u (2 kappa / cos(theta) + kappa^2 tan(theta)), sin(theta) = ||r*|| / ||b||,
    # with kappa = 100 (singular values from 1 to 1e-2 by construction) and p(n) = 10 (the guide
    # takes 1). About 1e-11 and 2e-10 for the two nonzero columns; measured errors are near 1e-14.
    ax_norm = np.linalg.norm(Ax.astype(np.float64), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tan = np.where(x_norm > 0, r_exact / ax_norm, 0.0)
        sec = np.where(x_norm > 0, np.hypot(r_exact, ax_norm) / ax_norm, 1.0)
    direct_bound = 10 * 2.0**-53 * (2 * 1e2 * sec + 1e4 * tan) * x_norm
    tol = 1e-10  # numkern.lstsq's default: forward error of "precondition" against the exact solution
    for method in ("sketch", "precondition", "direct"):
        res = numkern.lstsq(P.A, B, method=method, rng=4)
        assert res.x.shape == (10, 3) and res.residual_norm.shape == (3,)
        single = [numkern.lstsq(P.A, B[:, j], method=method, rng=4) for j in range(3)]
        for j, rj in enumerate(single):
            if method == "sketch":
                # The same sketch and the same SVD of S A in both calls (S A is formed by the strip
                # path either way): the columns differ only by the rounding of S b_j and of two small
                # products, measured at most 7e-16 (relative to 1 + max|x|) under the Haswell,
                # SkylakeX, Sandybridge and Prescott OpenBLAS kernels, against this 1e-12.
                np.testing.assert_allclose(res.x[:, j], rj.x, rtol=0, atol=1e-12 * (1 + np.abs(rj.x).max()))
                continue
            bound = tol * x_norm[j] if method == "precondition" else direct_bound[j]
            assert np.linalg.norm(res.x[:, j] - X_exact[:, j]) <= bound
            assert np.linalg.norm(rj.x - X_exact[:, j]) <= bound
            assert np.linalg.norm(res.x[:, j] - rj.x) <= 2 * bound  # (implied; the test's subject)
            # ||A x - b||^2 = ||r*||^2 + ||A (x - x*)||^2 (r* is orthogonal to range(A)), so the residual
            # norm exceeds ||r*|| by at most ||A||^2 bound^2 / (2 ||r*||) < 1e-17 relative here; rtol covers the
            # rounding of the residual pass (about n u (||A|| ||x|| + ||b||) / ||r*||, 1e-12).
            np.testing.assert_allclose([res.residual_norm[j], rj.residual_norm], r_exact[j], rtol=1e-9)
        assert not res.x[:, 2].any() and not single[2].x.any()  # b = 0 gives x = 0 exactly


def test_weights_solve_the_weighted_problem(rng):
    P = incoherent(rng, 2000, 6, 10.0)
    w = rng.uniform(0, 3, size=2000)
    w[:50] = 0.0
    sw = np.sqrt(w)
    ref = np.linalg.lstsq(P.A * sw[:, None], P.b * sw, rcond=None)[0]
    for method in ("precondition", "direct"):
        res = numkern.lstsq(P.A, P.b, method=method, weights=w, rng=0)
        np.testing.assert_allclose(res.x, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    b_bad = P.b.copy()
    b_bad[:50] = 1e6  # zero-weight rows are ignored
    res = numkern.lstsq(P.A, b_bad, method="precondition", weights=w, rng=0)
    np.testing.assert_allclose(res.x, ref, rtol=0, atol=1e-10 * np.abs(ref).max())


def test_float32_inputs_give_float32_results(rng):
    P = incoherent(rng, 4096, 8, 10.0)
    A32, b32 = P.A.astype(np.float32), P.b.astype(np.float32)
    ref = np.linalg.lstsq(A32.astype(np.float64), b32.astype(np.float64), rcond=None)[0]
    for method in ("sketch", "precondition", "direct"):
        res = numkern.lstsq(A32, b32, method=method, rng=0)
        assert res.x.dtype == np.float32
        target = ref
        if method == "sketch":  # the same sketch applied in float64
            target = numkern.lstsq(A32.astype(np.float64), b32.astype(np.float64), method=method, rng=0).x
        assert np.abs(res.x - target).max() <= 1e-4 * np.abs(target).max()
    assert numkern.lstsq(A32, P.b, method="direct").x.dtype == np.float64


def test_results_are_reproducible_across_runs_and_thread_counts(rng):
    P = incoherent(rng, 1 << 17, 64, 1e3)  # above the kernels' serial threshold
    before = numkern.get_num_threads()
    out = []
    try:
        for nt in (1, 2, 1):
            numkern.set_num_threads(nt)
            out.append(
                [
                    numkern.lstsq(P.A, P.b, method=mth, sketch=sk, rng=7).x
                    for mth, sk in (("sketch", "srht"), ("sketch", "gaussian"), ("precondition", "srht"))
                ]
            )
    finally:
        numkern.set_num_threads(before)
    for a, b in zip(out[0], out[1]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(out[0], out[2]):
        np.testing.assert_array_equal(a, b)


def test_auto_chooses_precondition_for_tall_large_problems(rng):
    A = rng.standard_normal((20000, 60))
    b = rng.standard_normal(20000)
    assert numkern.lstsq(A, b, rng=0).method == "precondition"
    assert numkern.lstsq(A[:100, :20], b[:100]).method == "direct"
    res = numkern.lstsq(A, b, rng=0)
    np.testing.assert_allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0], rtol=0, atol=1e-12)


def test_sketch_rows_follow_m_or_the_eps_rule(rng):
    A = rng.standard_normal((4096, 8))
    b = rng.standard_normal(4096)
    assert numkern.lstsq(A, b, method="sketch", m=100, rng=0).sketch_rows == 100
    assert numkern.lstsq(A, b, method="sketch", eps=0.5, rng=0).sketch_rows == sketch_rows(8, 0.5, 0.1)
    assert numkern.lstsq(A, b, method="sketch", rng=0).sketch_rows == 64
    assert numkern.lstsq(A, b, method="direct").sketch_rows == 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"m": 7}, "fewer than"),
        ({"m": 4097}, "exceeds the padded"),
        ({"eps": 0.0}, "eps"),
        ({"eps": -1.0}, "eps"),
        ({"eps": 0.01}, "more than the padded"),
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"method": "qr"}, "method"),
        ({"sketch": "fjlt"}, "sketch"),
        ({"tol": 0.0}, "tol"),
        ({"maxiter": 0}, "maxiter"),
        ({"weights": -np.ones(3000)}, "nonnegative"),
        ({"weights": np.ones(5)}, "weights"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3000, 8))
    b = rng.standard_normal(3000)
    kw = {"method": "sketch", **kwargs}
    with pytest.raises(ValueError, match=match):
        numkern.lstsq(A, b, **kw)


@pytest.mark.parametrize("method", ["sketch", "precondition", "direct"])
def test_non_finite_and_misshapen_inputs_raise_value_error(method):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((1000, 5))
    b = rng.standard_normal(1000)
    A_nan = A.copy()
    A_nan[10, 2] = np.nan
    A_inf = A.copy()
    A_inf[999, 0] = -np.inf
    b_inf = b.copy()
    b_inf[3] = np.inf
    A0 = A_nan.copy()
    for AA, bb, match in [
        (A_nan, b, "A contains NaN"),
        (A_inf, b, "A contains NaN"),
        (A, b_inf, "b contains NaN"),
        (A, b[:-1], "b must have shape"),
        (A[:, 0], b, "A must be 2-d"),
        (A, b.reshape(10, 100), "b must have shape"),
        (A[:, :0], b, "at least one"),
    ]:
        with pytest.raises(ValueError, match=match):
            numkern.lstsq(AA, bb, method=method, m=64 if method != "direct" else None, rng=0)
    np.testing.assert_array_equal(A_nan, A0)  # inputs are never mutated
    with pytest.raises(TypeError):
        numkern.lstsq(A.astype(np.complex128), b, method=method)


@pytest.mark.parametrize("m", [1, 3, 7])
def test_sparse_sign_sketch_with_fewer_than_8_rows_works(rng, m):
    # Found by fuzzing: lstsq built SparseSign(nnz_per_col=8) even when m < 8 and raised about an
    # argument the caller never passed.
    A = rng.standard_normal((8, 1))
    b = A[:, 0] * 2.0
    res = numkern.lstsq(A, b, method="sketch", sketch="sparse_sign", m=m, rng=1)
    np.testing.assert_allclose(res.x, [2.0], rtol=1e-12)
    res = numkern.lstsq(A, b, method="precondition", sketch="sparse_sign", m=m, rng=1)
    np.testing.assert_allclose(res.x, [2.0], rtol=1e-12)


def test_precondition_falls_back_when_the_sketch_loses_rank_of_a_full_rank_A():
    # Found by fuzzing: a 2 x 2 full-rank A with a 2-row SparseSign sketch whose two columns are
    # parallel gave S A of rank 1, and the preconditioned solve returned a wrong x.
    bad = 0
    for seed in range(40):
        g = np.random.default_rng(seed)
        A, b = g.standard_normal((2, 2)), g.standard_normal(2)
        res = numkern.lstsq(A, b, method="precondition", sketch="sparse_sign", rng=seed)
        np.testing.assert_allclose(res.x, np.linalg.solve(A, b), rtol=1e-8, atol=1e-8 * np.abs(res.x).max())
        bad += res.method == "direct"
    assert bad > 0  # some of these sketches do lose rank: the fallback ran


@pytest.mark.isa_independent
@pytest.mark.parametrize("d", [16, 160])  # the Gram-matrix and the batched-CG bootstrap
def test_error_estimate_of_a_consistent_system_is_at_rounding_level(d):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((1 << 13, d))
    x = rng.standard_normal(d)
    res = numkern.lstsq(A, A @ x, method="sketch", rng=0)
    err = np.abs(res.x - x).max()
    assert err <= 1e-12 * np.abs(x).max()
    assert 0 <= res.linf_error_estimate <= 1e-11 * np.abs(x).max()
