"""SimilarityClassifier: one private kernel-sum sketch per class, predict by highest average similarity."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np

from . import _noise
from ._accountant import charge, check_epsilon, check_mechanism
from ._estimator import ParamsMixin, check_array, check_labels, not_fitted_error
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
    from numpy.typing import ArrayLike

    from .._validate import RngLike
    from ._accountant import Accountant


def auto_components(epsilon: float, noisy_sizes) -> int:
    """m from epsilon and the (noisy) class sizes: the DP noise of an average similarity grows like
    sqrt(m) / (epsilon n) and the random-feature error shrinks like 1 / sqrt(m), balanced at
    m ~ epsilon n (LSQ's analysis). Rounded to a power of two in [64, 4096]."""
    n = max(1.0, float(np.min(noisy_sizes)))
    m = 0.25 * epsilon * n
    return int(2 ** min(12, max(6, round(math.log2(max(m, 1.0))))))


def check_temperature(temperature) -> float:
    """The softmax temperature as a float; ValueError unless it is a finite real > 0."""
    t = temperature
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not (math.isfinite(float(t)) and float(t) > 0):
        raise ValueError(f"temperature must be a finite real > 0, got {t!r}")
    return float(t)


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


class SimilarityClassifier(ParamsMixin):
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
    temperature : float, default 0.1
        Softmax temperature of :meth:`predict_proba`, in units of average similarity (kernel values
        lie in [0, 1]): ``p_k`` is proportional to ``exp(s_k / temperature)``. Smaller is sharper;
        it changes no prediction and costs no privacy (post-processing).
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
    sketches, far cheaper than DP-SGD.

    A scikit-learn estimator without importing scikit-learn: ``get_params``/``set_params``,
    ``sklearn.base.clone``, input checks raising scikit-learn's errors and messages, binary
    ``decision_function`` of shape (n,), real ``predict_proba``. It passes
    ``sklearn.utils.estimator_checks.check_estimator`` (scikit-learn 1.9) with the tags of
    ``__sklearn_tags__`` (``poor_score``: at small epsilon the noise can dominate) and, unless
    ``rng`` is an int seed, three checks declared as expected failures because they compare two fits
    that draw fresh noise: ``check_estimator(clf,
    expected_failed_checks=clf._sklearn_expected_failed_checks())``.

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
        temperature: float = 0.1,
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
        self.temperature = temperature
        self.classes = classes
        self.rng = rng
        self.accountant = accountant
        self.mechanism = mechanism
        self.delta = delta

    def _seeded(self) -> bool:
        return isinstance(self.rng, (int, np.integer)) and not isinstance(self.rng, bool)

    def __sklearn_tags__(self):
        """scikit-learn >= 1.6 estimator tags (imported only when scikit-learn asks).

        ``non_deterministic`` unless ``rng`` is an int seed (then every fit draws the same noise);
        ``poor_score``: at small epsilon on small classes the noise can dominate the similarities, so
        scikit-learn's fixed training-accuracy bar (0.83 on 300 blobs) is not a property it has.
        """
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(poor_score=True),
            input_tags=InputTags(),
            non_deterministic=not self._seeded(),
        )

    def _sklearn_expected_failed_checks(self) -> dict[str, str]:
        """The checks of ``sklearn.utils.estimator_checks`` this estimator fails by design, with the
        reason: ``check_estimator(clf, expected_failed_checks=clf._sklearn_expected_failed_checks())``.
        Empty for an int ``rng`` (reproducible noise)."""
        if self._seeded():
            return {}
        why = (
            "compares the predictions of two fits on the same data; each fit draws fresh DP noise "
            "(rng=None or a Generator), so they differ by design (an int rng makes fits reproducible)"
        )
        return {
            "check_fit_idempotent": why,
            "check_supervised_y_2d": why,
            "check_classifier_data_not_an_array": why,
        }

    def fit(self, X: ArrayLike, y: ArrayLike) -> SimilarityClassifier:
        """Fit one private sketch per class on (X, y); returns self.

        X (n, d) must be finite; y holds one label per row (1-D; a column vector is raveled with
        scikit-learn's DataConversionWarning). Labels may be integers, integral floats, strings or
        booleans; NaN, infinite or non-integral float labels raise ValueError as in scikit-learn.

        Examples
        --------
        >>> import numpy as np
        >>> from numkern import dp
        >>> rng = np.random.default_rng(0)  # 100 records a class: the noise stays far below the gap
        >>> X = np.concatenate([rng.normal(0, 0.3, (100, 2)), rng.normal(3, 0.3, (100, 2))])
        >>> clf = dp.SimilarityClassifier(epsilon=1.0).fit(X, np.repeat(["a", "b"], 100))
        >>> print(clf.classes_, clf.n_features_in_)
        ['a' 'b'] 2
        """
        params = self._params()
        check_temperature(self.temperature)
        X = check_array(X, "SimilarityClassifier")
        y = check_labels(y, X.shape[0], "SimilarityClassifier")
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

    def _similarities(self, X) -> np.ndarray:
        if not hasattr(self, "sketches_"):
            raise not_fitted_error("this SimilarityClassifier is not fitted yet; call fit(X, y) first")
        Y = check_array(X, "SimilarityClassifier", n_features=self.n_features_in_)
        Phi = features(Y, self._Wt, self._bp, self.n_components_, self.projection_)
        sums = (2.0 / self.n_components_) * (Phi @ self.sketches_.T)
        return sums / np.maximum(self.class_sizes_, 1.0)

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Estimated average similarity of each row of X to each class.

        Returns
        -------
        ndarray
            (n, n_classes): the average kernel value between the row and the records of each class
            (noisy, so possibly slightly negative or above 1). For two classes, scikit-learn's
            binary convention: (n,), the similarity to ``classes_[1]`` minus that to ``classes_[0]``
            (positive means ``classes_[1]``).

        Examples
        --------
        >>> import numpy as np
        >>> from numkern import dp
        >>> rng = np.random.default_rng(0)  # 100 records a class: the noise stays far below the gap
        >>> X = np.concatenate([rng.normal(0, 0.3, (100, 2)), rng.normal(3, 0.3, (100, 2))])
        >>> clf = dp.SimilarityClassifier(epsilon=10.0).fit(X, np.repeat([0, 1], 100))
        >>> print(np.sign(clf.decision_function(np.array([[0.0, 0.1], [3.0, 3.1]]))))
        [-1.  1.]
        """
        s = self._similarities(X)
        return s[:, 1] - s[:, 0] if s.shape[1] == 2 else s

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The class of highest average similarity for each row of X (ties: the first class).

        Examples
        --------
        >>> import numpy as np
        >>> from numkern import dp
        >>> rng = np.random.default_rng(0)  # 100 records a class: the noise stays far below the gap
        >>> X = np.concatenate([rng.normal(0, 0.3, (100, 2)), rng.normal(3, 0.3, (100, 2))])
        >>> clf = dp.SimilarityClassifier(epsilon=10.0).fit(X, np.repeat(["a", "b"], 100))
        >>> print(clf.predict(np.array([[0.0, 0.1], [3.0, 3.1]])))
        ['a' 'b']
        """
        s = self._similarities(X)
        return self.classes_[np.argmax(s, axis=1)]

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`, computed without overflow or log(0): (n, n_classes).

        Examples
        --------
        >>> import numpy as np
        >>> from numkern import dp
        >>> rng = np.random.default_rng(0)  # 100 records a class: the noise stays far below the gap
        >>> X = np.concatenate([rng.normal(0, 0.3, (100, 2)), rng.normal(3, 0.3, (100, 2))])
        >>> clf = dp.SimilarityClassifier(epsilon=10.0).fit(X, np.repeat([0, 1, 2, 2], 50))
        >>> print(np.allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X)))
        True
        """
        s = self._similarities(X)  # NotFittedError first
        t = check_temperature(self.temperature)
        with np.errstate(over="ignore"):  # a gap over t * 1.8e308 is -inf: probability 0, not NaN
            z = (s - s.max(axis=1, keepdims=True)) / t
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities: the softmax of the average similarities divided by ``temperature``.

        ``p_k = exp(s_k / T) / sum_j exp(s_j / T)``, ``s`` the per-class average similarities of
        :meth:`decision_function` (for two classes ``p_1 = 1 / (1 + exp(-decision_function / T))``),
        so the most probable class is :meth:`predict`'s. Rows sum to 1 (entries underflow to 0 only
        where a similarity trails the largest by more than about 745 temperatures).
        A monotone score, not a calibrated probability: tune ``temperature`` on held-out log loss
        (or wrap the classifier in ``sklearn.calibration.CalibratedClassifierCV``).

        Examples
        --------
        >>> import numpy as np
        >>> from numkern import dp
        >>> rng = np.random.default_rng(0)  # 100 records a class: the noise stays far below the gap
        >>> X = np.concatenate([rng.normal(0, 0.3, (100, 2)), rng.normal(3, 0.3, (100, 2))])
        >>> clf = dp.SimilarityClassifier(epsilon=10.0).fit(X, np.repeat([0, 1], 100))
        >>> p = clf.predict_proba(np.array([[0.0, 0.1], [3.0, 3.1]]))
        >>> print(p.shape, np.allclose(p.sum(axis=1), 1.0), (p[:, 1] > 0.5).tolist())
        (2, 2) True [False, True]
        """
        return np.exp(self.predict_log_proba(X))

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Mean accuracy on (X, y).

        Examples
        --------
        >>> import numpy as np
        >>> from numkern import dp
        >>> rng = np.random.default_rng(0)  # 100 records a class: the noise stays far below the gap
        >>> X = np.concatenate([rng.normal(0, 0.3, (100, 2)), rng.normal(3, 0.3, (100, 2))])
        >>> y = np.repeat([0, 1], 100)
        >>> print(dp.SimilarityClassifier(epsilon=10.0).fit(X, y).score(X, y))
        1.0
        """
        pred = self.predict(X)
        y = check_labels(y, pred.shape[0], "SimilarityClassifier")
        return float(np.mean(pred == y))
