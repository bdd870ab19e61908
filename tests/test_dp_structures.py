"""Accuracy and contracts of DistanceSum and KernelDensity."""

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import numkern.dp as dp


def _quiet(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.NotPrivateWarning)
        return make()


@pytest.mark.isa_independent
def test_l1_relative_error_at_n_1e5_d_10_eps_1_is_below_1e_3():
    rng = np.random.default_rng(5)
    X = rng.random((100_000, 10))
    Y = rng.random((40, 10))
    exact = cdist(Y, X, "cityblock").sum(axis=1)
    errs = []
    for seed in range(5):  # seeded noise: reproducible (typical medians are 2-5e-4, the tail near 1e-3)
        s = _quiet(lambda seed=seed: dp.DistanceSum("l1", 1.0, (0.0, 1.0), rng=seed).fit(X))
        errs.append(np.median(np.abs(s.query(Y) - exact) / exact))
    assert np.median(errs) <= 1e-3 and max(errs) <= 2e-3


@pytest.mark.isa_independent
@pytest.mark.parametrize("metric,tol", [("sqeuclidean", 5e-3), ("l2", 0.1), ("l1", 6e-3)])
def test_distance_sums_are_accurate_on_gaussian_data(metric, tol):
    rng = np.random.default_rng(6)
    X = np.clip(rng.normal(0.5, 0.15, (30_000, 4)), 0, 1)
    Y = rng.random((30, 4))
    name = {"l1": "cityblock", "l2": "euclidean", "sqeuclidean": "sqeuclidean"}[metric]
    exact = cdist(Y, X, name).sum(axis=1)
    # Seeded (an OS-seeded run failed the l2 case once in a full-suite run): the median over seeds
    # of the per-query median error.
    errs = []
    for seed in range(5):
        est = _quiet(lambda seed=seed: dp.DistanceSum(metric, 1.0, (0.0, 1.0), rng=seed).fit(X)).query(Y)
        errs.append(np.median(np.abs(est - exact) / exact))
    assert np.median(errs) <= tol


@pytest.mark.isa_independent
@pytest.mark.parametrize("metric", ["l1", "sqeuclidean"])
def test_records_are_clipped_to_the_public_bounds_and_queries_may_lie_outside(metric):
    rng = np.random.default_rng(7)
    X = rng.normal(0, 2, (5000, 3))
    lo, hi = np.array([-1.0, -2.0, 0.0]), np.array([1.0, 2.0, 3.0])
    Y = rng.normal(0, 3, (20, 3))  # many outside the box
    name = {"l1": "cityblock", "sqeuclidean": "sqeuclidean"}[metric]
    exact = cdist(Y, np.clip(X, lo, hi), name).sum(axis=1)
    s = _quiet(lambda: dp.DistanceSum(metric, 1e6, (lo, hi), resolution=2**14, rng=1).fit(X))
    # eps = 1e6: noise is negligible; what is left is the uniform-within-cell approximation.
    assert np.allclose(s.query(Y), exact, rtol=2e-3)


@pytest.mark.isa_independent
def test_l2_projection_estimator_is_unbiased_for_exact_counts():
    rng = np.random.default_rng(8)
    X = rng.random((2000, 5))
    Y = rng.random((10, 5))
    exact = cdist(Y, X).sum(axis=1)
    s = _quiet(lambda: dp.DistanceSum("l2", 1e6, (0, 1), n_projections=500, resolution=1024, rng=2).fit(X))
    assert s.projection_.shape == (500, 5)
    assert np.allclose(s.query(Y), exact, rtol=0.05)


@pytest.mark.isa_independent
def test_noisy_record_count_is_close_and_not_exact():
    X = np.random.default_rng(0).random((1000, 2))
    counts = [dp.DistanceSum("sqeuclidean", 1.0, (0, 1)).fit(X).n_records_ for _ in range(20)]
    assert np.all(np.abs(np.array(counts) - 1000) < 100)
    assert len(set(counts)) > 1


def _noiseless(kde, X, Y):
    """The sketch's answer without DP noise, from the public frequencies and offsets."""
    W, b = kde.frequencies_, kde.offsets_
    S = np.cos(X @ W + b).sum(axis=0)
    return (2.0 / W.shape[1]) * np.cos(Y @ W + b) @ S


@pytest.mark.isa_independent  # statistical; the kernels themselves are checked per ISA in test_dp_exact
@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "cauchy"])
def test_query_std_is_honest_rms_over_300_fits(kernel):
    rng = np.random.default_rng(9)
    X = rng.standard_normal((60, 3))
    Y = rng.standard_normal((5, 3))
    errs, stds = [], None
    for _ in range(300):
        kde = dp.KernelDensity(kernel, 1.0, 0.7, n_components=128, feature_seed=3).fit(X)
        errs.append(kde.query(Y) - _noiseless(kde, X, Y))
        stds = kde.query_std(Y)
    rms = np.sqrt(np.mean(np.square(errs), axis=0))
    assert np.all(np.abs(rms / stds - 1) <= 0.15)
    assert abs(np.sqrt(np.mean(np.square(rms / stds))) - 1) <= 0.10  # pooled: the +-10% criterion


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "cauchy"])
def test_kernel_density_estimates_the_exact_kernel_sum(kernel):
    rng = np.random.default_rng(10)
    X = rng.standard_normal((5000, 4)) * 0.5
    Y = rng.standard_normal((20, 4)) * 0.5
    exact = dp.kernel_sum(X, Y, kernel=kernel, bandwidth=1.0)
    kde = dp.KernelDensity(kernel, 1.0, 5.0, n_components=2048).fit(X)
    est = kde.query(Y)
    assert np.median(np.abs(est - exact) / exact) <= 0.1
    assert abs(kde.n_records_ - 5000) < 200
    assert kde.epsilon_ == 5.0


def test_random_features_approximate_the_kernel_without_noise():
    # Frequencies of each kernel's Gaussian scale mixture: E[2 cos(wx+b) cos(wy+b)] = k(x, y).
    from numkern.dp._kde import draw_features

    rng = np.random.default_rng(11)
    x, y = rng.standard_normal(3) * 0.4, rng.standard_normal(3) * 0.4
    r2 = np.sum((x - y) ** 2)
    want = {"gaussian": np.exp(-r2), "laplacian": np.exp(-np.sqrt(r2)), "cauchy": 1 / (1 + r2)}
    for kernel, k in want.items():
        W, b = draw_features(kernel, 1.0, 3, 400_000, rng)
        est = np.mean(2 * np.cos(x @ W + b) * np.cos(y @ W + b))
        assert abs(est - k) < 0.01, kernel


@pytest.mark.isa_independent
@pytest.mark.parametrize(
    "make, X, match",
    [
        (lambda: dp.DistanceSum("l1", 1.0, (0, 1)), [[np.nan, 0.0]], "NaN"),
        (lambda: dp.DistanceSum("l1", 1.0, (0, 1)), [[np.inf, 0.0]], "infinite"),
        (lambda: dp.DistanceSum("l1", 1.0, None), [[0.0, 0.0]], "bounds"),
        (lambda: dp.DistanceSum("l1", 1.0, (1, 0)), [[0.0, 0.0]], "bounds"),
        (lambda: dp.DistanceSum("l1", 0.0, (0, 1)), [[0.0, 0.0]], "epsilon"),
        (lambda: dp.DistanceSum("l1", 1.0, (0, 1)), [0.0, 0.0], "2-D"),
        (lambda: dp.DistanceSum("hamming", 1.0, (0, 1)), [[0.0]], "metric"),
        (lambda: dp.DistanceSum("l1", 1.0, (0, 1), resolution=3), [[0.0]], "resolution"),
        (lambda: dp.KernelDensity("gaussian", 0.0, 1.0), [[0.0]], "bandwidth"),
        (lambda: dp.KernelDensity("gaussian", 1.0, -1.0), [[0.0]], "epsilon"),
        (lambda: dp.KernelDensity("rbf", 1.0, 1.0), [[0.0]], "kernel"),
        (lambda: dp.KernelDensity("gaussian", 1.0, 1.0), [[np.nan]], "NaN"),
        (lambda: dp.KernelDensity("gaussian", 1.0, 1.0, n_components=0), [[0.0]], "n_components"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(make, X, match):
    with pytest.raises(ValueError, match=match):
        make().fit(np.asarray(X, dtype=np.float64))


@pytest.mark.isa_independent
def test_query_shape_errors_and_unfitted_structures_raise():
    s = dp.DistanceSum("l1", 1.0, (0, 1))
    with pytest.raises(ValueError, match="not fitted"):
        s.query([[0.0, 0.0]])
    s.fit(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="shape"):
        s.query(np.zeros((3, 3)))
    assert np.ndim(s.query([0.5, 0.5])) == 0


@pytest.mark.isa_independent
def test_fit_does_not_modify_the_private_data():
    X = np.random.default_rng(0).normal(0, 3, (100, 2))
    X0 = X.copy()
    dp.DistanceSum("sqeuclidean", 1.0, (0, 1)).fit(X)
    dp.DistanceSum("l1", 1.0, (0, 1)).fit(X)
    assert np.array_equal(X, X0)


@pytest.mark.isa_independent
def test_records_without_features_and_misshapen_bounds_raise_clear_value_errors():
    # Found by fuzzing: X of shape (n, 0) failed deep inside the l1 tree with a reshape error, and
    # per-feature bounds of the wrong length with a NumPy broadcasting message.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.NotPrivateWarning)
        for est in (dp.DistanceSum("l1", 1.0, bounds=1.0, rng=1), dp.KernelDensity(n_components=8, rng=1)):
            with pytest.raises(ValueError, match="at least one feature"):
                est.fit(np.zeros((5, 0)))
        with pytest.raises(ValueError, match="one value per feature"):
            dp.DistanceSum("l1", 1.0, bounds=(np.zeros(3), 1.0), rng=1).fit(np.zeros((5, 2)))


@pytest.mark.isa_independent
@pytest.mark.parametrize(
    "kernel, sk_kernel, sk_bandwidth", [("gaussian", "gaussian", 0.5 / np.sqrt(2)), ("laplacian", "exponential", 0.5)]
)
def test_score_samples_matches_scikit_learn_kernel_density_at_large_epsilon(kernel, sk_kernel, sk_bandwidth):
    neighbors = pytest.importorskip("sklearn.neighbors")
    rng = np.random.default_rng(12)
    X = rng.standard_normal((3000, 2))
    Y = rng.standard_normal((200, 2))
    ref = neighbors.KernelDensity(kernel=sk_kernel, bandwidth=sk_bandwidth).fit(X).score_samples(Y)
    kde = dp.KernelDensity(kernel, 0.5, 1e4, n_components=2**14, feature_seed=1).fit(X)
    got = kde.score_samples(Y)
    # what is left is the random-feature error: about 1/sqrt(m) per pair
    assert np.max(np.abs(np.exp(got) - np.exp(ref))) <= 0.02
    assert np.median(np.abs(got - ref)) <= 0.05
    dense = ref > -3.0
    assert dense.sum() > 100 and np.max(np.abs(got - ref)[dense]) <= 0.2
    assert kde.score(Y) == pytest.approx(np.sum(got), rel=1e-12)
    # (a tail point whose estimate the random-feature error makes <= 0 sits at the floor, so the
    # totals are compared where the density is not small)
    assert abs(kde.score(Y[dense]) - np.sum(ref[dense])) <= 0.02 * abs(np.sum(ref[dense]))


@pytest.mark.isa_independent
def test_cauchy_score_samples_is_normalized_in_one_dimension_and_refused_above():
    X = np.random.default_rng(13).standard_normal((4000, 1))
    Y = np.linspace(-2, 2, 9)[:, None]
    kde = dp.KernelDensity("cauchy", 0.5, 1e4, n_components=2**13, feature_seed=0).fit(X)
    exact = np.log(np.mean(1.0 / (1.0 + ((Y - X.T) / 0.5) ** 2), axis=1) / (np.pi * 0.5))
    np.testing.assert_allclose(kde.score_samples(Y), exact, atol=0.1)  # a wrong constant would be >= log 2 off
    kde2 = dp.KernelDensity("cauchy", 0.5, 1.0, n_components=64).fit(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="no finite integral"):
        kde2.score_samples(np.zeros((1, 2)))


@pytest.mark.isa_independent
def test_score_samples_clips_nonpositive_estimates_at_the_documented_floor():
    X = np.random.default_rng(14).standard_normal((50, 3)) * 0.1
    kde = dp.KernelDensity("gaussian", 0.2, 0.05, n_components=256).fit(X)
    Y = np.random.default_rng(15).standard_normal((400, 3)) * 20  # mostly far away: noise
    F = kde.query(Y)
    s = kde.score_samples(Y)
    assert np.all(np.isfinite(s)) and np.any(F <= 0)
    assert np.any(F <= 0) and np.any(F > 0)
    lognz = np.log(max(kde.n_records_, 1.0)) + 1.5 * np.log(np.pi * 0.2**2)
    np.testing.assert_allclose(s[F <= 0], np.log(np.finfo(np.float64).tiny) - lognz, rtol=1e-12)
    np.testing.assert_allclose(s[F > 0], np.log(F[F > 0]) - lognz, rtol=1e-12)
    assert np.isfinite(kde.score(Y))
    assert np.ndim(kde.score_samples(Y[0])) == 0
    with pytest.raises(ValueError, match="not fitted"):
        dp.KernelDensity().score_samples(Y)


@pytest.mark.isa_independent
def test_kernel_density_follows_the_scikit_learn_estimator_api():
    kde = dp.KernelDensity("laplacian", 0.7, 2.0, n_components=64)
    assert kde.get_params()["bandwidth"] == 0.7 and kde.set_params(bandwidth=0.5) is kde
    with pytest.raises(ValueError, match="invalid parameter"):
        kde.set_params(gamma=1.0)
    X = np.random.default_rng(16).standard_normal((200, 2))
    assert kde.fit(X, None) is kde and kde.bandwidth_ == 0.5
    kde.set_params(bandwidth=3.0)  # the fitted structure keeps its own bandwidth
    assert kde.bandwidth_ == 0.5
    base = pytest.importorskip("sklearn.base")
    twin = base.clone(kde)
    assert twin.get_params() == kde.get_params() and not hasattr(twin, "sketch_")
    utils = pytest.importorskip("sklearn.utils")
    assert utils.get_tags(kde).estimator_type == "density_estimator"
    assert not utils.get_tags(kde).target_tags.required
