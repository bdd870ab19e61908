"""fwht and the sketch operators: exactness against dense references, reproducibility across runs
and thread counts, and argument checking."""

import numpy as np
import pytest
import scipy.linalg
from _reference import matmul_wide

import numkern
from numkern import _core
from numkern.sketch import SRHT, CountSketch, Gaussian, SparseSign


def _np_fwht(x, axis=0):
    """Reference butterfly in float64 NumPy (natural / Sylvester order)."""
    y = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0).copy()
    n = y.shape[0]
    h = 1
    while h < n:
        y = y.reshape((n // (2 * h), 2, h) + y.shape[1:])
        a, b = y[:, 0].copy(), y[:, 1].copy()
        y[:, 0], y[:, 1] = a + b, a - b
        y = y.reshape((n,) + y.shape[3:])
        h *= 2
    return np.moveaxis(y, 0, axis)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fwht_matches_explicit_hadamard_for_every_length_up_to_4096(rng, dtype):
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for k in range(13):
        n = 1 << k
        H = scipy.linalg.hadamard(n).astype(np.float64)
        x = rng.standard_normal(n).astype(dtype)
        X = rng.standard_normal((n, 5)).astype(dtype)
        scale = np.sqrt(n) * max(1.0, np.abs(x).max())
        np.testing.assert_allclose(numkern.fwht(x), H @ x.astype(np.float64), rtol=0, atol=tol * scale * k + tol)
        np.testing.assert_allclose(
            numkern.fwht(X, axis=0),
            H @ X.astype(np.float64),
            rtol=0,
            atol=tol * np.sqrt(n) * max(1.0, np.abs(X).max()) * k + tol,
        )
        assert numkern.fwht(x).dtype == dtype


@pytest.mark.parametrize("n,d", [(1 << 16, 1), (1 << 20, 1), (1 << 14, 33), (1 << 10, 300), (8, 5000), (1 << 17, 3)])
def test_fwht_twice_gives_n_times_x_on_large_inputs(rng, n, d):
    x = rng.standard_normal((n, d)) if d > 1 else rng.standard_normal(n)
    y = numkern.fwht(numkern.fwht(x))
    np.testing.assert_allclose(y / n, x, rtol=0, atol=1e-12 * np.log2(n))


@pytest.mark.parametrize("n,d", [(1 << 15, 1), (1 << 12, 24), (2048, 100)])
def test_fwht_matches_numpy_butterfly_on_random_large_inputs(rng, n, d):
    x = rng.standard_normal((n, d))
    np.testing.assert_allclose(numkern.fwht(x, axis=0), _np_fwht(x), rtol=0, atol=1e-11 * np.sqrt(n))
    xf = x.astype(np.float32)
    np.testing.assert_allclose(numkern.fwht(xf, axis=0), _np_fwht(xf), rtol=0, atol=3e-6 * np.sqrt(n) * np.log2(n))


def test_fwht_normalize_is_orthogonal_and_its_own_inverse(rng):
    x = rng.standard_normal((1024, 7))
    y = numkern.fwht(x, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(y, axis=0), np.linalg.norm(x, axis=0), rtol=1e-13)
    np.testing.assert_allclose(numkern.fwht(y, normalize=True), x, rtol=0, atol=1e-13)


def test_fwht_any_axis_and_layout(rng):
    x = rng.standard_normal((3, 64, 5))
    np.testing.assert_allclose(numkern.fwht(x.transpose(1, 0, 2), axis=0), _np_fwht(x.transpose(1, 0, 2)), atol=1e-12)
    for axis in (1, -2):
        np.testing.assert_allclose(numkern.fwht(x, axis=axis), _np_fwht(x, axis=axis), atol=1e-12)
    y = rng.standard_normal((4, 256))
    np.testing.assert_allclose(numkern.fwht(y, axis=-1), _np_fwht(y, axis=1), atol=1e-12)
    np.testing.assert_allclose(numkern.fwht(y.T, axis=0), _np_fwht(y.T, axis=0), atol=1e-12)  # F-order view
    z = rng.standard_normal((512, 6))[::2, ::3]  # strided
    np.testing.assert_allclose(numkern.fwht(z), _np_fwht(z), atol=1e-12)
    w = rng.standard_normal(4, dtype=np.float64)
    np.testing.assert_allclose(numkern.fwht(w.astype(np.float16)), _np_fwht(w), rtol=2e-3, atol=2e-3)
    assert numkern.fwht(np.arange(8)).dtype == np.float64


def test_fwht_unaligned_input(rng):
    xr = rng.standard_normal(1024)
    raw = np.empty(1024 * 8 + 1, dtype=np.uint8)
    un = raw[1:].view(np.float64)
    assert not un.flags.aligned
    un[:] = xr
    np.testing.assert_allclose(numkern.fwht(un), _np_fwht(xr), atol=1e-12)
    np.testing.assert_array_equal(un, xr)


def test_fwht_in_place_and_out(rng):
    x = rng.standard_normal((256, 3))
    ref = _np_fwht(x)
    out = np.empty_like(x)
    assert numkern.fwht(x, out=out) is out
    np.testing.assert_allclose(out, ref, atol=1e-12)
    y = x.copy()
    assert numkern.fwht(y, out=y) is y
    np.testing.assert_allclose(y, ref, atol=1e-12)
    x0 = x.copy()
    numkern.fwht(x)
    np.testing.assert_array_equal(x, x0)  # input not mutated


def test_fwht_nan_and_inf_propagate_to_their_column(rng):
    x = rng.standard_normal((64, 3))
    x[5, 1] = np.nan
    x[7, 2] = np.inf
    y = numkern.fwht(x)
    assert np.isfinite(y[:, 0]).all()
    assert np.isnan(y[:, 1]).all()
    assert np.isinf(y[:, 2]).all()


def test_fwht_rejects_bad_input():
    with pytest.raises(ValueError, match="power of two"):
        numkern.fwht(np.ones(6))
    with pytest.raises(ValueError, match="power of two"):
        numkern.fwht(np.ones((0, 3)))
    with pytest.raises(ValueError, match="0-d"):
        numkern.fwht(np.float64(1.0))
    with pytest.raises(TypeError):
        numkern.fwht(np.ones(4, dtype=np.complex128))
    with pytest.raises(ValueError, match="shape"):
        numkern.fwht(np.ones(4), out=np.ones(8))
    with pytest.raises(TypeError):
        numkern.fwht(np.ones(4), out=np.ones(4, dtype=np.float32))
    assert numkern.fwht(np.ones((4, 0))).shape == (4, 0)


def _dense_srht(S):
    H = scipy.linalg.hadamard(S.N).astype(np.float64)
    D = np.zeros((S.N, S.n))
    D[np.arange(S.n), S._perm] = np.where(S._neg == 1, -1.0, 1.0)
    return (H @ D)[S._rows.astype(np.int64)] / np.sqrt(S.m)


@pytest.mark.parametrize("n,m,k", [(1000, 100, 7), (1024, 1024, 3), (1500, 600, 1), (5, 3, 2), (1, 1, 1)])
def test_srht_matches_dense_operator(rng, n, m, k):
    S = SRHT(n, m, rng=rng)
    A = rng.standard_normal((n, k))
    D = _dense_srht(S)
    ref = matmul_wide(D, A)  # no BLAS: the reference does not depend on NumPy's BLAS kernel
    np.testing.assert_allclose(S @ A, ref, rtol=0, atol=1e-12 * np.sqrt(n))
    np.testing.assert_allclose(S.apply(A[:, 0]), ref[:, 0], rtol=0, atol=1e-12 * np.sqrt(n))
    Af = A.astype(np.float32)
    assert (S @ Af).dtype == np.float32
    np.testing.assert_allclose(S @ Af, matmul_wide(D, Af), rtol=0, atol=1e-5 * np.sqrt(n))
    assert S.shape == (m, n) and S.m == m


def test_srht_columns_of_a_matrix_do_not_depend_on_the_other_columns(rng):
    S = SRHT(5000, 300, rng=1)
    A = rng.standard_normal((5000, 9))
    SA = S @ A
    for j in range(9):
        np.testing.assert_array_equal(SA[:, j], (S @ np.ascontiguousarray(A[:, [j, 0]]))[:, 0])
        # a vector goes through the in-register transform: same values up to rounding
        np.testing.assert_allclose(SA[:, j], S @ A[:, j], rtol=0, atol=1e-12 * np.abs(SA).max())


def test_srht_preserves_norms_of_a_subspace(rng):
    n, d = 4096, 10
    Q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    Q[:d] = np.eye(d)  # coherent directions
    Q, _ = np.linalg.qr(Q)
    sv = np.linalg.svd(SRHT(n, 600, rng=rng) @ Q, compute_uv=False)
    assert 0.6 < sv.min() and sv.max() < 1.4


def test_gaussian_matches_its_dense_rows(rng):
    n, m = 3001, 37
    G = Gaussian(n, m, rng=7)
    A = rng.standard_normal((n, 5))
    Gd = G.rows()
    ref = matmul_wide(Gd, A)  # no BLAS
    np.testing.assert_allclose(G @ A, ref, rtol=0, atol=1e-11)
    np.testing.assert_allclose(G @ A[:, 2], ref[:, 2], rtol=0, atol=1e-11)
    assert (G @ A.astype(np.float32)).dtype == np.float32


def test_gaussian_entries_are_standard_normal_and_uncorrelated():
    import scipy.stats

    G = Gaussian(20000, 16, rng=3)
    z = G.rows() * np.sqrt(16)
    assert scipy.stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    c = np.corrcoef(z)
    assert np.abs(c - np.eye(16)).max() < 0.05
    assert abs(np.corrcoef(z[0, :-1], z[0, 1:])[0, 1]) < 0.05


def test_sparse_sketches_match_dense_operators(rng):
    n, m = 2000, 64
    A = rng.standard_normal((n, 4))
    for S in (SparseSign(n, m, nnz_per_col=8, rng=rng), CountSketch(n, m, rng=rng)):
        D = np.zeros((m, n))
        for t in range(S._idx.shape[1]):
            D[S._idx[:, t], np.arange(n)] += S._sign[:, t]
        assert (np.count_nonzero(D, axis=0) == S._idx.shape[1]).all()  # distinct rows per column
        np.testing.assert_allclose(S @ A, matmul_wide(D, A), rtol=0, atol=1e-12)  # reference without BLAS


@pytest.mark.parametrize("nnz", [1, 8])
@pytest.mark.parametrize("threads", [1, 2])
def test_sparse_sketch_tree_over_many_batches_matches_per_tile_sums(rng, nnz, threads):
    """Seven row tiles whose partials (4 MiB each) fill the C++ tree's batches two at a time, so
    subtrees outlive their batch: the result must be, bit for bit, the tiles sketched one by one and
    added in the dyadic tree of numkern.dask's merge; and near the float64 product."""
    from numkern.sketch import TILE, fold_tile_sums, merge_tile_sums

    n, d, m = 6 * TILE + 123, 128, 8192
    A = rng.standard_normal((n, d)).astype(np.float32)
    S = SparseSign(n, m, nnz_per_col=nnz, rng=7)
    before = numkern.get_num_threads()
    try:
        numkern.set_num_threads(threads)
        y = S @ A
    finally:
        numkern.set_num_threads(before)
    scale = np.float32(1) / np.float32(np.sqrt(nnz))
    nodes = {}
    for k, t0 in enumerate(range(0, n, TILE)):
        part = np.empty((m, d), np.float32)
        rows = slice(t0, t0 + TILE)
        _core.sparse_apply(A[rows], S._idx[rows], S._neg[rows].view(np.uint8), float(scale), part)
        nodes[(0, k)] = part
    np.testing.assert_array_equal(y, fold_tile_sums(merge_tile_sums(nodes)))
    exact = np.zeros((m, d))
    for t in range(nnz):
        np.add.at(exact, S._idx[:, t], S._sign[:, t, None] * A.astype(np.float64))
    np.testing.assert_allclose(y, exact, rtol=0, atol=2e-4)  # float32 sums of ~50 terms below 10


@pytest.mark.parametrize("kind", ["srht", "gaussian", "sparse", "count"])
def test_sketches_are_reproducible_across_runs_and_thread_counts(rng, kind):
    # Sizes above the kernels' serial threshold (2^24 element operations), so two threads run.
    n, k, make = {
        "srht": (1 << 16, 40, lambda r: SRHT(1 << 16, 500, rng=r)),
        "gaussian": (6000, 37, lambda r: Gaussian(6000, 70, rng=r)),
        "sparse": (1 << 16, 40, lambda r: SparseSign(1 << 16, 500, rng=r)),
        "count": (1 << 17, 130, lambda r: CountSketch(1 << 17, 500, rng=r)),
    }[kind]
    A = rng.standard_normal((n, k))
    before = numkern.get_num_threads()
    try:
        numkern.set_num_threads(1)
        y1 = make(42) @ A
        numkern.set_num_threads(2)
        y2 = make(42) @ A
        y3 = make(np.random.default_rng(42)) @ A
    finally:
        numkern.set_num_threads(before)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(y1, y3)
    assert not np.array_equal(y1, make(43) @ A)


def test_fwht_is_bit_identical_across_thread_counts(rng):
    x = rng.standard_normal((1 << 20, 3))
    v = rng.standard_normal(1 << 22)
    before = numkern.get_num_threads()
    try:
        numkern.set_num_threads(1)
        a, c = numkern.fwht(x), numkern.fwht(v)
        numkern.set_num_threads(2)
        b, d = numkern.fwht(x), numkern.fwht(v)
    finally:
        numkern.set_num_threads(before)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c, d)


@pytest.mark.isa_independent
def test_sketch_constructors_reject_bad_arguments():
    with pytest.raises(ValueError, match="m must be"):
        SRHT(100, 129)
    with pytest.raises(ValueError, match="m must be"):
        Gaussian(100, 0)
    with pytest.raises(ValueError, match="n must be"):
        SRHT(0, 1)
    with pytest.raises(ValueError, match="nnz_per_col"):
        SparseSign(100, 4, nnz_per_col=5)
    with pytest.raises(TypeError):
        SRHT(100, 10, rng="seed")
    with pytest.raises(TypeError):
        SRHT(100.0, 10)
    S = SRHT(100, 10, rng=0)
    with pytest.raises(ValueError, match="applies to arrays"):
        S @ np.ones((99, 2))
    with pytest.raises(ValueError, match="applies to arrays"):
        S @ np.ones((100, 2, 2))


# ------------------------------------------------------------------- SRHT's random permutation


@pytest.mark.isa_independent
@pytest.mark.parametrize("n", [0, 1, 2, 17, (1 << 14) + 5, (1 << 20) + 3])
def test_random_permutation_is_a_permutation_independent_of_threads(n):
    from numkern.sketch import random_permutation

    before = numkern.get_num_threads()
    try:
        outs = []
        for threads in (1, 2):
            numkern.set_num_threads(threads)
            outs.append(random_permutation(12345, n))
    finally:
        numkern.set_num_threads(before)
    assert outs[0].dtype == np.int64 and np.array_equal(np.sort(outs[0]), np.arange(n))
    assert np.array_equal(outs[0], outs[1])
    if n > 2:
        assert not np.array_equal(outs[0], random_permutation(12346, n))


@pytest.mark.isa_independent
@pytest.mark.parametrize("buckets", [1, 2, 3, 8])
def test_random_permutation_is_uniform(buckets):
    # Every one of the 4! permutations of 4 elements equally often over 24000 keys (chi-square, 23
    # degrees of freedom, p = 1e-6 at 63.3), with the elements dealt into 1 to 8 buckets: the
    # buckets' hash and each bucket's shuffle must both be uniform for this to hold.
    from itertools import permutations

    index = {p: i for i, p in enumerate(permutations(range(4)))}
    counts = np.zeros(24)
    for key in range(24000):
        counts[index[tuple(_core.random_permutation(key, 4, buckets))]] += 1
    chi2 = float(((counts - 1000.0) ** 2 / 1000.0).sum())
    assert chi2 < 63.3, (chi2, counts)
    # And at a larger n, where each element's position is uniform over 64 places.
    pos = np.zeros((64, 64))
    for key in range(6400):
        p = _core.random_permutation(key + 10**6, 64, buckets)
        pos[np.arange(64), p] += 1
    chi2 = float(((pos[:8] - 100.0) ** 2 / 100.0).sum(axis=1).max())  # 63 dof each, p = 1e-6 at 130
    assert chi2 < 130.0, chi2


@pytest.mark.parametrize("n,d", [(1, 1), (3, 7), (4, 8), (5, 9), (7, 16), (1029, 100), (70001, 33)])
@pytest.mark.parametrize("a_dtype", [np.float64, np.float32])
def test_row_residual_matches_exact_reference(rng, n, d, a_dtype):
    # The fused pass t = A u - b, g = A^T t, ||t||^2 (rows in blocks of four and one at a time)
    # against the same sums formed by math.fsum (correctly rounded) from the float64 products.
    import math

    A = rng.standard_normal((n, d)).astype(a_dtype)
    u = rng.standard_normal(d)
    b = rng.standard_normal(n)
    g = np.empty(d)
    t = np.empty(n)
    ss = _core.row_residual(A, u, b, g, t)
    A64 = A.astype(np.float64)
    t_ref = np.array([math.fsum(A64[i] * u) - b[i] for i in range(n)])
    scale = np.abs(A64) @ np.abs(u) + np.abs(b)
    assert np.all(np.abs(t - t_ref) <= 4 * d * np.finfo(np.float64).eps * scale)
    g_ref = np.array([math.fsum(A64[:, j] * t) for j in range(d)])
    g_scale = np.abs(A64).T @ np.abs(t)
    assert np.all(np.abs(g - g_ref) <= 4 * n * np.finfo(np.float64).eps * g_scale + 1e-300)
    assert ss == pytest.approx(math.fsum(t * t), rel=1e-12)
    with numkern.thread_limit(1):
        g1 = np.empty(d)
        _core.row_residual(A, u, b, g1, None)
    np.testing.assert_array_equal(g1, g)
