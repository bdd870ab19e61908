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
    assert np.all((p > 0) & (p < 1))  # probabilities, not one-hot rows
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


def _check_estimator(est):
    ec = pytest.importorskip("sklearn.utils.estimator_checks")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ec.check_estimator(est, expected_failed_checks=est._sklearn_expected_failed_checks(), on_skip=None)


@pytest.mark.isa_independent
@pytest.mark.parametrize(
    "params",
    [{}, {"rng": 0}, {"kernel": "laplacian", "epsilon": 0.2, "rng": 1}, {"kernel": "cauchy", "n_components": 32}],
)
def test_scikit_learn_check_estimator_passes_but_for_the_declared_checks(params):
    # on_fail="raise" (the default): any failure of an undeclared check raises here. A declared
    # check compares two noisy fits, which can agree by chance on its few rows: at least one of
    # them must fail (else the declarations are stale), not each.
    est = dp.SimilarityClassifier(**params)
    results = _check_estimator(est)
    status = {}
    for r in results:
        status.setdefault(r["check_name"], set()).add(r["status"])
    declared = est._sklearn_expected_failed_checks()
    assert len(results) >= 50 and not any("failed" in v for v in status.values())
    assert {name for name, v in status.items() if "xfail" in v} <= set(declared)
    skipped = {name for name, v in status.items() if "skipped" in v}
    assert skipped <= {"check_array_api_input", "check_classifier_data_not_an_array", "check_pipeline_consistency"}
    if "rng" in params:
        assert declared == {} and "check_fit_idempotent" in status and status["check_fit_idempotent"] == {"passed"}
    else:
        assert set(declared) == {"check_fit_idempotent", "check_supervised_y_2d", "check_classifier_data_not_an_array"}
        assert all(len(reason) > 40 for reason in declared.values())
        assert any("xfail" in status[name] for name in declared)


@pytest.mark.isa_independent
def test_binary_decision_function_is_the_positive_class_score_and_agrees_with_predict(rng):
    X, y = _blobs(rng, 2000)
    keep = y != "c"
    X, y = X[keep], y[keep]
    clf = dp.SimilarityClassifier(epsilon=5.0, n_components=256).fit(X, y)
    d = clf.decision_function(X)
    assert d.shape == (X.shape[0],)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(d > 0).astype(int)])
    p = clf.predict_proba(X)
    assert p.shape == (X.shape[0], 2)
    # the softmax of two similarities: p_1 = sigmoid(decision / T)
    np.testing.assert_allclose(p[:, 1], 1.0 / (1.0 + np.exp(-d / clf.temperature)), rtol=1e-12, atol=1e-15)
    assert clf.score(X, y) > 0.95


@pytest.mark.isa_independent
def test_predict_proba_is_the_softmax_of_the_similarities_at_the_temperature(rng):
    X, y = _blobs(rng, 3000)
    clf = dp.SimilarityClassifier(epsilon=5.0, n_components=256, rng=4)
    with pytest.warns(dp.NotPrivateWarning):
        clf.fit(X, y)
    s = clf.decision_function(X[:50])
    for t in (0.01, 0.1, 1.0):
        clf.set_params(temperature=t)
        p = clf.predict_proba(X[:50])
        ref = np.exp(s / t) / np.exp(s / t).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(p, ref, rtol=1e-12)
        np.testing.assert_allclose(clf.predict_log_proba(X[:50]), np.log(ref), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(clf.classes_[np.argmax(p, axis=1)], clf.predict(X[:50]))
        assert np.all((p > 0) & (p <= 1))
    # probabilities are real (not one-hot) and sharpen as the temperature drops
    clf.set_params(temperature=0.1)
    soft = clf.predict_proba(X[:50]).max(axis=1)
    clf.set_params(temperature=0.01)
    sharp = clf.predict_proba(X[:50]).max(axis=1)
    assert np.all(soft < 1.0) and np.all(sharp >= soft)
    # tiny temperatures do not overflow
    clf.set_params(temperature=1e-300)
    p = clf.predict_proba(X[:5])
    assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1.0)
    for bad in (0.0, -1.0, np.inf, np.nan, "1", True):
        clf.set_params(temperature=bad)
        with pytest.raises(ValueError, match="temperature"):
            clf.predict_proba(X[:5])
        with pytest.raises(ValueError, match="temperature"):
            dp.SimilarityClassifier(temperature=bad).fit(X, y)


@pytest.mark.isa_independent
def test_inputs_are_checked_with_scikit_learn_messages_without_scikit_learn(rng):
    X, y = _blobs(rng, 60)
    clf = dp.SimilarityClassifier(epsilon=2.0).fit(X, y)
    with pytest.raises(ValueError, match="Reshape your data"):
        clf.predict(X[0])
    with pytest.raises(ValueError, match="X has 1 features, but SimilarityClassifier is expecting 2 features"):
        clf.decision_function(X[:, :1])
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.score(np.ones((4, 3)), y[:4])
    with pytest.raises(ValueError, match="Complex data not supported"):
        clf.predict(X.astype(complex))
    with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(5, 0\)\) while a minimum of 1 is required"):
        dp.SimilarityClassifier().fit(np.ones((5, 0)), y[:5])
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        dp.SimilarityClassifier().fit(np.ones((0, 2)), [])
    with pytest.raises(ValueError, match="Input y contains NaN"):
        dp.SimilarityClassifier().fit(X, np.full(len(X), np.nan))
    with pytest.raises(ValueError, match="Input y contains infinity"):
        dp.SimilarityClassifier().fit(X, np.full(len(X), np.inf))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        dp.SimilarityClassifier().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="requires y to be passed"):
        dp.SimilarityClassifier().fit(X, None)
    with pytest.raises(ValueError, match="y should be a 1d array"):
        dp.SimilarityClassifier().fit(X, np.zeros((len(X), 2)))
    with pytest.raises(TypeError, match="argument must be a string or a( real)? number"):
        dp.SimilarityClassifier().fit(np.array([[{"a": 1}, 1.0]] * 4, dtype=object), [0, 1, 0, 1])
    Xo = X.astype(object)  # numbers in an object array are accepted
    assert dp.SimilarityClassifier().fit(Xo, y).predict(Xo).shape == (len(X),)
    assert dp.SimilarityClassifier().fit(X, np.where(y == "a", 1.0, 2.0)).classes_.tolist() == [1.0, 2.0]


@pytest.mark.isa_independent
def test_sparse_input_raises_a_type_error_naming_sparse_data(rng):
    sparse = pytest.importorskip("scipy.sparse")
    X, y = _blobs(rng, 40)
    for make in (sparse.csr_matrix, sparse.csr_array):
        with pytest.raises(TypeError, match="Sparse data was passed"):
            dp.SimilarityClassifier().fit(make(X), y)
    clf = dp.SimilarityClassifier().fit(X, y)
    with pytest.raises(TypeError, match="dense data is required"):
        clf.predict(sparse.csr_matrix(X))


@pytest.mark.isa_independent
def test_column_vector_labels_are_raveled_with_a_data_conversion_warning(rng):
    X, y = _blobs(rng, 60)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = dp.SimilarityClassifier(rng=2).fit(X, y[:, None])
        ref = dp.SimilarityClassifier(rng=2).fit(X, y)
    conv = [w for w in caught if "A column-vector y was passed" in str(w.message)]
    assert len(conv) == 1 and issubclass(conv[0].category, UserWarning)  # DataConversionWarning is one
    assert conv[0].filename == __file__  # points at the caller of fit
    np.testing.assert_array_equal(clf.predict(X), ref.predict(X))


@pytest.mark.isa_independent
def test_without_scikit_learn_the_errors_and_warnings_fall_back_to_builtin_classes(rng, monkeypatch):
    import sys
    import warnings

    for name in ("sklearn", "sklearn.exceptions", "sklearn.utils"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    X, y = _blobs(rng, 40)
    with pytest.raises(ValueError, match="not fitted") as info:
        dp.SimilarityClassifier().predict(X)
    assert type(info.value) is ValueError
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = dp.SimilarityClassifier().fit(X, y[:, None])
    assert [w.category for w in caught] == [UserWarning]
    assert clf.predict_proba(X).shape == (40, 3)
    kde = dp.KernelDensity(n_components=64).fit(X)
    assert np.isfinite(kde.score(X)) and kde.get_params()["n_components"] == 64
    with pytest.raises(ImportError):
        clf.__sklearn_tags__()
