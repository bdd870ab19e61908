"""The exact discrete Laplace sampler, the grid release, the rng= contract and the accountant."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats

import numkern.dp as dp
from numkern.dp import _noise

pytestmark = pytest.mark.isa_independent


def _chi_square_pvalue(samples, t):
    """Pearson chi-square of the samples against the exact pmf, tail bins pooled (expected >= 20)."""
    n = samples.size
    k = 0
    while n * _noise.discrete_laplace_pmf(k + 1, t) * 2 >= 20:
        k += 1
    vals = np.arange(-k, k + 1)
    expected = n * _noise.discrete_laplace_pmf(vals, t)
    observed = np.array([np.count_nonzero(samples == v) for v in vals], dtype=np.float64)
    tail_mass = n - expected.sum()
    observed_tail = n - observed.sum()
    expected = np.append(expected, tail_mass)
    observed = np.append(observed, observed_tail)
    return stats.chisquare(observed, expected).pvalue


@pytest.mark.parametrize("t", [1, 3, 40])
def test_discrete_laplace_matches_its_pmf_chi_square_1e6_draws(t):
    samples = _noise.discrete_laplace(_noise._OsBits(), 10**6, t)
    assert _chi_square_pvalue(samples, t) > 1e-4
    var = _noise.discrete_laplace_variance(t)
    assert abs(samples.var() - var) < 6 * var * math.sqrt(8.0 / 10**6) + 0.01 * var


def test_chi_square_test_rejects_a_sampler_of_the_wrong_scale():
    # The same test against the pmf of a 10% larger scale must fail: it has power.
    samples = _noise.discrete_laplace(_noise._OsBits(), 10**6, 33)
    assert _chi_square_pvalue(samples, 30) < 1e-6


def test_discrete_laplace_is_reproducible_from_a_seeded_source_and_independent_of_threads():
    import numkern

    def draw(seed, threads):
        with numkern.thread_limit(threads):
            return _noise.discrete_laplace(_noise.bit_source(np.random.default_rng(seed), stacklevel=1), 50000, 7)

    with pytest.warns(dp.NotPrivateWarning):
        a, b, c = draw(5, 1), draw(5, 2), draw(6, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_released_values_lie_on_the_power_of_two_grid():
    sums = np.array([123456789, -5, 0, 2**40], dtype=np.int64)
    for frac_bits, sens, eps in [(32, 2**33, 0.5), (0, 7, 3.0), (10, 1, 1e-3)]:
        rel = _noise.release(sums, frac_bits, sens, eps, _noise._OsBits())
        grid = rel.grid
        assert grid == 2.0**rel.grid_exponent
        assert np.all(rel.values / grid == np.round(rel.values / grid))
        assert rel.epsilon <= eps


def test_release_spends_at_most_the_requested_epsilon_and_noise_matches_sensitivity():
    rel = _noise.release(np.zeros(3, np.int64), 0, 10, 0.25, _noise._OsBits())
    assert rel.epsilon <= 0.25 and rel.epsilon > 0.25 * (1 - 1e-3)
    # scale in value units: grid * t ~ sensitivity / epsilon
    assert rel.grid * rel.scale == pytest.approx(10 / 0.25, rel=1e-3)


def test_rng_makes_noise_reproducible_and_warns_not_private():
    X = np.random.default_rng(0).random((100, 2))
    with pytest.warns(dp.NotPrivateWarning):
        a = dp.DistanceSum("sqeuclidean", 1.0, (0, 1), rng=7).fit(X).query(X[:3])
    with pytest.warns(dp.NotPrivateWarning):
        b = dp.DistanceSum("sqeuclidean", 1.0, (0, 1), rng=7).fit(X).query(X[:3])
    assert np.array_equal(a, b)


def test_default_noise_is_from_the_os_and_not_reproducible():
    X = np.random.default_rng(0).random((100, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", dp.NotPrivateWarning)
        a = dp.DistanceSum("sqeuclidean", 1.0, (0, 1)).fit(X).query(X[:3])
        b = dp.DistanceSum("sqeuclidean", 1.0, (0, 1)).fit(X).query(X[:3])
    assert not np.array_equal(a, b)


def test_accountant_charges_fits_and_refuses_to_exceed_the_budget():
    X = np.random.default_rng(0).random((50, 2))
    acc = dp.Accountant(1.0)
    dp.DistanceSum("l1", 0.6, (0, 1), accountant=acc).fit(X)
    assert acc.spent_epsilon == pytest.approx(0.6)
    s = dp.DistanceSum("l1", 0.6, (0, 1), accountant=acc)
    with pytest.raises(dp.BudgetExceededError):
        s.fit(X)
    assert not hasattr(s, "epsilon_")  # nothing released
    assert acc.remaining_epsilon == pytest.approx(0.4)
    dp.DistanceSum("l1", 0.4, (0, 1), accountant=acc).fit(X)
    assert acc.remaining_epsilon == pytest.approx(0.0)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_accountant_and_structures_reject_non_positive_epsilon(bad):
    with pytest.raises(ValueError):
        dp.Accountant(bad)
    with pytest.raises(ValueError, match="epsilon"):
        dp.DistanceSum("l1", bad, (0, 1)).fit(np.zeros((3, 1)))


def test_small_releases_match_the_pmf_too():
    # Every release keys its own stream: 5000 releases of 32 values, each from a fresh key.
    src = _noise._OsBits()
    samples = np.concatenate([_noise.discrete_laplace(src, 32, 5) for _ in range(5000)])
    assert _chi_square_pvalue(samples, 5) > 1e-4


@pytest.mark.parametrize("frac_bits, sensitivity, shape", [(0, 1, (7, 1)), (32, 64 * 2**32, (5, 64)), (8, 3, (3, 40))])
def test_release_rows_releases_each_row_as_release_does(frac_bits, sensitivity, shape):
    rng = np.random.default_rng(3)
    sums = rng.integers(-(2**40), 2**40, shape)
    rows = _noise.release_rows(sums, frac_bits, sensitivity, 0.7, _noise.bit_source(None))
    one = _noise.release(sums[0], frac_bits, sensitivity, 0.7, _noise.bit_source(None))
    assert rows.values.shape == shape
    assert (rows.grid_exponent, rows.scale, rows.epsilon, rows.variance) == (
        one.grid_exponent,
        one.scale,
        one.epsilon,
        one.variance,
    )
    on_grid = np.ldexp(rows.values, -rows.grid_exponent)
    np.testing.assert_array_equal(on_grid, np.round(on_grid))
    # The noise of every row, in grid units, is of the released scale (a loose check of the spread).
    exact = np.ldexp(sums.astype(np.float64), -frac_bits)
    noise = np.ldexp(rows.values - exact, -rows.grid_exponent)
    assert np.abs(noise).max() < 60 * rows.scale
    with pytest.raises(ValueError, match="2-D"):
        _noise.release_rows(sums[0], frac_bits, sensitivity, 0.7, _noise.bit_source(None))
