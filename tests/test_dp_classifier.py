"""SimilarityClassifier: accuracy on scikit-learn's bundled digits and the estimator contract."""

import numpy as np
import pytest

import numkern.dp as dp


def _digits_splits(seeds):
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, y = datasets.load_digits(return_X_y=True)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    for seed in seeds:
        yield model_selection.train_test_split(X, y, train_size=1200, test_size=597, stratify=y, random_state=seed)


@pytest.mark.isa_independent
def test_digits_accuracy_at_eps_10_is_at_least_0_82():
    accs = []
    for Xtr, Xte, ytr, yte in _digits_splits(range(4)):
        clf = dp.SimilarityClassifier("gaussian", 0.5, 10.0).fit(Xtr, ytr)
        accs.append(clf.score(Xte, yte))
    assert np.mean(accs) >= 0.82


@pytest.mark.isa_independent
def test_more_privacy_budget_does_not_hurt_accuracy_on_average():
    low, high = [], []
    for Xtr, Xte, ytr, yte in _digits_splits(range(3)):
        low.append(dp.SimilarityClassifier("gaussian", 0.5, 0.3).fit(Xtr, ytr).score(Xte, yte))
        high.append(dp.SimilarityClassifier("gaussian", 0.5, 30.0).fit(Xtr, ytr).score(Xte, yte))
    assert np.mean(high) > np.mean(low) + 0.1


def _blobs(rng, n=300):
    centers = np.array([[0.0, 0.0], [3.0, 3.0], [0.0, 3.0]])
    y = rng.integers(0, 3, n)
    return centers[y] + 0.4 * rng.standard_normal((n, 2)), np.array(["a", "b", "c"])[y]


def test_predicts_well_separated_classes_and_proba_rows_sum_to_one(rng):
    X, y = _blobs(rng, 3000)
    clf = dp.SimilarityClassifier("cauchy", 1.0, 5.0, n_components=256).fit(X, y)
    assert clf.score(X, y) > 0.95
    assert set(clf.classes_) == {"a", "b", "c"}
    p = clf.predict_proba(X[:10])
    assert p.shape == (10, 3) and np.allclose(p.sum(axis=1), 1.0)
    assert clf.decision_function(X[:4]).shape == (4, 3)


@pytest.mark.isa_independent
def test_auto_components_follow_epsilon_times_class_size():
    from numkern.dp._classifier import auto_components

    assert auto_components(1.0, [1000, 2000]) < auto_components(10.0, [1000, 2000])
    assert auto_components(1.0, [10]) == 64 and auto_components(1e6, [1e6]) == 4096


@pytest.mark.isa_independent
def test_get_params_set_params_and_sklearn_clone():
    clf = dp.SimilarityClassifier(bandwidth=0.3, epsilon=2.0, n_components=128)
    params = clf.get_params()
    assert params["bandwidth"] == 0.3 and params["n_components"] == 128 and params["kernel"] == "gaussian"
    assert clf.set_params(epsilon=4.0) is clf and clf.epsilon == 4.0
    with pytest.raises(ValueError, match="invalid parameter"):
        clf.set_params(gamma=1.0)
    base = pytest.importorskip("sklearn.base")
    twin = base.clone(clf)
    assert twin is not clf and twin.get_params() == clf.get_params()


@pytest.mark.isa_independent
def test_fit_charges_the_accountant_once_by_parallel_composition(rng):
    X, y = _blobs(rng)
    acc = dp.Accountant(1.0)
    dp.SimilarityClassifier(epsilon=1.0, accountant=acc).fit(X, y)
    assert acc.spent_epsilon == pytest.approx(1.0)
    with pytest.raises(dp.BudgetExceededError):
        dp.SimilarityClassifier(epsilon=0.1, accountant=acc).fit(X, y)


@pytest.mark.isa_independent
def test_rng_reproduces_predictions_with_a_warning(rng):
    X, y = _blobs(rng)
    with pytest.warns(dp.NotPrivateWarning):
        a = dp.SimilarityClassifier(epsilon=0.5, rng=3).fit(X, y).decision_function(X[:5])
    with pytest.warns(dp.NotPrivateWarning):
        b = dp.SimilarityClassifier(epsilon=0.5, rng=3).fit(X, y).decision_function(X[:5])
    assert np.array_equal(a, b)


@pytest.mark.isa_independent
def test_bad_input_raises_value_error(rng):
    X, y = _blobs(rng, 20)
    with pytest.raises(ValueError, match="one label per row"):
        dp.SimilarityClassifier().fit(X, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        dp.SimilarityClassifier().fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="bandwidth"):
        dp.SimilarityClassifier(bandwidth=-1).fit(X, y)
    with pytest.raises(ValueError, match="n_components"):
        dp.SimilarityClassifier(n_components="many").fit(X, y)
    with pytest.raises(ValueError, match="not fitted"):
        dp.SimilarityClassifier().predict(X)


SKLEARN_CHECKS = [
    "check_get_params_invariance",
    "check_set_params",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_dont_overwrite_parameters",
    "check_fit_score_takes_y",
    "check_estimators_unfitted",
    "check_classifiers_one_label",
    "check_fit2d_1sample",
    "check_n_features_in",
    "check_estimators_dtypes",
    "check_fit_check_is_fitted",
]


@pytest.mark.isa_independent
@pytest.mark.parametrize("check", SKLEARN_CHECKS)
def test_scikit_learn_estimator_checks_that_apply(check):
    # Accuracy checks such as check_classifiers_train assume a noiseless learner and do not apply.
    ec = pytest.importorskip("sklearn.utils.estimator_checks")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(ec, check)("SimilarityClassifier", dp.SimilarityClassifier(epsilon=5.0, n_components=64))
