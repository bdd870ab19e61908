"""DistanceSum.query_std: the analytic standard deviation of the DP noise in each answer, checked
exactly against the released nodes' weights and statistically (honesty over hundreds of fits)."""

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import numkern.dp as dp
from numkern.dp._distance import _L1Tree, _tree_quadratic

B = (-1.0, 1.0)
# inside the box, on its faces, outside it, at a cell boundary
QUERIES = np.array([[0.0, 0.0, 0.0], [0.9, -0.9, 0.5], [1.7, -2.5, 0.3], [-0.99, 0.2, 0.999], [0.3, 0.3125, -0.6]])


def _fit(metric, epsilon, seed, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.NotPrivateWarning)
        return dp.DistanceSum(metric, epsilon, B, rng=seed, **kw).fit(_data())


def _data():
    return np.clip(np.random.default_rng(11).normal(0.2, 0.5, (400, 3)), -1, 1)


def _node_weights(tree, Y):
    """The weight of every released node in each answer, through the real query path: the query on
    prefix arrays built from unit node vectors (the query is linear in the nodes, with no constant)."""
    d, L = tree.lo.size, tree.L
    h = L.bit_length() - 1
    offsets = np.concatenate([[0], np.cumsum([L >> lvl for lvl in range(h + 1)])])
    out = np.zeros((Y.shape[0], d, 2 * L - 1))
    for k in range(d):
        for n in range(2 * L - 1):
            z = np.zeros((d, 2 * L - 1))
            z[k, n] = 1.0
            unit = _L1Tree.__new__(_L1Tree)
            unit.P, unit.I = _L1Tree.prefix_arrays(
                [z[:, offsets[i] : offsets[i + 1]] for i in range(h + 1)], tree.width
            )
            unit.lo, unit.hi, unit.width, unit.L = tree.lo, tree.hi, tree.width, L
            out[:, k, n] = unit.query(Y)
    return out


@pytest.mark.parametrize("resolution", [1, 2, 16])
def test_l1_query_std_equals_the_norm_of_the_node_weights_times_the_release_variance(resolution):
    s = _fit("l1", 1.0, 0, resolution=resolution)
    w = _node_weights(s._tree, QUERIES)
    want = np.sqrt(s._tree.release.variance * np.sum(w * w, axis=(1, 2)))
    np.testing.assert_allclose(s.query_std(QUERIES), want, rtol=1e-10)


def test_l2_query_std_is_the_scaled_l1_form_at_the_projected_query():
    s = _fit("l2", 1.0, 0, resolution=8, n_projections=5)
    Z = (QUERIES - s.center_) @ s.projection_.T
    w = _node_weights(s._tree, Z)
    want = np.sqrt(np.pi / 2) / 5 * np.sqrt(s._tree.release.variance * np.sum(w * w, axis=(1, 2)))
    np.testing.assert_allclose(s.query_std(QUERIES), want, rtol=1e-9)


@pytest.mark.isa_independent
def test_the_haar_form_is_the_inverse_of_the_tree_gram_matrix():
    rng = np.random.default_rng(3)
    for h in range(6):
        L = 1 << h
        H = np.concatenate([np.kron(np.eye(L >> lvl), np.ones((1, 1 << lvl))) for lvl in range(h + 1)])
        a = rng.standard_normal((4, L))
        want = np.einsum("ij,jk,ik->i", a, np.linalg.inv(H.T @ H), a)
        np.testing.assert_allclose(_tree_quadratic(a), want, rtol=1e-12)


@pytest.mark.isa_independent
@pytest.mark.parametrize("metric", ["l1", "l2", "sqeuclidean"])
def test_query_std_follows_the_release_variances(metric):
    # Built from Release.variance only: another mechanism's variance carries through unchanged.
    s = _fit(metric, 1.0, 1, **({"n_projections": 8} if metric == "l2" else {}))
    before = s.query_std(QUERIES)
    for rel in [s._tree.release] if metric != "sqeuclidean" else [s._count, s._sum, s._sumsq]:
        rel.variance *= 9.0
    np.testing.assert_allclose(s.query_std(QUERIES), 3.0 * before, rtol=1e-12)
    assert np.all(before > 0)


@pytest.mark.isa_independent  # statistical
@pytest.mark.parametrize("metric", ["l1", "l2", "sqeuclidean"])
def test_query_std_is_honest_rms_over_300_fits(metric):
    # Seeded fits (independent seeds, reproducible): the RMS error of each fixed query against the
    # noiseless answer of the same structure, over the root mean square of the stated stds.
    X = _data()
    kw = {"resolution": 64} if metric != "sqeuclidean" else {}
    if metric == "l2":
        kw["n_projections"] = 16
    if metric == "sqeuclidean":
        noiseless = cdist(QUERIES, X, "sqeuclidean").sum(axis=1)
    elif metric == "l1":
        noiseless = _fit(metric, 1e6, 0, **kw).query(QUERIES)  # noise 1e-6 of the eps = 0.5 noise
    errs, stds = [], []
    for seed in range(300):
        s = _fit(metric, 0.5, 1000 + seed, **kw)
        if metric == "l2":  # the projection is drawn from the seed before the noise: the same one
            ref = _fit(metric, 1e6, 1000 + seed, **kw)
            assert np.array_equal(ref.projection_, s.projection_)
            noiseless = ref.query(QUERIES)
        errs.append(s.query(QUERIES) - noiseless)
        stds.append(s.query_std(QUERIES))
    ratio = np.sqrt(np.mean(np.square(errs), axis=0)) / np.sqrt(np.mean(np.square(stds), axis=0))
    print(metric, "RMS error / stated std:", np.round(ratio, 3))
    assert np.all(np.abs(ratio - 1) <= 0.15), ratio
    assert abs(np.sqrt(np.mean(np.square(ratio))) - 1) <= 0.10, ratio  # pooled


@pytest.mark.isa_independent
def test_query_std_shapes_errors_and_unfitted_structures():
    s = dp.DistanceSum("sqeuclidean", 1.0, B)
    with pytest.raises(ValueError, match="not fitted"):
        s.query_std(QUERIES)
    s.fit(_data())
    assert np.ndim(s.query_std(QUERIES[0])) == 0 and s.query_std(QUERIES[0]) == s.query_std(QUERIES)[0]
    assert s.query_std(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match="shape"):
        s.query_std(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        s.query_std(np.full((1, 3), np.nan))
    with pytest.raises(TypeError, match="dtype"):
        s.query_std(QUERIES.astype(complex))
