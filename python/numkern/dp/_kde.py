"""KernelDensity: an epsilon-DP sketch answering F(y) = sum_x k(x, y) through random features."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _core
from . import _noise
from ._accountant import charge, check_epsilon
from ._data import private_data, queries
from ._exact import KERNELS, check_bandwidth

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


def _padded(W, b):
    d, m = W.shape
    mp = -(-m // _PAD) * _PAD
    Wt = np.zeros((d, mp))
    Wt[:, :m] = W
    bp = np.zeros(mp)
    bp[:m] = b
    return Wt, bp


def feature_sums(X, Wt, bp) -> np.ndarray:
    """sum_i round(2^32 cos(W^T x_i + b)) per feature, exactly, in int64 (the SIMD kernel)."""
    acc = np.zeros(Wt.shape[1], dtype=np.int64)
    if X.shape[0] > 2**31 - 1:
        raise ValueError("numkern.dp: at most 2^31 - 1 records per sketch")
    _core.dp_rff_sum(X, Wt, bp, float(2**_FIXED_BITS), acc)
    return acc


def features(Y, Wt, bp, m) -> np.ndarray:
    """cos(W^T y + b) for each row of Y: (q, m), computed by the SIMD kernel."""
    out = np.empty((Y.shape[0], Wt.shape[1]))
    if Y.shape[0]:
        _core.dp_rff_features(Y, Wt, bp, out)
    return out[:, :m]


def release_sketch(X, Wt, bp, m, epsilon, src):
    """The noisy sum of cos features: L1 sensitivity m * 2^32 in fixed-point units."""
    return _noise.release(feature_sums(X, Wt, bp)[:m], _FIXED_BITS, m * 2**_FIXED_BITS, epsilon, src)


class _SketchPlan:
    """What a row block needs to compute its exact sums (public: frequencies and offsets)."""

    def __init__(self, Wt, bp, m, private):
        self.Wt, self.bp, self.m = Wt, bp, m
        self.private = private  # driver-side state for _finish; not needed by partial

    def __getstate__(self):  # shipped to workers without the noise source
        return {"Wt": self.Wt, "bp": self.bp, "m": self.m, "private": None}

    def partial(self, X):
        """Exact int64 sums of the records X (already validated): cos features and the count."""
        return {"features": feature_sums(X, self.Wt, self.bp)[: self.m],
                "count": np.array([X.shape[0]], dtype=np.int64)}


def check_components(n_components) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or not 1 <= n_components <= 2**20:
        raise ValueError(f"n_components must be an integer in [1, 2^20], got {n_components!r}")
    return int(n_components)


class KernelDensity:
    """Differentially private kernel sums ``F(y) = sum_{x in X} k(x, y)``.

    Parameters
    ----------
    kernel : {"gaussian", "laplacian", "cauchy"}
        ``exp(-||x-y||^2/h^2)``, ``exp(-||x-y||_2/h)``, ``1/(1 + ||x-y||^2/h^2)``.
    bandwidth : float
        ``h > 0``.
    epsilon : float
        Pure epsilon-DP under adding or removing one record. No bounds are needed: every feature
        value lies in [-1, 1] whatever the record.
    n_components : int, default 4096
        Number m of random features.
    count_fraction : float, default 0.05
        Share of epsilon spent on the noisy record count ``n_records_``; the rest on the sketch.
    feature_seed : int, optional
        Seeds the data-independent frequencies only (part of the released structure); the noise stays
        from the OS CSPRNG unless ``rng`` is given.
    rng : None, int or numpy.random.Generator
        None: noise from the OS CSPRNG. Otherwise reproducible noise and :class:`NotPrivateWarning`.
    accountant : Accountant, optional

    Notes
    -----
    Random Fourier features (Rahimi & Recht 2007), as used for private kernel sums by Backurs et al.
    (ICLR 2024): ``phi(x) = sqrt(2/m) cos(W^T x + b)``. The released sketch is
    ``S = sum_x cos(W^T x + b) + noise`` and ``F(y) ~ (2/m) cos(W^T y + b) . S``. Each record moves the sum by
    at most 1 per feature, so the L1 sensitivity is m; the sums are exact int64 fixed-point
    (2^-32), discrete Laplace noise on a power-of-two grid. The noise of an answer has the analytic
    standard deviation :meth:`query_std`; the random-feature approximation error (about
    ``n / sqrt(m)`` at worst) is separate and not included.

    Attributes
    ----------
    epsilon_, n_records_ (noisy), frequencies_ (d x m), offsets_ (m), sketch_ (m), noise_variance_
    (per sketch coordinate).
    """

    def __init__(self, kernel="gaussian", bandwidth=1.0, epsilon=1.0, *, n_components=4096, count_fraction=0.05,
                 feature_seed=None, rng=None, accountant=None):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.epsilon = epsilon
        self.n_components = n_components
        self.count_fraction = count_fraction
        self.feature_seed = feature_seed
        self.rng = rng
        self.accountant = accountant

    def fit(self, X):
        """Build the sketch from the private records X (n, d); returns self."""
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
        if isinstance(cf, bool) or not isinstance(cf, numbers.Real) or not 0 < cf < 1:
            raise ValueError(f"count_fraction must be in (0, 1), got {cf!r}")
        return h, eps, m, cf

    def _begin(self, params, d):
        h, eps, m, cf = params
        src = _noise.bit_source(self.rng, stacklevel=4)
        gen = (np.random.default_rng(self.feature_seed) if self.feature_seed is not None
               else _noise.data_independent_rng(self.rng, src))
        charge(self.accountant, eps, f"KernelDensity({self.kernel})")
        W, b = draw_features(self.kernel, h, d, m, gen)
        Wt, bp = _padded(W, b)
        return _SketchPlan(Wt, bp, m, (W, b, eps, cf, src, d))

    def _finish(self, plan, sums):
        W, b, eps, cf, src, d = plan.private
        m = plan.m
        rel = _noise.release(sums["features"], _FIXED_BITS, m * 2**_FIXED_BITS, (1 - cf) * eps, src)
        cnt = _noise.release(sums["count"], 0, 1, cf * eps, src)
        self._Wt, self._bp = plan.Wt, plan.bp
        self.epsilon_ = eps
        self.n_features_in_ = d
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
        return features(Yc, self._Wt, self._bp, self.sketch_.size), single

    def query(self, Y):
        """Estimates of ``F(y) = sum_x k(x, y)`` for each row of Y (scalar for 1-D Y)."""
        Phi, single = self._features(Y)
        out = (2.0 / self.sketch_.size) * (Phi @ self.sketch_)
        return out[0] if single else out

    def query_std(self, Y):
        """Analytic standard deviation of the DP noise in :meth:`query` at each query (exact for the
        discrete Laplace noise: ``(2/m) sqrt(var * sum_j cos^2(w_j.y + b_j))``)."""
        Phi, single = self._features(Y)
        out = (2.0 / self.sketch_.size) * np.sqrt(self.noise_variance_ * np.einsum("ij,ij->i", Phi, Phi))
        return out[0] if single else out
