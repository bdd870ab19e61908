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
