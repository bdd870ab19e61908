"""SimilarityClassifier: one private kernel-sum sketch per class, predict by highest average similarity."""

from __future__ import annotations

import inspect
import math
import numbers
from typing import TYPE_CHECKING

import numpy as np

from . import _noise
from ._accountant import charge, check_epsilon, check_mechanism
from ._data import private_data, queries
from ._exact import KERNELS, check_bandwidth
from ._kde import (
    check_components,
    check_reduce_dim,
    draw_structure,
    feature_sums,
    features,
    padded_features,
    release_feature_rows,
)

if TYPE_CHECKING:
    from typing import Any

    from numpy.typing import ArrayLike

    from .._validate import RngLike
    from ._accountant import Accountant


def _not_fitted_error(msg):
    """scikit-learn's NotFittedError (a ValueError) if scikit-learn is installed, else a ValueError."""
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:
        return ValueError(msg)
    return NotFittedError(msg)


def auto_components(epsilon: float, noisy_sizes) -> int:
    """m from epsilon and the (noisy) class sizes: the DP noise of an average similarity grows like
    sqrt(m) / (epsilon n) and the random-feature error shrinks like 1 / sqrt(m), balanced at
    m ~ epsilon n (LSQ's analysis). Rounded to a power of two in [64, 4096]."""
    n = max(1.0, float(np.min(noisy_sizes)))
    m = 0.25 * epsilon * n
    return int(2 ** min(12, max(6, round(math.log2(max(m, 1.0))))))


def class_counts(y, classes) -> np.ndarray:
    """Exact number of labels equal to each class (labels outside `classes` are not counted)."""
    return np.array([np.count_nonzero(y == c) for c in classes], dtype=np.int64)


class _ClassPlan:
    """What a row block needs for its exact per-class feature sums (public parameters only)."""

    def __init__(self, Wt, bp, m, projection, classes, private):
        self.Wt, self.bp, self.m, self.projection, self.classes = Wt, bp, m, projection, classes
        self.private = private  # driver-side state for _finish; not needed by partial

    def __getstate__(self):  # shipped to workers without the noise source
        return {**self.__dict__, "private": None}

    def partial(self, X, y):
        """Exact int64 sums of the cos features of the records of each class: (n_classes, m)."""
        return {
            "features": np.stack(
                [feature_sums(X[y == c], self.Wt, self.bp, self.projection)[: self.m] for c in self.classes]
            )
        }


class SimilarityClassifier:
    """Differentially private classifier by average kernel similarity to each class.

    Parameters
    ----------
    kernel : {"gaussian", "laplacian", "cauchy"}, default "gaussian"
    bandwidth : float, default 1.0
    epsilon : float, default 1.0
        Every record is in exactly one class, so the per-class releases compose in parallel: the
        whole fit is epsilon-DP (``count_fraction * epsilon`` for the noisy class sizes, the rest for
        the class sketches).
    n_components : "auto" or int
        Number of random features; "auto" uses :func:`auto_components` on the noisy class sizes
        (Laplace), or 4096 for the Gaussian mechanism, whose noise does not grow with m.
    count_fraction : float, default 0.1
    reduce_dim : None, int or "auto", default None
        Project the records to ``k`` dimensions first (a public, seeded Hadamard JL map), as in
        :class:`KernelDensity`; "auto" decides from the kernel, ``n_features`` and the chosen
        ``n_components`` only.
    classes : array_like, optional
        The label set, public. If None the labels present in ``y`` are used (the label set is then
        treated as public, as scikit-learn-style DP libraries do).
    rng : None, int or numpy.random.Generator
        None: noise from the OS CSPRNG; otherwise reproducible and :class:`NotPrivateWarning`.
    accountant : Accountant, optional
        Charged ``epsilon`` once per fit (with ``delta`` and the zCDP ``rho`` for the Gaussian mechanism).
    mechanism : {"laplace", "gaussian"}, default "laplace"
        Noise of the class sizes and sketches: discrete Laplace scaled to the L1 sensitivity (pure
        epsilon-DP) or discrete Gaussian scaled to the l2 sensitivity ((epsilon, delta)-DP through
        zCDP; sketch sensitivity ``sqrt(m)`` instead of ``m``).
    delta : float, default 0.0
        0 for the Laplace mechanism; ``0 < delta < 1`` for the Gaussian.

    Notes
    -----
    Backurs et al. (ICLR 2024), Section 6: private classification by similarity to private class
    sketches, far cheaper than DP-SGD. Follows the scikit-learn estimator API (get_params,
    set_params, ``sklearn.base.clone``) without importing scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import dp
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-1, 0.3, (500, 2)), rng.normal(1, 0.3, (500, 2))])
    >>> y = np.repeat([0, 1], 500)
    >>> clf = dp.SimilarityClassifier(bandwidth=1.0, epsilon=5.0).fit(X, y)
    >>> print(clf.predict(np.array([[-1.0, -1.0], [1.0, 1.0]])))
    [0 1]
    >>> print(clf.score(X, y) > 0.9)
    True
    """

    def __init__(
        self,
        kernel: str = "gaussian",
        bandwidth: float = 1.0,
        epsilon: float = 1.0,
        *,
        n_components: int | str = "auto",
        count_fraction: float = 0.1,
        reduce_dim: int | str | None = None,
        classes: ArrayLike | None = None,
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
        self.classes = classes
        self.rng = rng
        self.accountant = accountant
        self.mechanism = mechanism
        self.delta = delta

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p for p in sig.parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> SimilarityClassifier:
        """Set parameters (scikit-learn convention); returns self."""
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for SimilarityClassifier; valid: {valid}")
            setattr(self, key, value)
        return self

    def __sklearn_tags__(self):
        """scikit-learn >= 1.6 estimator tags (imported only when scikit-learn asks)."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(),
            input_tags=InputTags(),
            non_deterministic=True,
        )

    def __repr__(self):
        return f"SimilarityClassifier({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def fit(self, X: ArrayLike, y: ArrayLike) -> SimilarityClassifier:
        """Fit one private sketch per class on (X, y); returns self."""
        params = self._params()
        X = private_data(X)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must be 1-D with one label per row of X ({X.shape[0]}); got shape {y.shape}")
        classes = np.unique(y) if self.classes is None else np.asarray(self.classes)
        state = self._begin(params, X.shape[1], classes)
        plan = self._plan(state, class_counts(y, classes))
        return self._finish(plan, plan.partial(X, y))

    # fit in steps, so numkern.dask can compute the exact per-class sums on row blocks:
    # _params (checks), _begin (noise source, accountant), class counts (exact, any split),
    # _plan (noisy sizes, m, the public features), plan.partial (exact feature sums), _finish (noise).
    def _params(self):
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        h = check_bandwidth(self.bandwidth)
        eps = check_epsilon(self.epsilon)
        cf = self.count_fraction
        if isinstance(cf, bool) or not isinstance(cf, numbers.Real) or not 0 < float(cf) < 1:
            raise ValueError(f"count_fraction must be in (0, 1), got {cf!r}")
        if not (isinstance(self.n_components, str) and self.n_components == "auto"):
            check_components(self.n_components)
        mech, delta = check_mechanism(self.mechanism, self.delta)
        return h, eps, cf, _noise.Budget.of(mech, eps, delta)

    def _begin(self, params, d, classes, stacklevel=4):
        h, eps, cf, budget = params
        classes = np.asarray(classes)
        if classes.ndim != 1 or classes.size < 1:
            raise ValueError(
                f"need at least one class: classes must be a non-empty 1-D array of labels, got shape {classes.shape}"
            )
        check_reduce_dim(self.reduce_dim, self.kernel, d, 64)  # validate before charging
        src = _noise.bit_source(self.rng, stacklevel=stacklevel)
        gen = _noise.data_independent_rng(self.rng, src)
        charge(self.accountant, eps, "SimilarityClassifier", delta=budget.delta, rho=budget.rho)
        return h, eps, cf, d, classes, src, gen, budget

    def _plan(self, state, counts):
        """Releases the class sizes from the exact counts and draws the public features."""
        h, eps, cf, d, classes, src, gen, budget = state
        # Each class's count released alone (disjoint records: parallel composition), noise drawn at once.
        counts = np.asarray(counts, dtype=np.int64).reshape(-1, 1)
        sizes = _noise.release_budget(counts, 0, 1, 1, budget.part(cf), src, rows=True).values[:, 0]
        # The noise of an average similarity grows like sqrt(m) / (epsilon n) for the Laplace mechanism
        # and like 1 / (sqrt(rho) n) for the Gaussian (independent of m): "auto" balances the Laplace case
        # and, for the Gaussian, uses the epsilon whose Laplace noise matches (sqrt(2 rho) m^(1/2)).
        eps_m = (1 - cf) * eps
        m = auto_components(eps_m, sizes) if isinstance(self.n_components, str) else int(self.n_components)
        if isinstance(self.n_components, str) and budget.rho is not None:
            m = 4096  # the Gaussian's noise does not grow with m: the most features the rule allows
        W, b, proj = draw_structure(self.kernel, h, d, m, self.reduce_dim, gen)
        Wt, bp = padded_features(W, b)
        return _ClassPlan(Wt, bp, m, proj, classes, (eps, cf, d, sizes, src, budget))

    def _finish(self, plan, sums):
        eps, cf, d, sizes, src, budget = plan.private
        m = plan.m
        self._Wt, self._bp = plan.Wt, plan.bp
        self.projection_ = plan.projection
        self.reduce_dim_ = None if plan.projection is None else plan.projection.k
        self.sketches_ = release_feature_rows(np.asarray(sums["features"]), m, budget.part(1 - cf), src).values
        self.classes_ = plan.classes
        self.class_sizes_ = sizes
        self.n_components_ = m
        self.n_features_in_ = d
        self.epsilon_ = eps
        self.delta_ = budget.delta
        return self

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Estimated average similarity of each row of X to each class: (n, n_classes)."""
        if not hasattr(self, "sketches_"):
            raise _not_fitted_error("this SimilarityClassifier is not fitted yet; call fit(X, y) first")
        Y, _ = queries(X, self.n_features_in_, "X")
        Phi = features(Y, self._Wt, self._bp, self.n_components_, self.projection_)
        sums = (2.0 / self.n_components_) * (Phi @ self.sketches_.T)
        return sums / np.maximum(self.class_sizes_, 1.0)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The class of highest average similarity for each row of X."""
        scores = self.decision_function(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Average similarities clipped at 0 and normalized per row (uniform where all are <= 0)."""
        s = np.maximum(self.decision_function(X), 0.0)
        tot = s.sum(axis=1, keepdims=True)
        k = s.shape[1]
        return np.where(tot > 0, s / np.where(tot > 0, tot, 1.0), 1.0 / k)

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Mean accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))
