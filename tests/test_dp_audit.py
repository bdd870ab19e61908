"""Black-box privacy audit inside the suite: neighbouring datasets (one extra record at a corner of
the domain), many fits per side with noise from the OS CSPRNG, threshold events and Clopper-Pearson
bounds. Correct structures must not be caught spending more than their epsilon; deliberately
broken variants (noise halved, one noise draw shared across coordinates, a count released with the
sensitivity of the replace-one relation) must be caught. An audit that cannot fail proves nothing.
The Gaussian variants are audited as (epsilon, delta) claims: the structures (3000 fits per side) and
add_noise (250000 independent coordinates per side), with broken variants that halve the noise or
ignore delta (sigma = sensitivity / epsilon)."""

import math

import numpy as np
import pytest

import numkern.dp as dp
from numkern.dp import _noise
from numkern.dp._audit import epsilon_lower_bound

pytestmark = pytest.mark.isa_independent

EPS = 2.0
RUNS = 3000  # per side; half choose the event, half bound it
ALPHA = 1e-3


def _stats(make, X, queries, runs=RUNS):
    out = np.empty((runs, len(queries) + 1))
    for r in range(runs):
        s = make().fit(X)
        out[r, :-1] = s.query(queries)
        out[r, -1] = s.n_records_
    return out


def _with_differences(S, pairs):
    return np.column_stack([S] + [S[:, a] - S[:, b] for a, b in pairs])


def _audit(make, X0, X1, queries, pairs=(), delta=0.0):
    s0 = _with_differences(_stats(make, X0, queries), pairs)
    s1 = _with_differences(_stats(make, X1, queries), pairs)
    return epsilon_lower_bound(s0, s1, alpha=ALPHA, delta=delta)


# --- configurations: small n, one structure per fit, public queries at the corners -------------


def _l1_single():
    X0 = np.full((3, 1), 0.5)
    X1 = np.vstack([X0, [[1.0]]])
    make = lambda: dp.DistanceSum("l1", EPS, (0.0, 1.0), resolution=1)  # noqa: E731
    return make, X0, X1, np.array([[0.0], [1.0]]), ()


def _l1_two_coords():
    X0 = np.full((2, 2), 0.5)
    X1 = np.vstack([X0, [[1.0, 0.0]]])
    make = lambda: dp.DistanceSum("l1", EPS, (0.0, 1.0), resolution=2)  # noqa: E731
    q = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    return make, X0, X1, q, ((2, 3), (0, 1))


def _sq():
    X0 = np.full((3, 1), 0.5)
    X1 = np.vstack([X0, [[1.0]]])
    make = lambda: dp.DistanceSum("sqeuclidean", EPS, (0.0, 1.0))  # noqa: E731
    return make, X0, X1, np.array([[0.0], [1.0]]), ()


def _kde_seed_with_large_shift():
    for s in range(1000):
        probe = dp.KernelDensity("gaussian", 1.0, EPS, n_components=1, feature_seed=s).fit(np.empty((0, 1)))
        if abs(math.cos(probe.frequencies_[0, 0] * 1.0 + probe.offsets_[0])) > 0.97:
            return s
    raise AssertionError("no seed found")


def _kde_config():
    seed = _kde_seed_with_large_shift()
    make = lambda: dp.KernelDensity("gaussian", 1.0, EPS, n_components=1, feature_seed=seed)  # noqa: E731
    return make, np.empty((0, 1)), np.array([[1.0]]), np.array([[1.0], [0.0]]), ()


def _kde_reduced_config():
    # The released structure with a projection (d = 3 -> k = 1 through the Hadamard JL map): the extra
    # record's single feature, seen through the projection, is near +-1, the largest shift it can make.
    x = np.array([[1.0, -0.5, 0.25]])
    for seed in range(1000):
        probe = dp.KernelDensity("gaussian", 1.0, EPS, n_components=1, reduce_dim=1, feature_seed=seed).fit(
            np.empty((0, 3))
        )
        z = probe.projection_(x) @ probe.frequencies_ + probe.offsets_
        if abs(math.cos(z[0, 0])) > 0.97:
            break
    make = lambda: dp.KernelDensity("gaussian", 1.0, EPS, n_components=1, reduce_dim=1, feature_seed=seed)  # noqa: E731
    return make, np.empty((0, 3)), x, np.vstack([x, np.zeros((1, 3))]), ()


CONFIGS = {
    "l1": _l1_single,
    "l1_2d": _l1_two_coords,
    "sqeuclidean": _sq,
    "kde": _kde_config,
    "kde_reduced": _kde_reduced_config,
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_audit_does_not_catch_a_correct_structure(name):
    make, X0, X1, q, pairs = CONFIGS[name]()
    assert _audit(make, X0, X1, q, pairs) <= EPS


# --- broken variants ---------------------------------------------------------------------------


def _halved_noise(monkeypatch):
    real = _noise.release

    def broken(sums, frac_bits, sensitivity, epsilon, src, noise_multiplier=1.0):
        return real(sums, frac_bits, sensitivity, epsilon, src, noise_multiplier=0.5)

    monkeypatch.setattr(_noise, "release", broken)


def _shared_noise(monkeypatch):
    real = _noise.discrete_laplace
    monkeypatch.setattr(_noise, "discrete_laplace", lambda src, size, t: np.repeat(real(src, 1, t), size))


def _replace_one_count(monkeypatch):
    # Under replace-one neighbours the record count is invariant, so a library reasoning with the
    # wrong relation releases it with sensitivity 0: exactly.
    real = _noise.release

    def broken(sums, frac_bits, sensitivity, epsilon, src, noise_multiplier=1.0):
        rel = real(sums, frac_bits, sensitivity, epsilon, src, noise_multiplier)
        if np.size(sums) == 1 and frac_bits == 0 and sensitivity == 1:
            rel.values = np.asarray(sums, dtype=np.float64).ravel().copy()
        return rel

    monkeypatch.setattr(_noise, "release", broken)


BROKEN = [
    ("l1", _halved_noise),
    ("kde", _halved_noise),
    ("kde_reduced", _halved_noise),
    ("l1_2d", _shared_noise),
    ("sqeuclidean", _replace_one_count),
    ("kde", _replace_one_count),
]


@pytest.mark.parametrize("name,breaker", BROKEN, ids=[f"{n}-{b.__name__.strip('_')}" for n, b in BROKEN])
def test_audit_catches_a_broken_variant(monkeypatch, name, breaker):
    breaker(monkeypatch)
    make, X0, X1, q, pairs = CONFIGS[name]()
    assert _audit(make, X0, X1, q, pairs) > EPS


# --- the Gaussian mechanism: (epsilon, delta) claims ---------------------------------------------

DELTA = 1e-5
GAUSS = {"mechanism": "gaussian", "delta": DELTA}


def _l1_gaussian():
    X0 = np.full((3, 1), 0.5)
    X1 = np.vstack([X0, [[1.0]]])
    make = lambda: dp.DistanceSum("l1", EPS, (0.0, 1.0), resolution=1, **GAUSS)  # noqa: E731
    return make, X0, X1, np.array([[0.0], [1.0]]), ()


def _kde_gaussian():
    seed = _kde_seed_with_large_shift()
    make = lambda: dp.KernelDensity("gaussian", 1.0, EPS, n_components=1, feature_seed=seed, **GAUSS)  # noqa: E731
    return make, np.empty((0, 1)), np.array([[1.0]]), np.array([[1.0], [0.0]]), ()


GAUSS_CONFIGS = {"l1_gaussian": _l1_gaussian, "kde_gaussian": _kde_gaussian}


@pytest.mark.parametrize("name", sorted(GAUSS_CONFIGS))
def test_audit_does_not_catch_a_correct_gaussian_structure(name):
    make, X0, X1, q, pairs = GAUSS_CONFIGS[name]()
    assert _audit(make, X0, X1, q, pairs, delta=DELTA) <= EPS


def _delta_ignored(monkeypatch):
    # sigma = sensitivity / epsilon: rho = epsilon^2 / 2, the calibration of a mechanism that forgot
    # the log(1/delta) factor.
    monkeypatch.setattr(_noise, "gaussian_rho", lambda epsilon, delta: epsilon * epsilon / 2.0)


@pytest.mark.parametrize("name", sorted(GAUSS_CONFIGS))
def test_audit_catches_a_gaussian_structure_that_ignores_delta(monkeypatch, name):
    _delta_ignored(monkeypatch)
    make, X0, X1, q, pairs = GAUSS_CONFIGS[name]()
    assert _audit(make, X0, X1, q, pairs, delta=DELTA) > EPS


ADD_RUNS = 500000  # independent coordinates per side (one add_noise call each)


def _audit_add_noise(mechanism):
    delta = DELTA if mechanism == "gaussian" else 0.0
    # One record moves the statistic by the sensitivity (1.0); each coordinate is one run of the
    # mechanism (the calibration for n values keeps every coordinate's noise at the single-value scale,
    # up to the rounding term, which a shift of exactly one sensitivity on the grid does not use).
    s0 = dp.add_noise(np.zeros(ADD_RUNS), sensitivity=1.0, epsilon=EPS, delta=delta, mechanism=mechanism)
    s1 = dp.add_noise(np.ones(ADD_RUNS), sensitivity=1.0, epsilon=EPS, delta=delta, mechanism=mechanism)
    return epsilon_lower_bound(s0, s1, alpha=ALPHA, n_thresholds=1024, delta=delta)


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_audit_does_not_catch_add_noise(mechanism):
    assert _audit_add_noise(mechanism) <= EPS


def _add_noise_halved(monkeypatch):
    from numkern.dp import _add_noise

    real_g, real_l = _add_noise._gaussian_plan, _add_noise._laplace_plan
    monkeypatch.setattr(_add_noise, "_gaussian_plan", lambda *a: real_g(*a, noise_multiplier=0.5))

    def halved_laplace(*a):
        e, t, spent = real_l(*a)
        return e, max(1, t // 2), spent

    monkeypatch.setattr(_add_noise, "_laplace_plan", halved_laplace)


@pytest.mark.parametrize(
    ("mechanism", "breaker"),
    [("laplace", _add_noise_halved), ("gaussian", _add_noise_halved), ("gaussian", _delta_ignored)],
    ids=["laplace-halved", "gaussian-halved", "gaussian-delta_ignored"],
)
def test_audit_catches_a_broken_add_noise(monkeypatch, mechanism, breaker):
    breaker(monkeypatch)
    assert _audit_add_noise(mechanism) > EPS
