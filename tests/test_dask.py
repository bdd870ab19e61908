"""numkern.dask: equality with the in-memory functions, chunking invariance and the DP noise scale,
with Dask's threaded scheduler (every ISA level) and a real 2-process LocalCluster (once)."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import numkern  # noqa: E402
import numkern.dask as nkd  # noqa: E402
from numkern import _core, quant  # noqa: E402
from numkern.dask._common import task  # noqa: E402
from numkern.dask._softmax import EXT, _merge  # noqa: E402
from numkern.dp import DistanceSum, KernelDensity, NotPrivateWarning, SimilarityClassifier  # noqa: E402

THREADS = {"scheduler": "threads", "num_workers": 2}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None, silence_logs=40
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _softmax_input(rng, dtype):
    x = (rng.standard_normal((7, 1500)) * 8).astype(dtype)
    x[1, 10] = np.nan
    x[2, 20] = np.inf
    x[3, :] = -np.inf
    x[4, ::3] = -np.inf
    x[5, 100] = 9e5  # beyond the two-pass range: the max-based fallback
    x[6, :] = -3e5 + np.arange(1500)  # every chunk's sum is tiny, the merged one is not
    return x


def _close(got, ref, dtype):
    rtol = 2e-6 if dtype == np.float32 else 5e-14
    assert got.dtype == ref.dtype
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * 1e-3, equal_nan=True)


# ------------------------------------------------------------------------------------------ softmax


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_over_a_chunked_axis_matches_the_whole_array_kernel(rng, dtype, log):
    x = _softmax_input(rng, dtype)
    ref = (numkern.log_softmax if log else numkern.softmax)(x)
    fn = nkd.log_softmax if log else nkd.softmax
    for chunks in [(7, 1500), (3, 400), (7, 60), (2, 777)]:
        got = fn(da.from_array(x, chunks=chunks), split_every=2).compute(**THREADS)
        _close(got, ref, dtype)


def test_softmax_with_one_element_chunks(rng):
    x = rng.standard_normal((3, 12)) * 100
    got = nkd.softmax(da.from_array(x, chunks=(2, 1)), split_every=3).compute(**THREADS)
    _close(got, numkern.softmax(x), np.float64)


def test_softmax_along_axis_0_and_3d(rng):
    x = rng.standard_normal((300, 4, 5)).astype(np.float32)
    for axis in (0, 1, -1):
        ref = numkern.softmax(x, axis=axis)
        got = nkd.softmax(da.from_array(x, chunks=(70, 3, 2)), axis=axis).compute(**THREADS)
        _close(got, ref, np.float32)


def test_merged_partials_equal_the_whole_slice_partials(rng):
    x = rng.standard_normal((3, 5000)) * 30
    m = np.empty(3)
    e = np.empty(3)
    _core.softmax_ext_partials(x, 1, m, e)
    parts = []
    for a in range(0, 5000, 1300):
        pm, pe = np.empty(3), np.empty(3)
        _core.softmax_ext_partials(np.ascontiguousarray(x[:, a : a + 1300]), 1, pm, pe)
        p = np.empty((3, 1), EXT)
        p["m"][:, 0], p["e"][:, 0] = pm, pe
        parts.append(p)
    merged = _merge(np.concatenate(parts, axis=1), 1)
    assert np.array_equal(merged["e"][:, 0], e)
    np.testing.assert_allclose(merged["m"][:, 0], m, rtol=1e-15)
    assert np.all((m >= 1) & (m < 2))


@pytest.mark.isa_independent
def test_softmax_dtypes_follow_numkern_softmax(rng):
    for x in (rng.standard_normal((4, 90)).astype(np.float16), rng.integers(-5, 5, (4, 90))):
        ref = numkern.softmax(x)
        got = nkd.softmax(da.from_array(x, chunks=(2, 40))).compute(**THREADS)
        assert got.dtype == ref.dtype
        np.testing.assert_allclose(
            got.astype(np.float64), ref.astype(np.float64), rtol=1e-3 if x.dtype == np.float16 else 1e-13
        )


@pytest.mark.isa_independent
def test_softmax_rejects_bad_input():
    with pytest.raises(TypeError):
        nkd.softmax(da.from_array(np.array(["a", "b"])))
    with pytest.raises(ValueError):
        nkd.softmax(da.from_array(np.float32(1.0)))
    with pytest.raises(np.exceptions.AxisError):
        nkd.softmax(da.ones((3, 4), chunks=2), axis=2)


# ------------------------------------------------------------------------------------------- lstsq


def _ls_problem(rng, n=9000, d=6, k=None, dtype=np.float64):
    A = rng.standard_normal((n, d))
    A[:, 0] *= 50  # some conditioning for the preconditioned solver to fix
    x = rng.standard_normal((d,) if k is None else (d, k))
    b = A @ x + 0.01 * rng.standard_normal((n,) if k is None else (n, k))
    return A.astype(dtype), b.astype(dtype)


@pytest.mark.parametrize("method", ["sketch", "precondition"])
@pytest.mark.parametrize("sketch", ["gaussian", "sparse_sign", "countsketch"])
def test_lstsq_is_bit_identical_to_numkern_lstsq_for_any_row_chunking(rng, method, sketch):
    for dtype, k in ((np.float64, None), (np.float32, 2)):
        A, b = _ls_problem(rng, dtype=dtype, k=k)
        ref = numkern.lstsq(A, b, method=method, sketch=sketch, rng=11)
        for rows in (9000, 4096, 1000, 2501):
            got = nkd.lstsq(
                da.from_array(A, chunks=(rows, 3)),
                da.from_array(b, chunks=rows),
                method=method,
                sketch=sketch,
                rng=11,
                split_every=2,
            )
            assert got.x.dtype == ref.x.dtype
            assert np.array_equal(got.x, ref.x)
            assert np.array_equal(got.residual_norm, ref.residual_norm)
            assert np.array_equal(got.linf_error_estimate, ref.linf_error_estimate)
            assert (got.iterations, got.rank, got.sketch_rows, got.method) == (
                ref.iterations,
                ref.rank,
                ref.sketch_rows,
                ref.method,
            )


def _ill_conditioned_problem():
    """cond 1e10 with a residual as large as A x: float64 solvers (LAPACK, CG) stop at an error of
    order one and only the double-double refinement of numkern.lstsq reaches 1e-10."""
    from _lstsq_families import exact_lstsq, incoherent

    P = incoherent(np.random.default_rng(8), 3 * 4096 + 77, 8, 1e10)
    b = P.A @ P.x + (P.b - P.A @ P.x)
    return P.A, b, exact_lstsq(P.A, b)


def test_refinement_partials_of_tile_aligned_pieces_merge_to_the_whole_pass(rng):
    n, d = 3 * 4096 + 5, 4
    a = rng.standard_normal((n, d)) * np.logspace(0, 8, d)
    x, b = rng.standard_normal(d), rng.standard_normal(n)
    r, f, h = np.empty(n), np.empty(n), np.empty(d)
    _core.ls_refine_residual(a, x, r, True, b, f, h)
    pieces, rp, fp = [], np.empty(n), np.empty(n)
    for lo, hi in ((0, 4096), (4096, n)):
        parts = np.empty((-(-(hi - lo) // 4096), 3, d))
        rs, fs = np.empty(hi - lo), np.empty(hi - lo)
        _core.ls_refine_partials(np.ascontiguousarray(a[lo:hi]), x, rs, True, b[lo:hi].copy(), fs, parts)
        pieces.append(parts)
        rp[lo:hi], fp[lo:hi] = rs, fs
    hp = np.empty(d)
    _core.ls_refine_merge(np.concatenate(pieces), hp)
    assert np.array_equal(hp, h) and np.array_equal(rp, r) and np.array_equal(fp, f)
    with pytest.raises(ValueError, match=r"parts must have shape \(4, 3, 4\)"):
        _core.ls_refine_partials(a, x, r, True, b, f, np.empty((2, 3, d)))
    with pytest.raises(ValueError, match="parts"):
        _core.ls_refine_merge(np.empty((2, 2, d)), hp)


def test_precondition_refinement_is_bit_identical_to_numkern_lstsq_on_an_ill_conditioned_problem():
    A, b, x_exact = _ill_conditioned_problem()
    lapack = np.linalg.lstsq(A, b, rcond=None)[0]
    assert np.linalg.norm(lapack - x_exact) / np.linalg.norm(x_exact) > 1e-6  # refinement is needed
    ref = numkern.lstsq(A, b, method="precondition", sketch="gaussian", rng=5)
    assert np.linalg.norm(ref.x - x_exact) / np.linalg.norm(x_exact) <= 1e-10
    for rows in (A.shape[0], 4096, 1000, 5000):
        got = nkd.lstsq(
            da.from_array(A, chunks=(rows, 8)),
            da.from_array(b, chunks=rows),
            method="precondition",
            rng=5,
            split_every=2,
        )
        assert np.array_equal(got.x, ref.x)
        assert got.iterations == ref.iterations and got.residual_norm == ref.residual_norm
        assert got.linf_error_estimate == ref.linf_error_estimate
    B = np.column_stack([b, 2 * b])  # several right-hand sides: one refinement per column
    ref2 = numkern.lstsq(A, B, method="precondition", sketch="gaussian", rng=5)
    got2 = nkd.lstsq(
        da.from_array(A, chunks=(5000, 8)), da.from_array(B, chunks=(5000, 1)), method="precondition", rng=5
    )
    assert np.array_equal(got2.x, ref2.x) and np.array_equal(got2.linf_error_estimate, ref2.linf_error_estimate)


def test_precondition_falls_back_to_a_distributed_qr_when_the_sketch_loses_rank():
    # As numkern.lstsq: a 2-row SparseSign sketch of a full-rank 2 x 2 A can have rank 1, and the
    # preconditioned x then misses part of the solution (before the check: silently wrong).
    fallbacks = 0
    for seed in range(40):
        g = np.random.default_rng(seed)
        A, B = g.standard_normal((2, 2)), g.standard_normal((2, 2))
        for b in (B[:, 0], B):
            ref = numkern.lstsq(A, b, method="precondition", sketch="sparse_sign", rng=seed)
            got = nkd.lstsq(
                da.from_array(A, chunks=(1, 2)),
                da.from_array(b, chunks=1),
                method="precondition",
                sketch="sparse_sign",
                rng=seed,
            )
            exact = np.linalg.solve(A, b)
            np.testing.assert_allclose(got.x, exact, rtol=1e-8, atol=1e-8 * np.abs(exact).max())
            assert got.method == ref.method and got.x.shape == ref.x.shape
            if got.method == "direct":
                fallbacks += 1
                assert got.rank == 2 and np.all(np.asarray(got.residual_norm) <= 1e-12 * np.abs(b).max())
    assert fallbacks > 0
    # fewer rows than columns, in several row blocks (dask's TSQR alone needs n >= d)
    g = np.random.default_rng(0)
    A, b = g.standard_normal((3, 4)), g.standard_normal(3)
    for seed in range(3):
        got = nkd.lstsq(
            da.from_array(A, chunks=(1, 4)),
            da.from_array(b, chunks=1),
            method="precondition",
            sketch="countsketch",
            rng=seed,
        )
        np.testing.assert_allclose(A @ got.x, b, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.x, np.linalg.lstsq(A, b, rcond=None)[0], rtol=1e-8, atol=1e-12)


def test_gaussian_sketch_with_row_offset_is_the_block_of_the_whole_sketch(rng):
    a = rng.standard_normal((3 * 4096 + 5, 3))
    whole = np.empty((16, 3))
    _core.gaussian_apply(a, 99, 1.0, whole)
    tail = np.empty((16, 3))
    _core.gaussian_apply(np.ascontiguousarray(a[8192:]), 99, 1.0, tail, 8192)
    head = np.empty((16, 3))
    _core.gaussian_apply(np.ascontiguousarray(a[:8192]), 99, 1.0, head)
    assert np.array_equal(whole, head + tail)  # the dyadic tree: (t0 + t1) + t2...
    np.testing.assert_allclose(
        whole, _core.gaussian_rows(0, 16, 0, a.shape[0], 99).astype(np.float64) @ a, rtol=1e-5, atol=1e-4
    )


def test_gaussian_sketch_of_a_pair_with_row_offset_is_that_of_the_stacked_block(rng):
    a, b = rng.standard_normal((4096 + 7, 3)), rng.standard_normal((4096 + 7, 2))
    stacked = np.empty((16, 5))
    _core.gaussian_apply(np.hstack([a, b]), 99, 1.0, stacked, 8192)
    pair = np.empty((16, 5))
    _core.gaussian_apply_pair(a, b, 99, 1.0, pair, 8192)
    assert np.array_equal(pair, stacked)
    at_zero = np.empty((16, 5))
    _core.gaussian_apply_pair(a, b, 99, 1.0, at_zero)
    assert not np.array_equal(at_zero, pair)  # the offset selects other columns of G


@pytest.mark.parametrize("sketch", ["sparse_sign", "countsketch"])
def test_row_keyed_sparse_sketches_are_chunking_invariant_and_accurate(rng, sketch):
    A, b = _ls_problem(rng, n=20000, d=6)
    x_star = np.linalg.lstsq(A, b, rcond=None)[0]
    best = np.linalg.norm(A @ x_star - b)
    for method in ("sketch", "precondition"):
        res = [
            nkd.lstsq(
                da.from_array(A, chunks=(rows, 6)),
                da.from_array(b, chunks=rows),
                sketch=sketch,
                method=method,
                rng=4,
                split_every=3,
            )
            for rows in (20000, 4096, 3001)
        ]
        for r in res[1:]:
            assert np.array_equal(r.x, res[0].x) and r.residual_norm == res[0].residual_norm
        assert res[0].residual_norm <= (1.3 if method == "sketch" else 1 + 1e-12) * best
    np.testing.assert_allclose(res[0].x, x_star, rtol=1e-9, atol=1e-12)


@pytest.mark.isa_independent
def test_sparse_sign_columns_are_keyed_by_global_row_distinct_and_uniform():
    from numkern.dask._lstsq import sparse_sign_rows

    idx, neg = sparse_sign_rows(77, 0, 40000, 32, 8)
    tail_idx, tail_neg = sparse_sign_rows(77, 30000, 10000, 32, 8)
    assert np.array_equal(tail_idx, idx[30000:]) and np.array_equal(tail_neg, neg[30000:])
    srt = np.sort(idx, axis=1)
    assert not (srt[:, 1:] == srt[:, :-1]).any() and idx.min() >= 0 and idx.max() < 32
    counts = np.bincount(idx.ravel(), minlength=32)
    expected = idx.size / 32
    assert ((counts - expected) ** 2 / expected).sum() < 70  # chi-square, 31 dof: p ~ 1e-4
    assert abs(neg.mean() - 0.5) < 0.01


@pytest.mark.isa_independent
def test_lstsq_rejects_bad_input(rng):
    A = da.ones((100, 3), chunks=50)
    with pytest.raises(NotImplementedError):
        nkd.lstsq(A, da.ones(100, chunks=50), sketch="srht")  # needs a global permutation: docs/design/dask.md
    with pytest.raises(ValueError):
        nkd.lstsq(A, da.ones(99, chunks=50))
    with pytest.raises(ValueError):
        nkd.lstsq(A, da.ones(100, chunks=50), m=2)
    with pytest.raises(ValueError, match="not finite"):
        nkd.lstsq(A, da.from_array(np.full(100, np.nan), chunks=50), rng=1)


# ---------------------------------------------------------------------------------------------- dp


def _begin(structure, d):
    """The plan a structure ships to the row blocks (numkern.dask.fit's first step)."""
    return structure._begin(structure._params(), d) if isinstance(structure, KernelDensity) else structure._begin(d)


def _structures(seed):
    return [
        DistanceSum("l1", 1.0, 1.0, resolution=64, rng=seed),
        DistanceSum("l2", 1.0, 1.0, resolution=64, rng=seed),
        DistanceSum("sqeuclidean", 1.0, 1.0, rng=seed),
        KernelDensity("laplacian", 0.7, 1.0, n_components=128, rng=seed),
    ]


@pytest.mark.isa_independent
def test_dp_fit_equals_the_single_machine_fit_bit_for_bit(rng):
    X = rng.uniform(-1.2, 1.2, (3000, 3))
    Y = rng.uniform(-1, 1, (9, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrivateWarning)
        refs = [_answers(s.fit(X), Y) for s in _structures(5)]
        for rows in (3000, 1000, 457):
            got = [_answers(nkd.fit(s, da.from_array(X, chunks=(rows, 2)), split_every=2), Y) for s in _structures(5)]
            for g, r in zip(got, refs):
                assert len(g) == len(r) and all(np.array_equal(a, b) for a, b in zip(g, r))


def _answers(s, Y):
    """Everything a fitted structure answers: the query, its noise std, and the log density (KDE)."""
    out = [s.query(Y), s.query_std(Y)]
    if isinstance(s, KernelDensity):
        out.append(s.score_samples(Y))
    return out


def _classifier_data(rng, n=2400):
    y = rng.integers(0, 3, n)
    X = rng.normal(0, 0.6, (n, 4)) + np.eye(4)[y] * 1.5
    return X, y


@pytest.mark.isa_independent
@pytest.mark.parametrize(
    "kwargs", [{}, {"n_components": 64, "kernel": "laplacian"}, {"reduce_dim": 2}, {"classes": np.array([2, 0, 1, 7])}]
)
def test_dp_classifier_fit_equals_the_single_machine_fit_bit_for_bit(rng, kwargs):
    X, y = _classifier_data(rng)
    Y = rng.normal(0, 1, (20, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrivateWarning)
        ref = SimilarityClassifier(epsilon=2.0, rng=9, **kwargs).fit(X, y)
        for rows in (2400, 700, 333):
            got = nkd.fit(
                SimilarityClassifier(epsilon=2.0, rng=9, **kwargs),
                da.from_array(X, chunks=(rows, 2)),
                da.from_array(y, chunks=500),
                split_every=2,
            )
            assert np.array_equal(got.sketches_, ref.sketches_)
            assert np.array_equal(got.class_sizes_, ref.class_sizes_) and np.array_equal(got.classes_, ref.classes_)
            assert got.n_components_ == ref.n_components_
            assert np.array_equal(got.decision_function(Y), ref.decision_function(Y))
    # A working classifier, not an all-noise one: at epsilon 2 the accuracy on these 2400 points
    # depends on the draw (median about 0.45 over seeds, chance 1/3 with the empty class), so the
    # same fit with negligible noise is checked instead (0.92-0.94 over 20 seeds).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrivateWarning)
        assert SimilarityClassifier(epsilon=1e6, rng=9, **kwargs).fit(X, y).score(X, y) > 0.85


@pytest.mark.isa_independent
def test_dp_classifier_partial_sums_are_the_exact_per_class_sums(rng):
    from numkern.dask._dp import _add

    X, y = _classifier_data(rng, 1000)
    clf = SimilarityClassifier(n_components=64, rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrivateWarning)
        state = clf._begin(clf._params(), 4, np.array([0, 1, 2]))
    plan = clf._plan(state, np.array([300, 300, 400]))
    whole = plan.partial(X, y)["features"]
    merged = _add(*[plan.partial(X[a : a + 137], y[a : a + 137]) for a in range(0, 1000, 137)])["features"]
    assert whole.dtype == np.int64 and whole.shape == (3, 64) and np.array_equal(whole, merged)
    assert not np.array_equal(whole[0], whole[1])


@pytest.mark.isa_independent
def test_dp_merged_partial_sums_are_the_exact_single_machine_sums(rng):
    X = rng.uniform(-1, 1, (2000, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrivateWarning)
        for s in _structures(1):
            plan = _begin(s, 3)
            whole = plan.partial(X)
            from numkern.dask._dp import _add

            merged = _add(*[plan.partial(X[a : a + 333]) for a in range(0, 2000, 333)])
            assert whole.keys() == merged.keys()
            for key in whole:
                assert whole[key].dtype == np.int64 and np.array_equal(whole[key], merged[key])


@pytest.mark.isa_independent
def test_dp_noise_scale_is_that_of_a_single_machine_fit(rng):
    X = rng.uniform(-1, 1, (200, 2))
    y = np.array([0.1, -0.2])
    Xd = da.from_array(X, chunks=(60, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrivateWarning)
        ref = KernelDensity("gaussian", 0.5, 1.0, n_components=32, feature_seed=3, rng=0).fit(X)
        draws = np.array(
            [
                nkd.fit(KernelDensity("gaussian", 0.5, 1.0, n_components=32, feature_seed=3, rng=seed), Xd).query(y)
                for seed in range(300)
            ]
        )
        sq = DistanceSum("sqeuclidean", 1.0, 1.0, rng=0)
        sq_ref = DistanceSum("sqeuclidean", 1.0, 1.0, rng=0).fit(X)
        nkd.fit(sq, Xd, split_every=2)
    assert abs(draws.std() / ref.query_std(y) - 1) < 0.15  # the analytic std of one single-machine release
    for name in ("_count", "_sum", "_sumsq"):
        a, b = getattr(sq, name), getattr(sq_ref, name)
        assert (a.scale, a.variance, a.epsilon, a.grid_exponent) == (b.scale, b.variance, b.epsilon, b.grid_exponent)


@pytest.mark.isa_independent
def test_dp_fit_rejects_bad_input():
    with pytest.raises(TypeError):
        nkd.fit(object(), da.ones((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        nkd.fit(DistanceSum("l1", 1.0, 1.0), da.from_array(np.array([[0.0, np.nan]])))
    with pytest.raises(ValueError):
        nkd.fit(DistanceSum("l1", 1.0, 1.0), da.ones(4))
    with pytest.raises(TypeError, match="pass y"):
        nkd.fit(SimilarityClassifier(rng=0), da.ones((4, 2)))
    with pytest.raises(TypeError, match="y must be None"):
        nkd.fit(DistanceSum("l1", 1.0, 1.0), da.ones((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="one label per row"):
        nkd.fit(SimilarityClassifier(rng=0), da.ones((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="at least one class"):
        nkd.fit(SimilarityClassifier(classes=[], rng=0), da.ones((4, 2)), np.zeros(4))
    from numkern.dp import Accountant

    acc = Accountant(10.0)
    for bad in ({"split_every": 1}, {"split_every": 2.5}):
        with pytest.raises(ValueError, match="split_every"):
            nkd.fit(SimilarityClassifier(rng=0, accountant=acc), da.ones((4, 2)), np.zeros(4), **bad)
        with pytest.raises(ValueError, match="split_every"):
            nkd.fit(KernelDensity(rng=0, accountant=acc), da.ones((4, 2)), **bad)
    with pytest.raises(ValueError, match="at least one feature"):
        nkd.fit(SimilarityClassifier(rng=0, accountant=acc), da.ones((4, 0)), np.zeros(4))
    assert acc.spent == []  # refused before the charge, as structure.fit does


# ------------------------------------------------------------------------------------------ matmul


def _quant_cases(rng):
    a = rng.standard_normal((130, 70)).astype(np.float32)
    b = rng.standard_normal((70, 20)).astype(np.float32)
    a3 = rng.standard_normal((2, 30, 70)).astype(np.float32)
    return [
        (a, b),
        (quant.shiftquant(a, 4, axis=0), quant.shiftquant(b, 8, axis=1)),
        (quant.shiftquant(a, 8, axis=-1, n_groups=24), b),  # several pre-shift chunks
        (quant.shiftquant(a, 4, axis=-1, granularity="block", block_size=32), b),
        (a3, b),
    ]


def test_matmul_is_bit_identical_for_any_m_and_k_chunking(rng):
    for a, b in _quant_cases(rng):
        for out_dtype in (np.float32, np.float64):
            ref = quant.matmul(a, b, out_dtype=out_dtype)
            for chunks in ((4096, None), (17, 16), (64, 7)):
                got = nkd.matmul(a, b, out_dtype=out_dtype, chunks=chunks, split_every=2).compute(**THREADS)
                assert got.dtype == ref.dtype and got.shape == ref.shape
                assert np.array_equal(got, ref)


@pytest.mark.isa_independent
def test_matmul_rejects_bad_chunks(rng):
    with pytest.raises(ValueError):
        nkd.matmul(np.ones((4, 4), np.float32), np.ones((4, 4), np.float32), chunks=(0, None))


def _misaligned(a):
    """A copy of `a` starting one byte past an aligned address, as arrays that arrive at a worker
    inside a message frame can."""
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)[1:]
    out = buf.view(a.dtype).reshape(a.shape)
    out[...] = a
    assert not out.flags.aligned or a.dtype.alignment == 1
    return out


def test_tasks_accept_misaligned_blocks(rng):
    from numkern.dask import _dp, _lstsq, _softmax

    x = rng.standard_normal((3, 100)).astype(np.float32)
    p = _softmax._partials(x, 1)
    assert np.array_equal(_softmax._partials(_misaligned(x), 1), p)
    assert np.array_equal(
        _softmax._scale(_misaligned(x), _misaligned(p), 1, False, np.float32),
        _softmax._scale(x, p, 1, False, np.float32),
    )
    a, b, u = rng.standard_normal((50, 3)), rng.standard_normal(50), rng.standard_normal((3, 1))
    got = _lstsq._residual_block(_misaligned(a), _misaligned(b), _misaligned(u), True, np.float64)
    ref = _lstsq._residual_block(a, b, u, True, np.float64)
    assert got[0][0][0] == ref[0][0][0] and np.array_equal(got[0][0][1], ref[0][0][1])
    x3 = rng.standard_normal(3)
    ref = _lstsq._refine_block(a, b, x3, None)
    got = _lstsq._refine_block(_misaligned(a), _misaligned(b), _misaligned(x3), None)
    assert all(np.array_equal(g, r) for g, r in zip(got, ref))
    r_later = ref[0] + 1e-3 * rng.standard_normal(50)  # a later step's r: read, not recomputed
    want = _lstsq._refine_block(a, b, x3, r_later.copy())
    r_in = _misaligned(r_later)
    r_in.flags.writeable = False  # as arrays that arrive over the network can be
    got = _lstsq._refine_block(_misaligned(a), _misaligned(b), _misaligned(x3), r_in)
    assert len(got) == 2 and all(np.array_equal(g, w) for g, w in zip(got, want))
    assert not np.array_equal(got[0], ref[1])  # f follows the given r
    ref_r = _lstsq._update_block(a, x3, ref[1], ref[0])
    assert np.array_equal(
        _lstsq._update_block(_misaligned(a), _misaligned(x3), _misaligned(ref[1]), _misaligned(ref[0])), ref_r
    )
    X = rng.uniform(-1, 1, (40, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrivateWarning)
        for st in _structures(2):
            plan = _begin(st, 3)
            skewed = _dp.aligned_plan(plan)
            for k, v in vars(skewed).items():
                if isinstance(v, np.ndarray) and v.dtype != np.int64:
                    setattr(skewed, k, _misaligned(v))
            got, ref = _dp._block_sums(skewed, _misaligned(X)), plan.partial(X)
            assert all(np.array_equal(got[k], ref[k]) for k in ref)
        clf = SimilarityClassifier(n_components=64, rng=2)
        plan = clf._plan(clf._begin(clf._params(), 3, np.array([0, 1])), np.array([20, 20]))
        skewed = _dp.aligned_plan(plan)
        skewed.Wt, skewed.bp = _misaligned(plan.Wt), _misaligned(plan.bp)
        labels = np.arange(40) % 2
        got = _dp._block_class_sums(skewed, _misaligned(X), _misaligned(labels))
        assert np.array_equal(got["features"], plan.partial(X, labels)["features"])


# -------------------------------------------------------------------------------- threads, imports


def test_tasks_run_one_kernel_thread_and_leave_the_caller_alone():
    before = numkern.get_num_threads()
    assert task(numkern.get_num_threads)() == 1
    assert numkern.get_num_threads() == before
    counts = (
        da.from_array(np.zeros(4), chunks=1)
        .map_blocks(task(lambda blk: np.full(blk.shape, numkern.get_num_threads())), dtype=float)
        .compute(**THREADS)
    )
    assert np.all(counts == 1)


@pytest.mark.isa_independent
def test_import_numkern_does_not_import_dask():
    code = "import sys, numkern; assert 'dask' not in sys.modules and 'distributed' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------ a real LocalCluster


@pytest.mark.isa_independent
def test_every_function_on_a_two_process_local_cluster(client, rng):
    assert len(client.scheduler_info()["workers"]) == 2
    x = _softmax_input(rng, np.float32)
    got = nkd.softmax(da.from_array(x, chunks=(4, 500))).compute()
    _close(got, numkern.softmax(x), np.float32)
    got = nkd.log_softmax(da.from_array(x, chunks=(7, 1500))).compute()
    _close(got, numkern.log_softmax(x), np.float32)

    A, b = _ls_problem(rng, n=12000, d=5)
    for method in ("sketch", "precondition"):
        ref = numkern.lstsq(A, b, method=method, sketch="gaussian", rng=3)
        for rows in (12000, 2500):
            r = nkd.lstsq(da.from_array(A, chunks=(rows, 5)), da.from_array(b, chunks=rows), method=method, rng=3)
            assert np.array_equal(r.x, ref.x) and r.residual_norm == ref.residual_norm
    A2, b2, _ = _ill_conditioned_problem()  # the refinement's state stays on the workers
    ref = numkern.lstsq(A2, b2, method="precondition", sketch="gaussian", rng=5)
    r = nkd.lstsq(da.from_array(A2, chunks=(5000, 8)), da.from_array(b2, chunks=5000), method="precondition", rng=5)
    assert np.array_equal(r.x, ref.x) and r.iterations == ref.iterations
    sparse = [
        nkd.lstsq(da.from_array(A, chunks=(rows, 5)), da.from_array(b, chunks=rows), sketch="sparse_sign", rng=3).x
        for rows in (12000, 2500)
    ]
    assert np.array_equal(sparse[0], sparse[1])

    X = rng.uniform(-1, 1, (1500, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrivateWarning)
        for s_ref, s in zip(_structures(8), _structures(8)):
            ref = s_ref.fit(X)
            nkd.fit(s, da.from_array(X, chunks=(400, 3)))
            if isinstance(s, KernelDensity):
                assert np.array_equal(s.sketch_, ref.sketch_) and s.noise_variance_ == ref.noise_variance_
            else:
                assert np.array_equal(s.query(X[:5]), ref.query(X[:5]))

        Xc, yc = _classifier_data(rng, 900)
        ref = SimilarityClassifier(rng=4).fit(Xc, yc)
        got = nkd.fit(SimilarityClassifier(rng=4), da.from_array(Xc, chunks=(250, 4)), da.from_array(yc, chunks=300))
        assert np.array_equal(got.sketches_, ref.sketches_) and np.array_equal(got.class_sizes_, ref.class_sizes_)

    a, b = _quant_cases(rng)[1]
    assert np.array_equal(nkd.matmul(a, b, chunks=(40, 32)).compute(), quant.matmul(a, b))
    # one kernel thread per worker thread inside tasks
    assert set(client.run(numkern.get_num_threads).values()) == {1}


def test_lstsq_reports_the_same_stop_reason_as_numkern_lstsq(rng):
    A, b = _ls_problem(rng, dtype=np.float64, k=None)
    ref = numkern.lstsq(A, b, method="precondition", sketch="gaussian", rng=3)
    got = nkd.lstsq(da.from_array(A, chunks=(5000, 3)), da.from_array(b, chunks=5000), method="precondition", rng=3)
    assert got.reason == ref.reason and ref.reason in ("converged", "refined")
    assert nkd.lstsq(da.from_array(A, chunks=(5000, 3)), da.from_array(b, chunks=5000), rng=3).reason == "solved"
