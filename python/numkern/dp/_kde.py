"""KernelDensity: an epsilon-DP sketch answering F(y) = sum_x k(x, y) through random features."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np

from .. import _core
from .._validate import next_pow2
from . import _noise
from ._accountant import charge, check_epsilon, check_mechanism
from ._data import private_data, queries
from ._estimator import ParamsMixin
from ._exact import KERNELS, check_bandwidth

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._validate import RngLike
    from ._accountant import Accountant

_FIXED_BITS = 32  # each feature value rounds to an integer in [-2^32, 2^32]: 2^31 records sum exactly
_PAD = 32  # the SIMD kernels take feature counts in multiples of 32


def draw_features(kernel: str, bandwidth: float, d: int, m: int, gen: np.random.Generator):
    """Frequencies W (d x m) and offsets b (m) with E[2 cos(w.x + b) cos(w.y + b)] = k(x, y).

    Gaussian exp(-r^2/h^2): w ~ N(0, 2/h^2 I) (Rahimi & Recht 2007). Cauchy 1/(1 + r^2/h^2) is the
    Gaussian scale mixture E_t exp(-t r^2/h^2), t ~ Exp(1); Laplacian exp(-r/h) is E_t exp(-t r^2/h^2)
    with t ~ Levy(1/2) = 1/(2 Z^2). So w = sqrt(2 t) g / h: one sketch for every kernel, no epsilon split.
    """
    g = gen.standard_normal((d, m))
    if kernel == "gaussian":
        scale = np.full(m, math.sqrt(2.0))
    elif kernel == "cauchy":
        scale = np.sqrt(2.0 * gen.standard_exponential(m))
    else:
        scale = 1.0 / np.abs(gen.standard_normal(m))  # sqrt(2 t) with t = 1 / (2 Z^2)
    W = g * (scale / bandwidth)
    b = gen.uniform(0.0, 2.0 * math.pi, m)
    return W, b


def padded_features(W, b):
    """W (d x m) zero-padded to a multiple of 32 features and packed in blocks of 32 as the kernels
    read it: (m/32, d, 32), block q contiguous (see kBlock in cpp/dp/dp.h)."""
    d, m = W.shape
    mp = -(-m // _PAD) * _PAD
    Wt = np.zeros((d, mp))
    Wt[:, :m] = W
    bp = np.zeros(mp)
    bp[:m] = b
    return np.ascontiguousarray(Wt.reshape(d, mp // _PAD, _PAD).transpose(1, 0, 2)), bp


# |k(s (1 + delta)) - k(s)| <= c |ln(1 + delta)| for a squared distance s distorted by (1 + delta):
# in t = ln s the kernels are exp(-e^t), exp(-e^(t/2)) and 1 / (1 + e^t), of slopes at most 1/e,
# 1/(2e) and 1/4.
LOG_LIPSCHITZ = {"gaussian": 1.0 / math.e, "laplacian": 0.5 / math.e, "cauchy": 0.25}


def jl_distortion_std(k: int, d: int) -> float:
    """Bound on the standard deviation of delta = ||P v||^2 / ||v||^2 - 1 for the projection P of
    :class:`HadamardProjection` (d -> k) and ANY fixed v: 2(N - k) / (k (N - 1)) with N = 2^ceil(log2 d)
    (sampling k of the N coordinates of the randomly signed Hadamard transform without replacement;
    E[u_i^4] <= 3 ||v||^4 / N^2 for its coordinates u). E[delta] = 0 exactly."""
    N = next_pow2(d)
    return math.sqrt(2.0 * (N - k) / (k * (N - 1))) if N > 1 else 0.0


class HadamardProjection:
    """A data-independent Johnson-Lindenstrauss map R^d -> R^k: ``P x = (H D x)[rows] / sqrt(k)``.

    D random signs, H the (unnormalized) Walsh-Hadamard transform of size N = 2^ceil(log2 d) with
    zero padding, ``rows`` k of the N outputs sampled without replacement (Ailon & Chazelle's fast JL
    transform, Tropp's SRHT analysis). ``E ||P v||^2 = ||v||^2``; see :func:`jl_distortion_std`.
    O(N log N) per record through numkern's FWHT. Each record's image is computed on its own row by
    the same sequence of exact sign flips and butterfly additions, so it is a function of that record
    alone (never of the rows around it): the per-record sensitivity argument is unchanged. The
    1/sqrt(k) is folded into the frequencies, so :meth:`__call__` returns ``(H D x)[rows]``.
    """

    def __init__(self, d: int, k: int, gen: np.random.Generator):
        self.d, self.k, self.N = int(d), int(k), next_pow2(d)
        self.signs = np.where(gen.integers(0, 2, self.d) == 1, -1.0, 1.0)
        self.rows = np.sort(gen.choice(self.N, self.k, replace=False)).astype(np.intp)

    def __call__(self, X) -> np.ndarray:
        """``(H D x)[rows]`` for each row of the contiguous float64 array X: (n, k)."""
        out = np.empty((X.shape[0], self.k))
        a = 0
        for Z in self.chunks(X):
            out[a : a + Z.shape[0]] = Z
            a += Z.shape[0]
        return out

    def chunks(self, X):
        """The images of consecutive row blocks of X (at most 16 MB of transform buffer at a time)."""
        step = max(64, (1 << 21) // self.N)
        for a in range(0, X.shape[0], step):
            x = X[a : a + step]
            T = np.zeros((x.shape[0], self.N))
            np.multiply(x, self.signs, out=T[:, : self.d])
            _core.fwht_rows(T, 1.0)  # each row on its own: the same butterflies for every row
            yield np.ascontiguousarray(T[:, self.rows])


def check_reduce_dim(reduce_dim, kernel: str, d: int, m: int):
    """The projection dimension k, or None for no projection.

    "auto": the smallest multiple of 8 with ``c_kernel * jl_distortion_std(k, d) <= 1 / sqrt(m)``, i.e.
    the projection's first-order error per pair (``c |delta|``, :data:`LOG_LIPSCHITZ`) at most the
    random-feature error per pair the structure already accepts (std <= 1/sqrt(m)); used only when the
    per-record cost ``k m + N log2 N`` is at most half of ``d m`` (it then at least halves build and
    query work), else None."""
    if reduce_dim is None:
        return None
    if isinstance(reduce_dim, str):
        if reduce_dim != "auto":
            raise ValueError(f"reduce_dim must be None, 'auto' or an integer, got {reduce_dim!r}")
        c, N = LOG_LIPSCHITZ[kernel], next_pow2(d)
        k = 8
        while k < d and c * jl_distortion_std(k, d) > 1.0 / math.sqrt(m):
            k += 8
        if k >= d or k * m + N * max(1, N.bit_length() - 1) > 0.5 * d * m:
            return None
        return k
    if isinstance(reduce_dim, bool) or not isinstance(reduce_dim, numbers.Integral) or not 1 <= int(reduce_dim) < d:
        raise ValueError(f"reduce_dim must be an integer in [1, n_features={d}), 'auto' or None, got {reduce_dim!r}")
    return int(reduce_dim)


def feature_sums(X, Wt, bp, projection=None) -> np.ndarray:
    """sum_i round(2^32 cos(W^T x_i + b)) per feature (x_i projected first if a projection is given),
    exactly, in int64 (the SIMD kernel; integer sums do not depend on the chunking)."""
    acc = np.zeros(Wt.shape[0] * _PAD, dtype=np.int64)
    if X.shape[0] > 2**31 - 1:
        raise ValueError("numkern.dp: at most 2^31 - 1 records per sketch")
    if projection is None:
        _core.dp_rff_sum(X, Wt, bp, float(2**_FIXED_BITS), acc)
        return acc
    part = np.empty_like(acc)
    for Z in projection.chunks(X):
        _core.dp_rff_sum(Z, Wt, bp, float(2**_FIXED_BITS), part)  # overwrites part
        acc += part  # |sum| <= 2^31 * 2^32 < 2^63: exact
    return acc


def features(Y, Wt, bp, m, projection=None) -> np.ndarray:
    """cos(W^T y + b) for each row of Y (projected first if a projection is given): (q, m), computed by
    the SIMD kernel."""
    if projection is not None:
        Y = projection(Y)
    out = np.empty((Y.shape[0], Wt.shape[0] * _PAD))
    if Y.shape[0]:
        _core.dp_rff_features(Y, Wt, bp, out)
    return out[:, :m]


def release_sums(sums, m, budget, src):
    """The noisy release of exact cos-feature sums (m of them): each feature of a record lies in
    [-2^32, 2^32] in fixed-point units (whatever the projection: it is public and applied to each
    record alone), so the L1 sensitivity is m * 2^32 (Laplace) and the l2 sensitivity sqrt(m) * 2^32
    (Gaussian: squared, m * 2^64). ``budget``: a :class:`numkern.dp._noise.Budget`."""
    return _noise.release_budget(sums, _FIXED_BITS, m * 2**_FIXED_BITS, m * 2 ** (2 * _FIXED_BITS), budget, src)


def release_feature_rows(sums, m, budget, src):
    """Each row of exact cos-feature sums (one row per class) released as release_sums releases it
    alone, the noise of all rows drawn in one call."""
    return _noise.release_budget(
        sums, _FIXED_BITS, m * 2**_FIXED_BITS, m * 2 ** (2 * _FIXED_BITS), budget, src, rows=True
    )


def draw_structure(kernel, h, d, m, reduce_dim, gen):
    """Public, data-independent part: frequencies and offsets (in the projected space if reducing,
    with the projection's 1/sqrt(k) folded in), and the projection or None."""
    k = check_reduce_dim(reduce_dim, kernel, d, m)
    W, b = draw_features(kernel, h, d if k is None else k, m, gen)
    if k is None:
        return W, b, None
    return W / math.sqrt(k), b, HadamardProjection(d, k, gen)


class _SketchPlan:
    """What a row block needs to compute its exact sums (public: frequencies, offsets and the
    optional projection)."""

    def __init__(self, Wt, bp, m, projection, private):
        self.Wt, self.bp, self.m, self.projection = Wt, bp, m, projection
        self.private = private  # driver-side state for _finish; not needed by partial

    def __getstate__(self):  # shipped to workers without the noise source
        return {"Wt": self.Wt, "bp": self.bp, "m": self.m, "projection": self.projection, "private": None}

    def partial(self, X):
        """Exact int64 sums of the records X (already validated): cos features and the count."""
        return {
            "features": feature_sums(X, self.Wt, self.bp, self.projection)[: self.m],
            "count": np.array([X.shape[0]], dtype=np.int64),
        }


def check_components(n_components) -> int:
    if (
        isinstance(n_components, bool)
        or not isinstance(n_components, numbers.Integral)
        or not 1 <= int(n_components) <= 2**20
    ):
        raise ValueError(f"n_components must be an integer in [1, 2^20], got {n_components!r}")
    return int(n_components)


def log_kernel_integral(kernel: str, bandwidth: float, d: int) -> float:
    """log of the integral of the kernel over R^d, so that ``F(y) / (n * exp(this))`` is a density:
    gaussian ``(pi h^2)^(d/2)``; laplacian ``2 pi^(d/2) Gamma(d) h^d / Gamma(d/2)`` (the surface of
    the unit sphere times ``int r^(d-1) e^(-r/h) dr``); cauchy ``pi h`` for d = 1 and not integrable
    (ValueError) for d >= 2."""
    if kernel == "gaussian":
        return 0.5 * d * math.log(math.pi) + d * math.log(bandwidth)
    if kernel == "laplacian":
        return (
            math.log(2.0)
            + 0.5 * d * math.log(math.pi)
            + math.lgamma(d)
            - math.lgamma(0.5 * d)
            + d * math.log(bandwidth)
        )
    if d == 1:
        return math.log(math.pi * bandwidth)
    raise ValueError(
        f"the cauchy kernel 1/(1 + r^2/h^2) has no finite integral over R^{d} (d >= 2): no density to "
        "normalize; use query() for the kernel sums"
    )


class KernelDensity(ParamsMixin):
    """Differentially private kernel sums ``F(y) = sum_{x in X} k(x, y)``.

    Parameters
    ----------
    kernel : {"gaussian", "laplacian", "cauchy"}
        ``exp(-||x-y||^2/h^2)``, ``exp(-||x-y||_2/h)``, ``1/(1 + ||x-y||^2/h^2)``.
    bandwidth : float
        ``h > 0``.
    epsilon : float
        epsilon-DP under adding or removing one record (pure with the Laplace mechanism,
        (epsilon, delta) with the Gaussian). No bounds are needed: every feature value lies in
        [-1, 1] whatever the record.
    n_components : int, default 4096
        Number m of random features.
    count_fraction : float, default 0.05
        Share of epsilon spent on the noisy record count ``n_records_``; the rest on the sketch.
    reduce_dim : None, int or "auto", default None
        Project the records (and queries) to ``k`` dimensions with a public, seeded
        :class:`HadamardProjection` before the random features (the dimension-reduction speed-up of
        Backurs et al., Section 7): build and query work per record drop from ``d m`` to
        ``N log2 N + k m``. Each pair's squared distance is distorted by ``1 + delta`` with
        ``E delta = 0`` and ``std(delta) <= jl_distortion_std(k, d)`` (about ``sqrt(2/k)``), which moves
        its kernel value by at most ``c |ln(1 + delta)|`` (c = 1/e gaussian, 1/(2e) laplacian, 1/4
        cauchy). The privacy guarantee and :meth:`query_std` are unchanged. "auto" reduces only when
        that error stays within the random-feature error and the work at least halves
        (:func:`check_reduce_dim`).
    feature_seed : int, optional
        Seeds the data-independent frequencies and projection only (part of the released structure); the noise stays
        from the OS CSPRNG unless ``rng`` is given.
    rng : None, int or numpy.random.Generator
        None: noise from the OS CSPRNG. Otherwise reproducible noise and :class:`NotPrivateWarning`.
    accountant : Accountant, optional
    mechanism : {"laplace", "gaussian"}, default "laplace"
        Discrete Laplace noise scaled to the L1 sensitivity ``m`` (pure epsilon-DP), or discrete
        Gaussian noise scaled to the l2 sensitivity ``sqrt(m)`` ((epsilon, delta)-DP through zCDP):
        at m = 4096 and (epsilon, delta) = (1, 1e-6) the Gaussian's noise standard deviation is about
        8x smaller.
    delta : float, default 0.0
        0 for the Laplace mechanism; ``0 < delta < 1`` for the Gaussian.

    Notes
    -----
    Random Fourier features (Rahimi & Recht 2007), as used for private kernel sums by Backurs et al.
    (ICLR 2024): ``phi(x) = sqrt(2/m) cos(W^T x + b)``. The released sketch is
    ``S = sum_x cos(W^T x + b) + noise`` and ``F(y) ~ (2/m) cos(W^T y + b) . S``. Each record moves the sum by
    at most 1 per feature, so the L1 sensitivity is m and the l2 sensitivity sqrt(m); the sums are
    exact int64 fixed-point (2^-32), discrete Laplace (or discrete Gaussian) noise on a power-of-two
    grid. The noise of an answer has the analytic
    standard deviation :meth:`query_std`; the random-feature approximation error (about
    ``n / sqrt(m)`` at worst) is separate and not included.

    Attributes
    ----------
    epsilon_, n_records_ (noisy), frequencies_ (d x m, or k x m in the projected space with the
    projection's 1/sqrt(k) folded in), offsets_ (m), sketch_ (m), noise_variance_ (per sketch
    coordinate), projection_ (:class:`HadamardProjection` or None), reduce_dim_ (k or None).

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> from numkern import dp
    >>> X = np.random.default_rng(0).uniform(-1, 1, size=(20000, 3))
    >>> Y = np.zeros((1, 3))
    >>> kde = dp.KernelDensity("gaussian", 1.0, epsilon=1.0, n_components=1024, feature_seed=0).fit(X)
    >>> truth = numkern.kernel_sum(X, Y, kernel="gaussian", bandwidth=1.0)
    >>> print(bool(abs(kde.query(Y)[0] - truth[0]) < 0.1 * truth[0]))
    True
    >>> print(bool(kde.query_std(Y)[0] < 0.02 * truth[0]))   # the DP noise's standard deviation
    True
    """

    def __init__(
        self,
        kernel: str = "gaussian",
        bandwidth: float = 1.0,
        epsilon: float = 1.0,
        *,
        n_components: int = 4096,
        count_fraction: float = 0.05,
        reduce_dim: int | str | None = None,
        feature_seed: RngLike = None,
        rng: RngLike = None,
        accountant: Accountant | None = None,
        mechanism: str = "laplace",
        delta: float = 0.0,
    ) -> None:
        self.kernel = kernel
        self.reduce_dim = reduce_dim
        self.bandwidth = bandwidth
        self.epsilon = epsilon
        self.n_components = n_components
        self.count_fraction = count_fraction
        self.feature_seed = feature_seed
        self.rng = rng
        self.accountant = accountant
        self.mechanism = mechanism
        self.delta = delta

    def __sklearn_tags__(self):
        """scikit-learn >= 1.6 estimator tags (imported only when scikit-learn asks), so grid searches
        and pipelines take the structure as they take ``sklearn.neighbors.KernelDensity``."""
        from sklearn.utils import InputTags, Tags, TargetTags

        seeded = isinstance(self.rng, (int, np.integer)) and not isinstance(self.rng, bool)
        return Tags(
            estimator_type="density_estimator",
            target_tags=TargetTags(required=False),
            input_tags=InputTags(),
            non_deterministic=not seeded,
        )

    def fit(self, X: ArrayLike, y: None = None) -> KernelDensity:
        """Build the sketch from the private records X (n, d); returns self. ``y`` is ignored
        (scikit-learn's signature, so pipelines and grid searches can call ``fit(X, y)``)."""
        params = self._params()
        X = private_data(X)
        plan = self._begin(params, X.shape[1])
        return self._finish(plan, plan.partial(X))

    # fit in three steps, so that numkern.dask can sum the exact partials of row blocks in between:
    # _begin (driver: checks, data-independent randomness, accountant), plan.partial (any machine:
    # exact int64 sums of a block), _finish (driver: the noise, added once).
    def _params(self):
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        h = check_bandwidth(self.bandwidth)
        eps = check_epsilon(self.epsilon)
        m = check_components(self.n_components)
        cf = self.count_fraction
        if isinstance(cf, bool) or not isinstance(cf, numbers.Real) or not 0 < float(cf) < 1:
            raise ValueError(f"count_fraction must be in (0, 1), got {cf!r}")
        mech, delta = check_mechanism(self.mechanism, self.delta)
        return h, eps, m, cf, _noise.Budget.of(mech, eps, delta)

    def _begin(self, params, d):
        h, eps, m, cf, budget = params
        check_reduce_dim(self.reduce_dim, self.kernel, d, m)  # raise before charging
        src = _noise.bit_source(self.rng, stacklevel=4)
        gen = (
            np.random.default_rng(self.feature_seed)
            if self.feature_seed is not None
            else _noise.data_independent_rng(self.rng, src)
        )
        charge(self.accountant, eps, f"KernelDensity({self.kernel})", delta=budget.delta, rho=budget.rho)
        W, b, proj = draw_structure(self.kernel, h, d, m, self.reduce_dim, gen)
        Wt, bp = padded_features(W, b)
        return _SketchPlan(Wt, bp, m, proj, (W, b, eps, cf, src, d, budget))

    def _finish(self, plan, sums):
        W, b, eps, cf, src, d, budget = plan.private
        m = plan.m
        rel = release_sums(sums["features"], m, budget.part(1 - cf), src)
        cnt = _noise.release_budget(sums["count"], 0, 1, 1, budget.part(cf), src)
        self._Wt, self._bp = plan.Wt, plan.bp
        self.projection_ = plan.projection
        self.reduce_dim_ = None if plan.projection is None else plan.projection.k
        self.epsilon_ = eps
        self.delta_ = budget.delta
        self.rho_ = None if budget.rho is None else rel.rho + cnt.rho
        self.n_features_in_ = d
        self.bandwidth_ = check_bandwidth(self.bandwidth)
        self.frequencies_, self.offsets_ = W, b
        self.sketch_ = rel.values
        self.noise_variance_ = rel.variance
        self.grid_ = rel.grid
        self.n_records_ = float(cnt.values[0])
        return self

    def _features(self, Y):
        if not hasattr(self, "sketch_"):
            raise ValueError("this KernelDensity is not fitted yet; call fit(X) first")
        Yc, single = queries(Y, self.n_features_in_)
        return features(Yc, self._Wt, self._bp, self.sketch_.size, self.projection_), single

    def query(self, Y: ArrayLike) -> np.ndarray:
        """Estimates of ``F(y) = sum_x k(x, y)`` for each row of Y (scalar for 1-D Y)."""
        Phi, single = self._features(Y)
        out = (2.0 / self.sketch_.size) * (Phi @ self.sketch_)
        return out[0] if single else out

    def query_std(self, Y: ArrayLike) -> np.ndarray:
        """Analytic standard deviation of the DP noise in :meth:`query` at each query (exact for the
        discrete Laplace and discrete Gaussian noise: ``(2/m) sqrt(var * sum_j cos^2(w_j.y + b_j))``)."""
        Phi, single = self._features(Y)
        out = (2.0 / self.sketch_.size) * np.sqrt(self.noise_variance_ * np.einsum("ij,ij->i", Phi, Phi))
        return out[0] if single else out

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Log density at each row of X, normalized as ``sklearn.neighbors.KernelDensity`` normalizes.

        ``log(max(F(x), tiny) / (n * Z))`` with ``F`` the estimated kernel sum :meth:`query`, ``n`` the
        noisy record count ``n_records_`` (at least 1), ``Z`` the integral of the kernel over R^d
        (:func:`log_kernel_integral`) and ``tiny = numpy.finfo(float).tiny`` (2.2e-308), computed as
        ``log(max(F, tiny)) - log(n) - log(Z)``. The DP noise and the random-feature error can make
        ``F`` zero or negative where the density is small (far from the data): such estimates are
        clipped to ``tiny``, so the result is always finite (never NaN or -inf) and at least
        ``-708.4 - log(n) - log(Z)``: a density indistinguishable from 0. A held-out :meth:`score`
        is dominated by such points; compare bandwidths with enough ``n_components`` and epsilon
        that the estimates stay positive where it is evaluated, or use :meth:`query` and
        :meth:`query_std` directly.

        The gaussian kernel ``exp(-r^2/h^2)`` is scikit-learn's gaussian kernel of bandwidth
        ``h / sqrt(2)``; the laplacian ``exp(-r/h)`` is its ``"exponential"`` kernel of bandwidth
        ``h``: with little noise and many features the values agree with scikit-learn's. The cauchy
        kernel is a density for one feature only (ValueError for more). With ``reduce_dim`` the
        kernel is evaluated on projected distances and normalized in the original ``d`` dimensions.

        Returns
        -------
        ndarray
            (n,) float64 (a scalar for 1-D X).

        Examples
        --------
        >>> import numpy as np
        >>> from numkern import dp
        >>> X = np.random.default_rng(0).normal(size=(20000, 2))
        >>> kde = dp.KernelDensity("gaussian", 0.5, epsilon=10.0, n_components=1024, feature_seed=0).fit(X)
        >>> logp = kde.score_samples(np.zeros((1, 2)))
        >>> # N(0, I) smoothed by the kernel (std h / sqrt(2) per axis) is N(0, 1.125 I): -1.96 at 0
        >>> print(bool(abs(logp[0] + 1.96) < 0.2))
        True
        """
        F = self.query(X)
        logz = log_kernel_integral(self.kernel, self.bandwidth_, self.n_features_in_)
        return np.log(np.maximum(F, np.finfo(np.float64).tiny)) - (math.log(max(self.n_records_, 1.0)) + logz)

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Total log density of the rows of X: ``score_samples(X).sum()`` (scikit-learn's ``score``;
        ``y`` is ignored). Finite: see :meth:`score_samples` for the floor. Post-processing: free.

        Examples
        --------
        >>> import numpy as np
        >>> from numkern import dp
        >>> X = np.random.default_rng(0).normal(size=(5000, 1))
        >>> kde = dp.KernelDensity("laplacian", 0.3, epsilon=1.0, n_components=512, feature_seed=0).fit(X)
        >>> Y = np.linspace(-1, 1, 5)[:, None]
        >>> print(bool(np.isclose(kde.score(Y), kde.score_samples(Y).sum())))
        True
        """
        return float(np.sum(self.score_samples(X)))
