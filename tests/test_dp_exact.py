"""numkern.kernel_sum / numkern.distance_sum and the random-feature kernels against NumPy/SciPy
float64 references, on every ISA level (conftest runs each test per level).

The references never go through BLAS: sums over records and projections are formed by NumPy's own
long-double loops (_reference.dot_rows / matmul_wide), so they are the same under every BLAS
(OpenBLAS kernels, MKL, Accelerate, BLIS), and the tolerances only have to cover numkern's error."""

import numpy as np
import pytest
from _reference import U_WIDE, WIDE, dot_rows, matmul_wide
from scipy.spatial.distance import cdist

import numkern
from numkern.dp import _kde

H = 0.7


def ref_kernel(X, Y, kernel, h, w=None):
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    D2 = cdist(Y, X, "sqeuclidean")
    K = {
        "gaussian": lambda: np.exp(-D2 / h**2),
        "laplacian": lambda: np.exp(-np.sqrt(D2) / h),
        "cauchy": lambda: 1.0 / (1.0 + D2 / h**2),
    }[kernel]()
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, np.float64)
    return dot_rows(K, w), dot_rows(np.abs(K), np.abs(w))


def ref_distance(X, Y, metric, w=None):
    name = {"l1": "cityblock", "l2": "euclidean", "sqeuclidean": "sqeuclidean"}[metric]
    D = cdist(np.asarray(Y, np.float64), np.asarray(X, np.float64), name)
    w = np.ones(D.shape[1]) if w is None else np.asarray(w, np.float64)
    return dot_rows(D, w), dot_rows(D, np.abs(w))


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "cauchy"])
@pytest.mark.parametrize("n,q,d", [(1, 1, 1), (7, 3, 5), (1001, 37, 7), (300, 130, 33), (64, 1, 64)])
def test_kernel_sum_matches_cdist_exp_sum(rng, kernel, n, q, d):
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((q, d))
    got = numkern.kernel_sum(X, Y, kernel=kernel, bandwidth=H)
    want, mag = ref_kernel(X, Y, kernel, H)
    assert got.shape == (q,) and got.dtype == np.float64
    assert np.all(np.abs(got - want) <= 1e-13 * mag + 1e-300)


@pytest.mark.parametrize("metric", ["l1", "l2", "sqeuclidean"])
@pytest.mark.parametrize("n,q,d", [(1, 1, 1), (9, 5, 3), (2000, 45, 10), (129, 33, 17)])
def test_distance_sum_matches_cdist_sum(rng, metric, n, q, d):
    X = rng.standard_normal((n, d)) * 3
    Y = rng.standard_normal((q, d)) * 3
    got = numkern.distance_sum(X, Y, metric=metric)
    want, mag = ref_distance(X, Y, metric)
    assert np.all(np.abs(got - want) <= 1e-13 * mag)


@pytest.mark.parametrize("kernel", ["gaussian", "laplacian", "cauchy", "l1", "l2", "sqeuclidean"])
def test_weights_multiply_each_term(rng, kernel):
    X = rng.standard_normal((301, 4))
    Y = rng.standard_normal((19, 4))
    w = rng.standard_normal(301)
    if kernel in ("l1", "l2", "sqeuclidean"):
        got = numkern.distance_sum(X, Y, metric=kernel, weights=w)
        want, mag = ref_distance(X, Y, kernel, w)
    else:
        got = numkern.kernel_sum(X, Y, kernel=kernel, bandwidth=1.3, weights=w)
        want, mag = ref_kernel(X, Y, kernel, 1.3, w)
    assert np.all(np.abs(got - want) <= 1e-13 * mag)


def test_float32_inputs_are_converted_exactly(rng):
    X = rng.standard_normal((500, 6)).astype(np.float32)
    Y = rng.standard_normal((21, 6)).astype(np.float32)
    got = numkern.kernel_sum(X, Y, kernel="gaussian", bandwidth=0.9)
    want, mag = ref_kernel(X.astype(np.float64), Y.astype(np.float64), "gaussian", 0.9)
    assert got.dtype == np.float64
    assert np.all(np.abs(got - want) <= 1e-13 * mag)


def test_strided_and_fortran_views_give_the_same_sums(rng):
    base = rng.standard_normal((400, 20))
    X = base[::2, ::3]  # non-contiguous
    Y = np.asfortranarray(rng.standard_normal((33, X.shape[1])))
    got = numkern.distance_sum(X, Y, metric="l2")
    want, mag = ref_distance(np.ascontiguousarray(X), np.ascontiguousarray(Y), "l2")
    assert np.all(np.abs(got - want) <= 1e-13 * mag)


def test_large_input_threads_over_queries_and_over_x(rng):
    X = rng.standard_normal((20000, 8))
    for q in (2, 300):  # few queries: split over X; many: split over query groups
        Y = rng.standard_normal((q, 8))
        got = numkern.kernel_sum(X, Y, kernel="cauchy", bandwidth=2.0)
        want, mag = ref_kernel(X, Y, "cauchy", 2.0)
        assert np.all(np.abs(got - want) <= 1e-13 * mag)


def test_far_points_underflow_to_zero_and_subnormal_values_are_kept():
    X = np.array([[0.0], [30.0]])
    Y = np.array([[0.0], [1000.0], [27.2]])
    got = numkern.kernel_sum(X, Y, kernel="gaussian", bandwidth=1.0)
    want = np.exp(-cdist(Y, X, "sqeuclidean")).sum(axis=1)
    assert got[1] == 0.0
    assert got[0] == want[0]
    # exp(-(30 - 27.2)^2) is normal, exp(-27.2^2) is about 1e-321: subnormal, must not be flushed.
    assert abs(got[2] - want[2]) <= 1e-15 * want[2]
    Xs = np.array([[0.0]])
    Ys = np.array([[27.25]])  # exp(-742.56) ~ 1e-322.5
    tiny = numkern.kernel_sum(Xs, Ys, kernel="gaussian", bandwidth=1.0)
    assert tiny > 0 and abs(tiny - np.exp(-(27.25**2))) <= 2 * 5e-324


def test_nan_propagates_and_infinite_distance_gives_zero_kernel():
    X = np.array([[0.0, 0.0], [np.nan, 1.0], [np.inf, 0.0]])
    Y = np.array([[1.0, 1.0]])
    assert np.isnan(numkern.kernel_sum(X, Y, kernel="gaussian", bandwidth=1.0)[0])
    assert np.isnan(numkern.distance_sum(X, Y, metric="l1")[0])
    got = numkern.kernel_sum(X[[0, 2]], Y, kernel="laplacian", bandwidth=1.0)
    assert got[0] == pytest.approx(np.exp(-np.sqrt(2.0)), rel=1e-15)
    assert numkern.distance_sum(X[[0, 2]], Y, metric="l2")[0] == np.inf


def test_empty_inputs_give_zeros_and_empty_results():
    assert numkern.kernel_sum(np.empty((0, 3)), np.ones((4, 3)), bandwidth=1.0).tolist() == [0.0] * 4
    assert numkern.distance_sum(np.ones((5, 3)), np.empty((0, 3))).shape == (0,)
    # d == 0: every distance is 0, every kernel value 1
    assert numkern.kernel_sum(np.empty((5, 0)), np.empty((2, 0)), bandwidth=1.0).tolist() == [5.0, 5.0]


def test_one_dimensional_query_gives_a_scalar(rng):
    X = rng.standard_normal((50, 3))
    y = rng.standard_normal(3)
    got = numkern.distance_sum(X, y, metric="l1")
    assert np.ndim(got) == 0
    assert got == pytest.approx(np.abs(X - y).sum(), rel=1e-14)


def test_inputs_are_not_modified(rng):
    X = rng.standard_normal((40, 3))
    Y = rng.standard_normal((5, 3))
    X0, Y0 = X.copy(), Y.copy()
    numkern.kernel_sum(X, Y, bandwidth=1.0)
    assert np.array_equal(X, X0) and np.array_equal(Y, Y0)


@pytest.mark.parametrize(
    "call, exc",
    [
        (lambda: numkern.kernel_sum(np.ones((3, 2)), np.ones((2, 3)), bandwidth=1.0), ValueError),
        (lambda: numkern.kernel_sum(np.ones(3), np.ones((2, 3)), bandwidth=1.0), ValueError),
        (lambda: numkern.kernel_sum(np.ones((3, 2)), np.ones((2, 2)), bandwidth=0.0), ValueError),
        (lambda: numkern.kernel_sum(np.ones((3, 2)), np.ones((2, 2)), bandwidth=np.nan), ValueError),
        (lambda: numkern.kernel_sum(np.ones((3, 2)), np.ones((2, 2)), bandwidth=1.0, kernel="rbf"), ValueError),
        (lambda: numkern.distance_sum(np.ones((3, 2)), np.ones((2, 2)), metric="cosine"), ValueError),
        (lambda: numkern.distance_sum(np.ones((3, 2)), np.ones((2, 2)), weights=np.ones(2)), ValueError),
        (lambda: numkern.distance_sum(np.array([["a"]]), np.ones((2, 1))), TypeError),
    ],
)
def test_bad_arguments_raise(call, exc):
    with pytest.raises(exc):
        call()


def _features_setup(rng, d, m, scale=2.0):
    Wt = rng.standard_normal((d, m)) * scale
    b = rng.uniform(0, 2 * np.pi, m)
    return Wt, b


U = 2.0**-53


def _projection_reference(X, Wt, b):
    """(t, E): the arguments t = X Wt + b in long double (NumPy's own loop, no BLAS) and, per
    (row, feature), a bound E on |cos computed by the kernel - cos(t)|.

    The kernel forms each argument in one chain per (row, feature): s_0 = b_j, then
    s_k = s_(k-1) + x_k w_kj for k = 1..d, with one fused multiply-add per term (AVX2, AVX-512) or a
    multiply and an add (scalar level). Each step rounds with relative error <= u = 2^-53, so
    |t_kernel - t| <= u * sum_k (|s_k| + |x_k w_kj|) to first order (running error bound,
    Higham, Accuracy and Stability of Numerical Algorithms, sec. 3.1). The partial sums here come from
    a float64 evaluation in the same order; both they and the kernel's are within d u S of the exact
    partial sums (S = |b_j| + sum_k |x_k w_kj|), which the second-order term 3 d^2 u^2 S covers.
    The cosine (1-Lipschitz) then adds its own error: the quadrant reduction subtracts k pi/2 in
    three parts; on the scalar level (no FMA) k pi/2 is rounded, within u (|t| + pi/4), and so is
    the reduced argument, within u pi/4; fdlibm's kernels on [-pi/4, pi/4] add under 2 ulp of 1,
    4 u: u (|t| + 6) in all. The reference's own error (a sequential long-double sum, then cosl)
    is below 2 (d + 2) U_WIDE (S + 1)."""
    d = X.shape[1]
    t = matmul_wide(X, Wt) + b.astype(WIDE)
    s = np.broadcast_to(b, (X.shape[0], b.size)).copy()
    run = np.abs(s)
    S = np.abs(s)
    for k in range(d):
        p = np.multiply.outer(X[:, k], Wt[k])
        s += p
        run += np.abs(s) + np.abs(p)
        S += np.abs(p)
    E = U * (run + 3 * d * d * U * S) + U * (np.abs(s) + 6) + 2 * (d + 2) * U_WIDE * (S + 1)
    return t, E


@pytest.mark.parametrize("q,d,m", [(1, 1, 32), (5, 3, 64), (37, 17, 96), (150, 300, 64)])  # last: several row passes
def test_random_feature_kernel_matches_numpy_cos(rng, q, d, m):
    """Each feature cos(w_j^T y + b_j) is within the kernel's own rounding bound of the cosine of
    the exact argument. (A float64 reference, e.g. cos(Y @ Wt + b), carries a rounding error of
    the same size that depends on the BLAS kernel NumPy runs, so it could not judge this.)"""
    Wt, b = _features_setup(rng, d, m)
    Y = rng.standard_normal((q, d)) * 3 / max(1.0, np.sqrt(d / 17))  # arguments of similar size for every d
    got = _kde.features(Y, *_kde.padded_features(Wt, b), m)
    t, E = _projection_reference(Y, Wt, b)
    assert np.all(np.abs(got - np.cos(t)) <= E)


def test_cosine_kernel_is_accurate_on_large_arguments(rng):
    Wt = np.ones((1, 32))
    b = np.zeros(32)
    Y = rng.uniform(-1e5, 1e5, (64, 1))
    got = _kde.features(Y, *_kde.padded_features(Wt, b), 32)
    # Y @ Wt is Y itself (one product by 1: exact under any BLAS), so only the cosines are compared.
    assert np.max(np.abs(got - np.cos(Y @ Wt))) <= 1e-11


_FIXED_REFERENCE = {}


@pytest.mark.parametrize("n,d,m", [(1, 1, 32), (7, 3, 64), (1001, 5, 128), (2000, 300, 64)])  # last: several chunks
def test_fixed_point_feature_sums_are_exact_integers(rng, n, d, m):
    """feature_sums returns sum_i rint(2^32 cos(w_j^T x_i + b_j)) exactly, in int64.

    Exactness: the sums equal, to the unit, the sums of the kernel's own rounded terms (the feature
    kernel shares the projection and the cosine with the summing kernel), whatever the chunking.
    Accuracy: against the terms rounded from the exact arguments (long double, no BLAS), a term can
    round the other way only where 2^32 cos(t) lies within 2^32 E of a half-integer (E from
    _projection_reference), and then moves the sum by 1; so each feature's sum is off by at most the
    number of such terms."""
    Wt, b = _features_setup(rng, d, m)
    X = np.ascontiguousarray(rng.standard_normal((n, d)))
    got = _kde.feature_sums(X, *_kde.padded_features(Wt, b))
    assert got.dtype == np.int64 and got.shape == (m,)  # m is a multiple of 32: no padding features
    terms = np.rint(np.clip(_kde.features(X, *_kde.padded_features(Wt, b), m), -1.0, 1.0) * 2.0**32).astype(np.int64)
    np.testing.assert_array_equal(got, terms.sum(axis=0))
    key = (n, d, m)
    cached = _FIXED_REFERENCE.get(key)
    if cached is None or not all(np.array_equal(c, v) for c, v in zip(cached[:3], (X, Wt, b))):
        t, E = _projection_reference(X, Wt, b)  # the same data on every ISA level: computed once
        vals = np.cos(t) * WIDE(2.0**32)
        near = np.rint(vals)
        want = near.astype(np.int64).sum(axis=0)
        ambiguous = (np.abs(np.abs(vals - near) - WIDE(0.5)) <= WIDE(2.0**32) * E.astype(WIDE)).sum(axis=0)
        cached = _FIXED_REFERENCE[key] = (X.copy(), Wt.copy(), b.copy(), want, ambiguous)
    want, ambiguous = cached[3], cached[4]
    assert np.all(np.abs(got - want) <= ambiguous)


def test_feature_sums_do_not_depend_on_thread_count(rng):
    Wt, b = _features_setup(rng, 4, 64)
    X = np.ascontiguousarray(rng.standard_normal((5000, 4)))
    a = _kde.feature_sums(X, *_kde.padded_features(Wt, b))
    before = numkern.get_num_threads()
    numkern.set_num_threads(1)
    try:
        c = _kde.feature_sums(X, *_kde.padded_features(Wt, b))
    finally:
        numkern.set_num_threads(before)
    assert np.array_equal(a, c)


def test_cpu_info_names_the_dp_kernel(isa):
    assert numkern.cpu_info()["kernels"]["dp"].endswith(isa)
