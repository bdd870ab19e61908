"""The Gaussian mechanism and add_noise: ChaCha20 against RFC 8439, the C++ discrete Laplace and discrete
Gaussian samplers against their exact pmfs (chi-square, 10^6 draws), add_noise's contract (dtype,
shape, strides, grid, errors, reproducibility, accounting), the zCDP accountant's conversions, and
the Gaussian variants of the structures (sensitivities, Release.variance, query_std honesty)."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats

import numkern
import numkern.dp as dp
from numkern import _core
from numkern.dp import _noise
from numkern.dp._accountant import zcdp_epsilon, zcdp_rho

SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)


def _state(key: bytes, counter: int, nonce: bytes) -> np.ndarray:
    """RFC 8439's block state (32-bit counter, 96-bit nonce) in the kernel's layout (words 12..15)."""
    st = np.zeros(16, np.uint32)
    st[:4] = SIGMA
    st[4:12] = np.frombuffer(key, np.uint32)
    st[12] = counter
    st[13:16] = np.frombuffer(nonce, np.uint32)
    return st


def _keystream(st, nblocks):
    out = np.zeros((nblocks, 16), np.uint32)
    _core.dp_chacha20(st, out)
    return out.tobytes()


# --- ChaCha20 ------------------------------------------------------------------------------------


def test_chacha20_block_function_rfc8439_2_3_2():
    st = _state(bytes(range(32)), 1, bytes.fromhex("000000090000004a00000000"))
    expected = bytes.fromhex(
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
    )
    assert _keystream(st, 1) == expected


def test_chacha20_encryption_rfc8439_2_4_2():
    plaintext = (
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
        b"sunscreen would be it."
    )
    st = _state(bytes(range(32)), 1, bytes.fromhex("000000000000004a00000000"))
    stream = _keystream(st, 2)
    cipher = bytes(a ^ b for a, b in zip(plaintext, stream))
    assert cipher.hex() == (
        "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
        "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
        "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
        "5af90bbf74a35be6b40b8eedf2785e42874d"
    )


@pytest.mark.parametrize(
    ("key", "counter", "nonce", "first_bytes"),
    [
        # RFC 8439 Appendix A.1, test vectors #1, #2 and #4 (block function).
        (bytes(32), 0, bytes(12), "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"),
        (bytes(32), 1, bytes(12), "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"),
        (bytes([0, 0xFF] + [0] * 30), 2, bytes(12), "72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca"),
    ],
)
def test_chacha20_appendix_a1_vectors(key, counter, nonce, first_bytes):
    assert _keystream(_state(key, counter, nonce), 1)[:32].hex() == first_bytes


def test_chacha20_blocks_follow_the_64_bit_counter_across_the_word_boundary():
    st = _state(bytes(range(32)), 2**32 - 3, bytes(12))
    many = np.frombuffer(_keystream(st, 37), np.uint32).reshape(37, 16)  # odd count: a partial SIMD group
    for b in (0, 2, 3, 4, 36):
        one = st.copy()
        ctr = 2**32 - 3 + b
        one[12], one[13] = ctr & 0xFFFFFFFF, ctr >> 32
        np.testing.assert_array_equal(many[b], np.frombuffer(_keystream(one, 1), np.uint32))


# --- the C++ samplers against their exact pmfs ---------------------------------------------------


def _samples(mechanism, param, n=10**6, key=7):
    out = np.empty(n, np.int64)
    k = np.random.default_rng(key).integers(0, 2**32, 8, dtype=np.uint32)
    _core.dp_noise(k, mechanism, param, out)
    return out


def _chi2_pvalue(samples, pmf):
    """Pearson chi-square against an integer pmf: every value with expected count >= 20 its own bin,
    the two tails pooled."""
    n = samples.size
    k = 0
    while n * pmf(np.array([k + 1]))[0] >= 10:
        k += 1
    vals = np.arange(-k, k + 1)
    expected = n * pmf(vals)
    observed = np.bincount(np.clip(samples, -k - 1, k + 1) + k + 1, minlength=2 * k + 3).astype(np.float64)
    exp_tails = n * (1.0 - pmf(vals).sum()) / 2.0  # both pmfs are symmetric
    expected = np.concatenate([[exp_tails], expected, [exp_tails]])
    return stats.chisquare(observed, expected).pvalue


@pytest.mark.parametrize("t", [1, 3, 40])
def test_cpp_discrete_laplace_matches_its_pmf_chi_square_1e6_draws(t):
    s = _samples(0, t)
    assert _chi2_pvalue(s, lambda y: _noise.discrete_laplace_pmf(y, t)) > 1e-4
    var = _noise.discrete_laplace_variance(t)
    assert abs(s.var() - var) < 6 * var * math.sqrt(8.0 / s.size)


@pytest.mark.parametrize("S", [1, 2, 10, 1500])
def test_cpp_discrete_gaussian_matches_its_pmf_chi_square_1e6_draws(S):
    s = _samples(1, S)
    assert _chi2_pvalue(s, lambda y: _noise.discrete_gaussian_pmf(y, S)) > 1e-4
    var = _noise.discrete_gaussian_variance(S)
    assert abs(s.var() - var) < 6 * var * math.sqrt(2.0 / s.size)
    assert abs(s.mean()) < 6 * math.sqrt(var / s.size)


def test_chi_square_has_power_against_a_wrong_scale_for_both_samplers():
    assert _chi2_pvalue(_samples(0, 33), lambda y: _noise.discrete_laplace_pmf(y, 30)) < 1e-6
    assert _chi2_pvalue(_samples(1, 121), lambda y: _noise.discrete_gaussian_pmf(y, 100)) < 1e-6
    # and against a continuous Gaussian rounded to the nearest integer (not the discrete Gaussian) at S = 1
    z = np.rint(np.random.default_rng(1).normal(0, 1, 10**6)).astype(np.int64)
    assert _chi2_pvalue(z, lambda y: _noise.discrete_gaussian_pmf(y, 1)) < 1e-6


def _binned_pvalue(samples, edges, cdf):
    counts = np.histogram(samples, bins=np.concatenate([[-np.inf], edges, [np.inf]]))[0]
    probs = np.diff(np.concatenate([[0.0], cdf(edges), [1.0]]))
    return stats.chisquare(counts, samples.size * probs).pvalue


def test_large_scales_binned_against_the_exact_laplace_cdf_and_the_normal():
    t = 2**40
    s = _samples(0, t, n=2 * 10**5)
    p = math.exp(-1.0 / t)

    def lap_cdf(x):  # P(Y <= x) at half-integers x = k - 1/2: P(Y >= k) = p^k / (1 + p) for k >= 1
        k = np.ceil(x)
        upper = np.where(k >= 1, np.exp(-k / t) / (1 + p), 1.0 - np.exp((k - 1) / t) / (1 + p))
        return 1.0 - upper

    edges = np.arange(-12, 13) * (t / 4) - 0.5
    assert _binned_pvalue(s, edges, lap_cdf) > 1e-4
    S = 2**54  # sigma = 2^27: the discrete and continuous Gaussians agree far below the test's resolution
    g = _samples(1, S, n=2 * 10**5).astype(np.float64)
    edges = np.arange(-16, 17) * (2**27 / 4) - 0.5
    assert _binned_pvalue(g, edges, lambda x: stats.norm.cdf(x / 2**27)) > 1e-4
    assert abs(g.var() / S - 1) < 6 * math.sqrt(2.0 / g.size)


def test_noise_depends_on_the_key_and_index_only_not_on_the_thread_count():
    n = 5 * _core.dp_noise_chunk + 17
    with _threads(1):
        a = _samples(1, 1000, n=n)
    with _threads(2):
        b = _samples(1, 1000, n=n)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, _samples(1, 1000, n=n, key=8))
    # chunks are independent streams: no two chunks repeat
    chunks = a[: 5 * _core.dp_noise_chunk].reshape(5, -1)
    assert len({c.tobytes() for c in chunks}) == 5


class _threads:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = numkern.get_num_threads()
        numkern.set_num_threads(self.n)

    def __exit__(self, *exc):
        numkern.set_num_threads(self.old)


# --- add_noise -------------------------------------------------------------------------------------


def _quiet(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.NotPrivateWarning)
        return dp.add_noise(**kw)


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.uint8, np.bool_])
def test_add_noise_keeps_shape_dtype_rule_and_input(mechanism, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 5)) * 10).astype(dtype)
    before = x.copy()
    delta = 1e-6 if mechanism == "gaussian" else 0.0
    y = dp.add_noise(x, sensitivity=1.0, epsilon=1.0, delta=delta, mechanism=mechanism)
    np.testing.assert_array_equal(x, before)
    assert y.shape == x.shape
    assert y.dtype == (np.float32 if dtype == np.float32 else np.float64)
    assert y.flags.c_contiguous and y is not x


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_add_noise_takes_any_strides_and_orders(mechanism):
    delta = 1e-6 if mechanism == "gaussian" else 0.0
    base = np.arange(200.0).reshape(10, 20)
    for view in (base[::2, ::3], base.T, base[:, ::-1], np.asfortranarray(base)):
        y = _quiet(x=view, sensitivity=1e-3, epsilon=1.0, delta=delta, mechanism=mechanism, rng=0)
        assert y.shape == view.shape
        assert np.max(np.abs(y - view)) < 0.2  # the noise is tiny: each value stays at its place
    assert dp.add_noise(np.float64(3.0), sensitivity=1.0, epsilon=1.0).shape == ()
    assert dp.add_noise(np.zeros((0, 3)), sensitivity=1.0, epsilon=1.0).shape == (0, 3)


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_add_noise_values_lie_on_a_power_of_two_grid_and_the_noise_has_the_calibrated_scale(mechanism, dtype):
    n = 200000
    x = np.random.default_rng(1).uniform(-5, 5, n).astype(dtype)
    delta = 1e-5 if mechanism == "gaussian" else 0.0
    sens = 0.5
    y = _quiet(x=x, sensitivity=sens, epsilon=0.7, delta=delta, mechanism=mechanism, rng=3)
    d = y.astype(np.float64) - x.astype(np.float64)
    # On the grid: every released value is an integer multiple of the public grid 2^e (the
    # sensitivity at 2^12 n grid units for Laplace, 2^12 sqrt(n) for Gaussian), and not of 2^(e+1).
    if mechanism == "laplace":
        e = math.floor(math.log2(sens / (n * 2**12)))
    else:
        e = math.floor(math.log2(sens / (math.isqrt(n) + 1))) - 12
    k = y.astype(np.float64) / 2.0**e
    assert np.all(k == np.rint(k))
    if dtype == np.float64:  # (float32 keeps 24 bits: values far above 2^24 grid units are rounded)
        assert np.mean(k % 2 == 1) > 0.4  # the grid is not coarser: about half are odd multiples
    if mechanism == "laplace":
        scale = sens / 0.7  # t grid units ~ (sens / 2^e + n) / eps: the rounding term is under 2^-12
        expected_var = 2 * scale**2
        assert d.var() == pytest.approx(expected_var, rel=0.03)
    else:
        sigma = sens / math.sqrt(2 * zcdp_rho(0.7, 1e-5))
        assert d.std() == pytest.approx(sigma, rel=0.01)
        assert stats.kstest(d / sigma, "norm").pvalue > 1e-4


def test_add_noise_grid_is_public_the_same_for_any_data_of_one_size():
    # The noise of data of one size is the same multiple of the grid whatever the values: with one
    # seed, y - round_to_grid(x) is identical for zeros, large values and values off the grid.
    g = 2.0 ** math.floor(math.log2(2 / (100 * 2**12)))  # sensitivity 2, n = 100: 2^12 n grid units
    noises = []
    for x in (np.zeros(100), np.full(100, 1e6), np.linspace(-3, 3, 100)):
        y = _quiet(x=x, sensitivity=2.0, epsilon=1.0, rng=0)
        noises.append((y - np.rint(x / g) * g) / g)
    for n in noises:
        np.testing.assert_array_equal(n, noises[0])
        assert np.all(n == np.rint(n))


def test_add_noise_is_reproducible_with_rng_and_warns():
    x = np.arange(50.0)
    with pytest.warns(dp.NotPrivateWarning):
        a = dp.add_noise(x, sensitivity=1.0, epsilon=1.0, rng=5)
    with pytest.warns(dp.NotPrivateWarning):
        b = dp.add_noise(x, sensitivity=1.0, epsilon=1.0, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = dp.add_noise(x, sensitivity=1.0, epsilon=1.0)
        d = dp.add_noise(x, sensitivity=1.0, epsilon=1.0)
    assert not np.array_equal(c, d)  # the OS CSPRNG keys every call afresh


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_add_noise_rejects_non_finite_values_and_refunds_the_accountant(bad):
    x = np.ones(10000)
    x[7777] = bad
    acc = dp.Accountant(1.0)
    with pytest.raises(ValueError, match="finite"):
        dp.add_noise(x, sensitivity=1.0, epsilon=0.5, accountant=acc)
    assert acc.spent == []
    with pytest.raises(ValueError, match="finite"):
        dp.add_noise(x.astype(np.float32), sensitivity=1.0, epsilon=0.5)


def test_add_noise_rejects_values_too_large_for_the_grid():
    with pytest.raises(ValueError, match="too large"):
        dp.add_noise(np.array([1e30]), sensitivity=1.0, epsilon=1.0)


@pytest.mark.isa_independent
@pytest.mark.parametrize(
    ("kw", "err"),
    [
        ({"sensitivity": 0.0}, ValueError),
        ({"sensitivity": -1.0}, ValueError),
        ({"sensitivity": np.nan}, ValueError),
        ({"sensitivity": True}, ValueError),
        ({"epsilon": 0.0}, ValueError),
        ({"epsilon": np.inf}, ValueError),
        ({"delta": 1e-6}, ValueError),  # laplace is pure DP
        ({"mechanism": "gaussian"}, ValueError),  # delta = 0
        ({"mechanism": "gaussian", "delta": 1.0}, ValueError),
        ({"mechanism": "gaussian", "delta": -0.1}, ValueError),
        ({"mechanism": "exponential"}, ValueError),
        ({"rng": "seed"}, ValueError),
        ({"accountant": 1.0}, ValueError),
        ({"x": np.array([1 + 2j])}, TypeError),
        ({"x": np.array(["a"])}, TypeError),
        ({"x": np.array([1.0], dtype=np.float16)}, TypeError),
    ],
)
def test_add_noise_bad_arguments_raise(kw, err):
    args = {"x": np.ones(3), "sensitivity": 1.0, "epsilon": 1.0, **kw}
    with pytest.raises(err):
        dp.add_noise(**args)


def test_add_noise_charges_the_accountant_before_releasing():
    acc = dp.Accountant(1.0)
    dp.add_noise(np.ones(3), sensitivity=1.0, epsilon=0.6, accountant=acc)
    with pytest.raises(dp.BudgetExceededError):
        dp.add_noise(np.ones(3), sensitivity=1.0, epsilon=0.6, accountant=acc)
    with pytest.raises(dp.BudgetExceededError, match="total_delta"):  # pure budget: no Gaussian
        dp.add_noise(np.ones(3), sensitivity=1.0, epsilon=0.1, delta=1e-6, mechanism="gaussian", accountant=acc)
    assert len(acc.spent) == 1


# --- the accountant's conversions ------------------------------------------------------------------


@pytest.mark.isa_independent
def test_zcdp_conversion_is_tighter_than_the_classical_bound_and_inverts():
    for rho in (1e-4, 0.01, 0.1, 1.0, 10.0):
        for delta in (1e-3, 1e-6, 1e-10):
            eps = zcdp_epsilon(rho, delta)
            assert eps <= rho + 2 * math.sqrt(rho * math.log(1 / delta)) + 1e-12
            assert eps >= rho  # never below the Renyi divergence's mean
            r = zcdp_rho(eps, delta)
            assert r == pytest.approx(rho, rel=1e-6) and zcdp_epsilon(r, delta) <= eps


@pytest.mark.isa_independent
def test_zcdp_conversion_upper_bounds_the_exact_gaussian_privacy_profile():
    # The Gaussian mechanism with sensitivity 1 and sigma is (1/(2 sigma^2))-zCDP; its exact delta at
    # epsilon (Balle & Wang 2018) must not exceed the delta our conversion claims.
    for sigma in (0.7, 2.0, 5.0):
        rho = 1.0 / (2 * sigma**2)
        for delta in (1e-3, 1e-6):
            eps = zcdp_epsilon(rho, delta)
            exact = stats.norm.cdf(-eps * sigma + 0.5 / sigma) - math.exp(eps) * stats.norm.cdf(
                -eps * sigma - 0.5 / sigma
            )
            assert exact <= delta


@pytest.mark.isa_independent
def test_accountant_composes_gaussian_releases_through_zcdp():
    acc = dp.Accountant(2.0, total_delta=1e-6)
    rho = zcdp_rho(1.0, 1e-6)
    acc.charge(1.0, "a", delta=1e-6, rho=rho)
    acc.charge(1.0, "b", delta=1e-6, rho=rho)
    assert acc.spent_rho == pytest.approx(2 * rho)
    assert acc.spent_epsilon == pytest.approx(zcdp_epsilon(2 * rho, 1e-6))
    assert acc.spent_epsilon < 1.5  # tighter than the (2, 2e-6) of basic composition
    # pure releases count both ways: epsilon added, or epsilon^2 / 2 in rho
    acc.charge(0.3, "pure")
    assert acc.spent_epsilon == pytest.approx(
        min(0.3 + zcdp_epsilon(2 * rho, 1e-6), zcdp_epsilon(2 * rho + 0.045, 1e-6))
    )
    with pytest.raises(dp.BudgetExceededError):
        acc.charge(1.0, "c", delta=1e-6, rho=rho)
    assert len(acc.spent) == 3
    pure = dp.Accountant(1.0)
    pure.charge(0.5)
    pure.charge(0.5)
    assert pure.spent_epsilon == pytest.approx(1.0) and pure.spent_rho == pytest.approx(0.25)


@pytest.mark.isa_independent
def test_accountant_with_a_rho_budget():
    acc = dp.Accountant(total_rho=0.1)
    acc.charge(0.2)  # pure: 0.02
    acc.charge(1.0, delta=1e-6, rho=0.05)
    assert acc.spent_rho == pytest.approx(0.07)
    assert acc.remaining_rho == pytest.approx(0.03)
    with pytest.raises(dp.BudgetExceededError):
        acc.charge(1.0, delta=1e-6, rho=0.04)
    assert math.isnan(acc.spent_epsilon)
    for bad in (
        {},
        {"total_epsilon": 1.0, "total_rho": 1.0},
        {"total_rho": 0.0},
        {"total_rho": 1.0, "total_delta": 0.1},
    ):
        with pytest.raises(ValueError):
            dp.Accountant(**bad)
    with pytest.raises(ValueError):
        dp.Accountant(1.0, total_delta=1.0)
    with pytest.raises(ValueError):
        acc.charge(0.1, delta=1e-6)  # an (epsilon, delta) charge needs its rho


# --- the structures with the Gaussian mechanism ----------------------------------------------------


@pytest.mark.isa_independent
def test_gaussian_release_rho_and_variance():
    sums = np.arange(4096, dtype=np.int64) * 2**32
    rho = zcdp_rho(1.0, 1e-6)
    rel = _noise.release_gaussian(sums, 32, 4096 * 2**64, rho, _noise._GeneratorBits(np.random.default_rng(0)))
    assert rel.mechanism == "gaussian" and rel.rho <= rho and rel.rho > rho * (1 - 1e-3)
    sigma = math.sqrt(4096) / math.sqrt(2 * rho)  # l2 sensitivity sqrt(m) in value units
    assert math.sqrt(rel.variance) == pytest.approx(sigma, rel=1e-3)  # the rounding term costs < 1e-3
    frac = rel.values / rel.grid
    assert np.all(frac == np.rint(frac))
    noise = rel.values - np.arange(4096)
    assert noise.std() == pytest.approx(sigma, rel=0.05)


@pytest.mark.isa_independent
@pytest.mark.parametrize("metric", ["l1", "l2", "sqeuclidean"])
def test_distance_sum_gaussian_is_accurate_and_charges_rho(metric):
    X = np.random.default_rng(0).uniform(-1, 1, (20000, 3))
    Y = np.array([[0.0, 0.0, 0.0], [0.5, -0.5, 0.25]])
    acc = dp.Accountant(1.0, total_delta=1e-6)
    s = dp.DistanceSum(metric, 1.0, (-1.0, 1.0), mechanism="gaussian", delta=1e-6, accountant=acc).fit(X)
    exact = numkern.distance_sum(X, Y, metric=metric)
    tol = {"l1": 0.01, "l2": 0.15, "sqeuclidean": 0.01}[metric]
    assert np.all(np.abs(s.query(Y) - exact) < tol * exact)
    assert s.rho_ <= zcdp_rho(1.0, 1e-6) and s.delta_ == 1e-6
    assert acc.spent_epsilon <= 1.0 + 1e-12
    with pytest.raises(dp.BudgetExceededError):
        dp.DistanceSum(metric, 0.1, (-1.0, 1.0), mechanism="gaussian", delta=1e-6, accountant=acc).fit(X)


@pytest.mark.isa_independent
def test_l1_tree_noise_is_scaled_to_the_l2_sensitivity():
    X = np.zeros((10, 4))
    lap = dp.DistanceSum("l1", 1.0, (-1.0, 1.0), resolution=64).fit(X)
    gau = dp.DistanceSum("l1", 1.0, (-1.0, 1.0), resolution=64, mechanism="gaussian", delta=1e-6).fit(X)
    d_h = 4 * 7
    assert math.sqrt(lap._tree.release.variance) == pytest.approx(math.sqrt(2) * d_h, rel=1e-3)
    rho = zcdp_rho(1.0, 1e-6)
    assert math.sqrt(gau._tree.release.variance) == pytest.approx(math.sqrt(d_h / (2 * rho)), rel=1e-3)


@pytest.mark.isa_independent
@pytest.mark.parametrize(
    "bad", [{"mechanism": "gauss"}, {"delta": 1e-6}, {"mechanism": "gaussian"}, {"mechanism": "gaussian", "delta": 1.5}]
)
def test_structures_validate_mechanism_and_delta_before_charging(bad):
    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    acc = dp.Accountant(5.0, total_delta=1e-5)
    for s in (
        dp.DistanceSum("l1", 1.0, (-1, 1), accountant=acc, **bad),
        dp.KernelDensity("gaussian", 1.0, 1.0, n_components=32, accountant=acc, **bad),
    ):
        with pytest.raises(ValueError):
            s.fit(X)
    with pytest.raises(ValueError):
        dp.SimilarityClassifier(accountant=acc, **bad).fit(X, y)
    assert acc.spent == []


@pytest.mark.isa_independent
def test_kde_gaussian_query_std_is_honest_and_smaller_than_laplace():
    X = np.random.default_rng(0).uniform(-1, 1, (500, 2))
    Y = np.array([[0.0, 0.0], [0.9, -0.9], [2.0, 2.0]])
    kw = {"n_components": 256, "feature_seed": 3, "mechanism": "gaussian", "delta": 1e-6}
    # the noiseless sketch answer: the exact feature sums through the same features
    base = None
    errs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.NotPrivateWarning)
        for r in range(300):
            k = dp.KernelDensity("gaussian", 0.7, 1.0, rng=r, **kw).fit(X)
            if base is None:
                from numkern.dp._kde import feature_sums

                exact = feature_sums(np.ascontiguousarray(X), k._Wt, k._bp, k.projection_)[: k.sketch_.size] / 2.0**32
                Phi = k._features(Y)[0]
                base = (2.0 / k.sketch_.size) * (Phi @ exact)
                std = k.query_std(Y)
                lap_std = dp.KernelDensity("gaussian", 0.7, 1.0, n_components=256, feature_seed=3).fit(X).query_std(Y)
            errs.append(k.query(Y) - base)
    rms = np.sqrt(np.mean(np.square(errs), axis=0))
    np.testing.assert_allclose(rms, std, rtol=0.15)
    assert np.all(std < lap_std / 2)


@pytest.mark.isa_independent
def test_classifier_gaussian_fits_and_charges_once():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-1, 0.3, (300, 2)), rng.normal(1, 0.3, (300, 2))])
    y = np.repeat([0, 1], 300)
    acc = dp.Accountant(2.0, total_delta=1e-5)
    clf = dp.SimilarityClassifier(epsilon=2.0, mechanism="gaussian", delta=1e-5, accountant=acc).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert len(acc.spent) == 1 and acc.spent[0].rho == pytest.approx(zcdp_rho(2.0, 1e-5))
    assert clf.get_params()["mechanism"] == "gaussian" and clf.get_params()["delta"] == 1e-5


@pytest.mark.isa_independent
def test_dask_fits_of_gaussian_structures_equal_the_in_memory_fits():
    pytest.importorskip("dask")
    import dask.array as da

    import numkern.dask as nkd

    X = np.random.default_rng(0).uniform(-1, 1, (3000, 3))
    dX = da.from_array(X, chunks=(700, 3))
    kw = {"mechanism": "gaussian", "delta": 1e-6, "rng": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.NotPrivateWarning)
        for make in (
            lambda: dp.KernelDensity("gaussian", 1.0, 1.0, n_components=64, feature_seed=0, **kw),
            lambda: dp.DistanceSum("l1", 1.0, (-1.0, 1.0), resolution=16, **kw),
            lambda: dp.DistanceSum("sqeuclidean", 1.0, (-1.0, 1.0), **kw),
        ):
            a, b = make().fit(X), nkd.fit(make(), dX)
            np.testing.assert_array_equal(a.query(X[:5]), b.query(X[:5]))
            assert a.rho_ == b.rho_
