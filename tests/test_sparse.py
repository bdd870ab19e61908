"""SciPy sparse input to the sketch operators and to numkern.lstsq, the solver controls (x0,
atol/btol, maxiter, the stop reason) and Sketch.aslinearoperator. References are dense float64
NumPy computations of the same operator or problem."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from test_fuzz_sketch import _dense

import numkern
from numkern import _core
from numkern.sketch import SRHT, CountSketch, Gaussian, SparseSign

OPS = {
    "srht": lambda n, m: SRHT(n, m, rng=1),
    "gaussian": lambda n, m: Gaussian(n, m, rng=1),
    "sparse_sign": lambda n, m: SparseSign(n, m, nnz_per_col=min(4, m), rng=1),
    "countsketch": lambda n, m: CountSketch(n, m, rng=1),
}
FORMATS = ("csr", "csc", "coo")


def _random_sparse(n, d, density, seed, dtype=np.float64):
    return sp.random_array((n, d), density=density, format="csr", dtype=dtype, rng=np.random.default_rng(seed))


def _np_sparse_sign_rows(key, j0, count, m, s):
    """NumPy reference of the sparse sign stream (splitmix64 at counter (j << 24) + (attempt << 8) + t)."""
    golden = np.uint64(0x9E3779B97F4A7C15)

    def mix(x):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))

    j = np.arange(j0, j0 + count, dtype=np.uint64)
    attempt = np.zeros(count, dtype=np.uint64)
    idx = np.empty((count, s), dtype=np.int64)
    neg = np.empty((count, s), dtype=bool)
    todo = np.arange(count)
    with np.errstate(over="ignore"):
        while todo.size:
            base = (j[todo] << np.uint64(24)) + (attempt[todo] << np.uint64(8))
            for t in range(s):
                h = mix(np.uint64(key) + (base + np.uint64(t)) * golden)
                idx[todo, t] = ((h >> np.uint64(32)) * np.uint64(m)) >> np.uint64(32)
                neg[todo, t] = (h & np.uint64(1)) == 1
            srt = np.sort(idx[todo], axis=1)
            todo = todo[(srt[:, 1:] == srt[:, :-1]).any(axis=1)] if s > 1 else todo[:0]
            attempt[todo] += np.uint64(1)
    return idx, neg


@pytest.mark.parametrize(
    ("key", "j0", "count", "m", "s"),
    [(123, 0, 3000, 64, 8), (2**63 + 5, 77, 2000, 9, 8), (5, 0, 500, 3, 3), (1, 4, 50, 40, 20)],
)
def test_sparse_sign_draw_matches_numpy_stream(key, j0, count, m, s):
    idx, neg = _core.sparse_sign_draw(key, j0, count, m, s)
    ref_idx, ref_neg = _np_sparse_sign_rows(key, j0, count, m, s)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(neg.view(bool), ref_neg)


# ------------------------------------------------------------------------------------- operators


@pytest.mark.parametrize("kind", list(OPS))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sketch_of_sparse_matches_dense_reference(kind, fmt, dtype, isa):
    n, d, m = 300, 7, 40
    A = _random_sparse(n, d, 0.1, 3, dtype).asformat(fmt)
    S = OPS[kind](n, m)
    Y = S @ A
    assert isinstance(Y, np.ndarray) and Y.shape == (m, d) and Y.dtype == dtype
    Ad = A.toarray().astype(np.float64)
    D = _dense(S)
    ref = D @ Ad
    u = 2.0**-24 if dtype == np.float32 else 2.0**-53
    bound = 4 * (n + 2) * u * (np.abs(D) @ np.abs(Ad)) + 1e-300
    assert (np.abs(Y - ref) <= bound).all()
    # The same as the dense operand: bit for bit for SRHT and Gaussian (the dense kernel on column
    # blocks), within rounding for the sparse sketches (a different summation order past one tile).
    dense = S @ A.toarray()
    if kind in ("srht", "gaussian"):
        np.testing.assert_array_equal(Y, dense)
    else:
        np.testing.assert_allclose(Y, dense, rtol=0, atol=float(bound.max()))
    # Every accepted format gives the same result.
    np.testing.assert_array_equal(Y, S @ A.tocsr())


@pytest.mark.parametrize("kind", ["sparse_sign", "countsketch"])
def test_sparse_sketch_spans_tiles(kind, isa):
    n, d, m = 3 * int(numkern.sketch.TILE) + 17, 33, 64
    A = _random_sparse(n, d, 0.05, 5)
    S = OPS[kind](n, m)
    ref = _dense(S) @ A.toarray()
    np.testing.assert_allclose(S @ A, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_sparse_sketch_is_thread_independent(isa):
    # 2.4M stored entries x 8 and 2048 sketch rows: several column strips and enough work to run them
    # on several threads (small sketches run serially).
    n, d, m = 40_000, 200, 2048
    A = _random_sparse(n, d, 0.3, 5)
    S = SparseSign(n, m, nnz_per_col=8, rng=1)
    threads = numkern.get_num_threads()
    out = []
    for nt in (1, max(2, threads)):
        numkern.set_num_threads(nt)
        try:
            out.append(S @ A)
        finally:
            numkern.set_num_threads(threads)
    np.testing.assert_array_equal(out[0], out[1])
    dense = S @ A.toarray()
    np.testing.assert_allclose(out[0], dense, rtol=0, atol=1e-12 * np.abs(dense).max())


def _canonical(indptr, indices, d):
    """Reference for the kernels' structure check, one row at a time."""
    nnz = len(indices)
    if indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0):
        return False
    for i in range(len(indptr) - 1):
        row = indices[indptr[i] : indptr[i + 1]]
        if len(row) and (row.min() < 0 or row.max() >= d or np.any(np.diff(row) <= 0)):
            return False
    return True


@pytest.mark.isa_independent
@pytest.mark.parametrize("n", [7, 150_000])  # one range of rows; many, checked in parallel
def test_csr_structure_check_matches_reference(n):
    # Short rows of random length (including empty ones) with one spoiled entry or row pointer at a
    # time, placed at row starts, row ends, inside rows and at the ends of the array.
    rng = np.random.default_rng(n)
    d = 50
    A = sp.random_array((n, d), density=min(0.99, 3 / d), format="csr", rng=rng)
    A.sort_indices()
    ptr0, ind0 = A.indptr.astype(np.int64), A.indices.astype(np.int32)
    data = np.ones(len(ind0))
    u = np.ones(d)
    nonempty = np.flatnonzero(np.diff(ptr0) > 0)
    starts = ptr0[nonempty]
    ends = ptr0[nonempty + 1] - 1
    spots = {0, len(ind0) - 1, *rng.choice(starts, 6), *rng.choice(ends, 6), *rng.integers(0, len(ind0), 6)}
    cases = [(ptr0, ind0)]
    for k in sorted(spots):
        for value in (ind0[k - 1] if k > 0 else 0, ind0[k] + 1, d, -1, 0):
            ind = ind0.copy()
            ind[k] = value
            cases.append((ptr0, ind))
    for i in (*rng.integers(1, n, 4), n - 1):
        for delta in (-1, 1):
            ptr = ptr0.copy()
            ptr[i] = max(0, ptr[i] + delta)
            cases.append((ptr, ind0))
    ptr = ptr0.copy()
    ptr[-1] -= 1
    cases.append((ptr, ind0))
    results = []
    for ptr, ind in cases:
        expect = _canonical(ptr, ind, d)
        results.append(expect)
        if expect:
            _core.csr_row_residual(ptr, ind, data, u, None, None, None)
        else:
            with pytest.raises(ValueError, match="canonical CSR"):
                _core.csr_row_residual(ptr, ind, data, u, None, None, None)
    assert results[0] and results.count(False) > len(cases) // 2


def test_sparse_with_duplicates_unsorted_and_explicit_zeros(isa):
    # A COO with repeated coordinates (summed), an unsorted CSR and stored zeros: same as the dense matrix.
    rows = np.array([0, 0, 3, 3, 5, 1, 0])
    cols = np.array([1, 1, 0, 2, 2, 0, 2])
    vals = np.array([1.0, 2.0, -1.0, 0.0, 4.0, 3.0, 0.5])
    A = sp.coo_matrix((vals, (rows, cols)), shape=(6, 3))
    un = sp.csr_matrix((np.array([0.5, 3.0]), np.array([2, 0]), np.array([0, 2, 2, 2, 2, 2, 2])), shape=(6, 3))
    before = (A.data.copy(), A.row.copy(), A.col.copy())
    for S in (SparseSign(6, 4, nnz_per_col=2, rng=0), SRHT(6, 4, rng=0)):
        np.testing.assert_allclose(S @ A, S @ A.toarray(), atol=1e-14)
        np.testing.assert_allclose(S @ un, S @ un.toarray(), atol=1e-14)
    np.testing.assert_array_equal(A.data, before[0])
    np.testing.assert_array_equal(A.row, before[1])
    np.testing.assert_array_equal(A.col, before[2])


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: sp.lil_matrix((10, 3)), TypeError, "format 'lil'"),
        (lambda: sp.dok_array((10, 3)), TypeError, "format 'dok'"),
        (lambda: sp.random_array((10, 3), density=0.5, format="csr", dtype=np.complex128, rng=0), TypeError, "complex"),
        (lambda: sp.csr_array(np.ones((11, 3))), ValueError, "applies to arrays of shape"),
        (lambda: sp.csr_array(np.array([[np.nan, 1.0]] * 10)), ValueError, "NaN or inf"),
        (lambda: sp.csr_array(np.array([[np.inf, 1.0]] * 10)), ValueError, "NaN or inf"),
    ],
)
def test_sketch_rejects_bad_sparse_input(make, exc, match):
    A = make()
    for S in (SparseSign(10, 4, nnz_per_col=2, rng=0), SRHT(10, 4, rng=0)):
        with pytest.raises(exc, match=match):
            S @ A


def test_sparse_int_and_bool_data_are_promoted():
    A = sp.csr_array(np.arange(30).reshape(10, 3) % 4)
    S = CountSketch(10, 4, rng=0)
    y = S @ A
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, S @ A.toarray().astype(np.float64))
    np.testing.assert_array_equal(S @ sp.csr_array(np.eye(10, 3, dtype=bool)), S @ np.eye(10, 3))
    with pytest.raises(TypeError, match="float32/float64 expected"):
        S @ sp.csr_array(np.eye(10, 3, dtype=np.longdouble))


@pytest.mark.parametrize("kind", list(OPS))
def test_aslinearoperator_matches_the_dense_operator(kind):
    n, m = 50, 12
    S = OPS[kind](n, m)
    L = S.aslinearoperator()
    D = _dense(S)
    rng = np.random.default_rng(0)
    x, y, X, Y = (
        rng.standard_normal(n),
        rng.standard_normal(m),
        rng.standard_normal((n, 3)),
        rng.standard_normal((m, 2)),
    )
    assert L.shape == (m, n) and L.dtype == np.float64
    np.testing.assert_allclose(L.matvec(x), D @ x, atol=1e-12)
    np.testing.assert_allclose(L.rmatvec(y), D.T @ y, atol=1e-5 if kind == "gaussian" else 1e-12)
    np.testing.assert_allclose(L.matmat(X), D @ X, atol=1e-12)
    np.testing.assert_allclose(L.rmatmat(Y), D.T @ Y, atol=1e-5 if kind == "gaussian" else 1e-12)


@pytest.mark.parametrize("kind", list(OPS))
@pytest.mark.parametrize("n", [1, 511, 513, 1300])
def test_transposed_kernels_match_the_dense_operator_across_blocks(kind, n):
    """S^T V from the C++ transposed kernels against the dense S built from the sketch's state (the
    Hadamard matrix, the drawn signs and rows), with n on both sides of the SRHT's 512-row blocks and
    across the Gaussian's 1024-column tiles; k = 1 (the vector path) and k = 5."""
    m = min(37, 1 << max(0, (n - 1).bit_length()))
    S = OPS[kind](n, m)
    L = S.aslinearoperator()
    D = _dense(S)
    rng = np.random.default_rng(n)
    Y = rng.standard_normal((m, 5))
    got = L.rmatmat(Y)
    assert got.shape == (n, 5) and got.dtype == np.float64
    np.testing.assert_allclose(got, D.T @ Y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(L.rmatvec(Y[:, 1]), D.T @ Y[:, 1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(L.rmatmat(np.asfortranarray(Y[:, :2])), D.T @ Y[:, :2], rtol=1e-12, atol=1e-12)
    assert np.array_equal(L.rmatvec(np.arange(m)), L.rmatvec(np.arange(m, dtype=np.float64)))


@pytest.mark.parametrize("kind", list(OPS))
def test_transposed_kernels_give_the_same_bits_at_one_and_two_threads(kind):
    n = 20000 if kind == "gaussian" else 200000
    S = OPS[kind](n, 64)
    L = S.aslinearoperator()
    Y = np.random.default_rng(5).standard_normal((64, 3))
    with numkern.thread_limit(1):
        one, one_v = L.rmatmat(Y), L.rmatvec(Y[:, 0])
    with numkern.thread_limit(2):
        two, two_v = L.rmatmat(Y), L.rmatvec(Y[:, 0])
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one_v, two_v)
    assert np.all(np.isfinite(one)) and np.count_nonzero(one) > n  # every row written


@pytest.mark.isa_independent
def test_transposed_kernels_check_their_arguments():
    S = SRHT(100, 8, rng=0)
    v, out = np.ones((8, 2)), np.empty((100, 2))
    srht = lambda **kw: _core.srht_transpose(  # noqa: E731
        kw.get("v", v),
        kw.get("N", S.N),
        kw.get("perm", S._perm),
        S._neg,
        kw.get("rows", S._rows),
        1.0,
        kw.get("out", out),
    )
    srht()  # the valid call
    with pytest.raises(ValueError, match="permutation"):
        srht(perm=np.zeros(100, np.int64))
    with pytest.raises(ValueError, match="perm out of range"):
        srht(perm=np.arange(1, 101, dtype=np.int64))
    with pytest.raises(ValueError, match="rows out of range"):
        srht(rows=np.full(8, S.N, np.uint32))
    with pytest.raises(ValueError, match="power of two"):
        srht(N=64)
    with pytest.raises(ValueError, match="must not overlap"):
        srht(v=out[:8], out=out)
    with pytest.raises(TypeError, match="float64"):
        srht(v=v.astype(np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        srht(out=np.empty((2, 100)).T)
    with pytest.raises(ValueError, match="same number of columns"):
        srht(out=np.empty((100, 3)))
    with pytest.raises(ValueError, match="writeable"):
        ro = np.empty((100, 2))
        ro.flags.writeable = False
        srht(out=ro)
    with pytest.raises(ValueError, match="at least one row"):
        _core.gaussian_transpose(np.ones((0, 2)), 1, 1.0, out)
    P = SparseSign(100, 8, nnz_per_col=3, rng=0)
    with pytest.raises(ValueError, match="idx out of range"):
        _core.sparse_transpose(v, np.full_like(P._idx, 8), P._neg.view(np.uint8), 1.0, out)
    with pytest.raises(ValueError, match="a row per row of out"):
        _core.sparse_transpose(v, P._idx[:99], P._neg.view(np.uint8)[:99], 1.0, out)
    before = v.copy()
    _core.sparse_transpose(v, P._idx, P._neg.view(np.uint8), 1.0, out)
    np.testing.assert_array_equal(v, before)  # the input is read, never written


@pytest.mark.isa_independent
def test_dense_paths_do_not_import_scipy():
    code = (
        "import sys, numpy as np, numkern\n"
        "A = np.random.default_rng(0).standard_normal((5000, 4)); b = A.sum(1)\n"
        "numkern.lstsq(A, b, method='precondition', sketch='sparse_sign', rng=0, atol=1e-12)\n"
        "numkern.sketch.SRHT(5000, 16, rng=0) @ A\n"
        "assert not any(k == 'scipy' or k.startswith('scipy.') for k in sys.modules), 'scipy imported'\n"
    )
    # The child imports the same numkern as this process (an installed wheel, the in-tree build or
    # the sanitizer build) and keeps the rest of the environment, which carries the sanitizer
    # runtime preload. scipy stays importable there, so the assertion checks that nothing imports it.
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(numkern.__file__)))
    env = dict(os.environ, PYTHONPATH=package_parent)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=package_parent)


# ------------------------------------------------------------------------------------- lstsq


def _problem(n, d, density, cond, seed, k=None):
    rng = np.random.default_rng(seed)
    A = _random_sparse(n, d, density, seed)
    # Every column gets at least one entry so A has full column rank; cond via column scaling.
    extra = sp.csr_array((rng.standard_normal(d) + 3.0, (rng.integers(0, n, d), np.arange(d))), shape=(n, d))
    A = (A + extra) @ sp.diags_array(np.logspace(0, math.log10(cond), d))
    x = rng.standard_normal(d if k is None else (d, k))
    b = A @ x + 0.1 * rng.standard_normal(n if k is None else (n, k))
    return sp.csr_array(A), b


@pytest.mark.parametrize("sketch", ["sparse_sign", "countsketch", "srht", "gaussian"])
@pytest.mark.parametrize("cond", [1.0, 1e6])
def test_lstsq_sparse_precondition_equals_dense(sketch, cond, isa):
    A, b = _problem(4000, 20, 0.02, cond, 1)
    Ad = A.toarray()
    x_ref = np.linalg.lstsq(Ad, b, rcond=None)[0]
    res = numkern.lstsq(A, b, method="precondition", sketch=sketch, rng=0)
    dense = numkern.lstsq(Ad, b, method="precondition", sketch=sketch, rng=0)
    assert res.method == "precondition" and res.reason in ("converged", "refined")
    err = np.linalg.norm(res.x - x_ref) / np.linalg.norm(x_ref)
    assert err <= 1e-9 * max(1.0, cond * 1e-4), err
    assert np.linalg.norm(res.x - dense.x) / np.linalg.norm(dense.x) <= 1e-9 * max(1.0, cond * 1e-4)
    assert math.isclose(res.residual_norm, np.linalg.norm(Ad @ res.x - b), rel_tol=1e-10)


@pytest.mark.parametrize("fmt", FORMATS)
def test_lstsq_sparse_formats_and_methods(fmt, isa):
    A, b = _problem(3000, 8, 0.05, 10.0, 2, k=2)
    A = A.asformat(fmt)
    Ad = A.toarray()
    x_ref = np.linalg.lstsq(Ad, b, rcond=None)[0]
    for method in ("precondition", "direct", "auto"):
        res = numkern.lstsq(A, b, method=method, rng=0)
        np.testing.assert_allclose(res.x, x_ref, rtol=1e-9, atol=1e-12)
    sk = numkern.lstsq(A, b, method="sketch", rng=0)
    sk_dense = numkern.lstsq(Ad, b, method="sketch", sketch="sparse_sign", rng=0)
    assert sk.sketch_rows == 64 and sk.reason == "solved"
    np.testing.assert_allclose(sk.x, sk_dense.x, rtol=1e-10, atol=1e-12)
    r_ref = np.linalg.norm(Ad @ x_ref - b, axis=0)
    assert (np.linalg.norm(Ad @ sk.x - b, axis=0) <= 1.5 * r_ref).all()


def test_lstsq_sparse_weights_match_dense(isa):
    A, b = _problem(2000, 6, 0.05, 100.0, 3)
    w = np.random.default_rng(4).uniform(0, 2, 2000)
    res = numkern.lstsq(A, b, weights=w, method="precondition", rng=0)
    sw = np.sqrt(w)
    x_ref = np.linalg.lstsq(A.toarray() * sw[:, None], b * sw, rcond=None)[0]
    np.testing.assert_allclose(res.x, x_ref, rtol=1e-9)


def test_lstsq_sparse_float32_and_rank_deficient(isa):
    A, b = _problem(2000, 6, 0.05, 10.0, 5)
    res = numkern.lstsq(A.astype(np.float32), b.astype(np.float32), method="precondition", rng=0)
    assert res.x.dtype == np.float32
    np.testing.assert_allclose(
        res.x,
        np.linalg.lstsq(
            A.toarray().astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64), rcond=None
        )[0],
        rtol=1e-5,
    )
    # A zero column: the minimum-norm solution, as LAPACK's.
    Az = sp.csr_array(A.toarray() * (np.arange(6) != 2))
    res = numkern.lstsq(Az, b, method="precondition", rng=0)
    np.testing.assert_allclose(res.x, np.linalg.lstsq(Az.toarray(), b, rcond=None)[0], rtol=1e-9, atol=1e-12)
    assert res.x[2] == 0 or abs(res.x[2]) < 1e-12


@pytest.mark.parametrize(
    ("A", "b", "exc", "match"),
    [
        (sp.lil_matrix((10, 3)), np.ones(10), TypeError, "format 'lil'"),
        (sp.csr_array((10, 3), dtype=np.complex128), np.ones(10), TypeError, "complex"),
        (sp.csr_array(np.ones((10, 3))), np.ones(9), ValueError, "b must have shape"),
        (sp.csr_array(np.array([[np.nan, 1.0, 2.0]] * 10)), np.ones(10), ValueError, "NaN or inf"),
        (sp.csr_array(np.ones((10, 3))), sp.lil_matrix(np.ones((10, 1))), TypeError, "format 'lil'"),
    ],
)
def test_lstsq_rejects_bad_sparse_input(A, b, exc, match):
    with pytest.raises(exc, match=match):
        numkern.lstsq(A, b)


def test_lstsq_sparse_rhs_is_densified():
    A, b = _problem(500, 4, 0.1, 1.0, 6)
    res = numkern.lstsq(A, sp.csc_array(b[:, None]), method="direct")
    np.testing.assert_allclose(res.x[:, 0], np.linalg.lstsq(A.toarray(), b, rcond=None)[0], rtol=1e-12)


# ------------------------------------------------------------------------------------- controls


@pytest.mark.parametrize("dense", [False, True])
def test_atol_btol_are_lsqr_tests(dense, isa):
    A, b = _problem(5000, 30, 0.02, 1e4, 7)
    Ad = A.toarray()
    op = Ad if dense else A
    anorm = np.linalg.norm(Ad)
    for atol in (1e-4, 1e-8, 1e-12):
        res = numkern.lstsq(op, b, method="precondition", atol=atol, btol=0.0, rng=0)
        r = b - Ad @ res.x
        assert res.reason == "converged"
        rn, xn = np.linalg.norm(r), np.linalg.norm(res.x)
        # LSQR's tests with btol = 0: ||r|| <= atol ||A|| ||x|| or ||A^T r|| <= atol ||A|| ||r||.
        assert rn <= 1.01 * atol * anorm * xn or np.linalg.norm(Ad.T @ r) <= 1.01 * atol * anorm * rn
    loose = numkern.lstsq(op, b, method="precondition", atol=1e-3, btol=0.0, rng=0)
    tight = numkern.lstsq(op, b, method="precondition", atol=1e-12, btol=0.0, rng=0)
    assert loose.iterations < tight.iterations
    # A consistent system stops on ||r|| <= btol ||b|| + atol ||A|| ||x||.
    bc = Ad @ np.ones(30)
    res = numkern.lstsq(op, bc, method="precondition", atol=0.0, btol=1e-6, rng=0)
    assert res.reason == "converged"
    assert np.linalg.norm(bc - Ad @ res.x) <= 1e-6 * np.linalg.norm(bc)


def test_x0_warm_start_and_maxiter_reason(isa):
    A, b = _problem(5000, 30, 0.02, 1e6, 8)
    x_ref = np.linalg.lstsq(A.toarray(), b, rcond=None)[0]
    cold = numkern.lstsq(A, b, method="precondition", atol=1e-10, btol=0.0, rng=0)
    warm = numkern.lstsq(A, b, x0=x_ref, atol=1e-10, btol=0.0, rng=0)
    assert warm.method == "precondition" and warm.iterations < cold.iterations
    np.testing.assert_allclose(warm.x, x_ref, rtol=1e-8)
    capped = numkern.lstsq(A, b, method="precondition", maxiter=1, atol=1e-14, btol=0.0, rng=0)
    assert capped.reason == "maxiter" and capped.iterations == 1
    default = numkern.lstsq(A, b, method="precondition", rng=0)
    assert default.reason in ("converged", "refined")
    with pytest.raises(ValueError, match="x0 must have the shape"):
        numkern.lstsq(A, b, x0=np.ones(29))
    with pytest.raises(ValueError, match="does not iterate"):
        numkern.lstsq(A, b, method="direct", x0=x_ref)
    with pytest.raises(ValueError, match="atol"):
        numkern.lstsq(A, b, atol=-1.0)
    with pytest.raises(ValueError, match="does not iterate"):
        numkern.lstsq(A, b, method="sketch", atol=1e-8)
    with pytest.raises(ValueError, match="btol"):
        numkern.lstsq(A, b, btol=np.nan)
    with pytest.raises(ValueError, match="NaN or inf"):
        numkern.lstsq(A, b, x0=np.full(30, np.nan))


def test_refined_reason_on_ill_conditioned_dense(isa):
    # cond 1e10 with mixed singular directions: CG alone stops at its float64 floor.
    rng = np.random.default_rng(9)
    q1, q2 = np.linalg.qr(rng.standard_normal((4000, 20)))[0], np.linalg.qr(rng.standard_normal((20, 20)))[0]
    A = (q1 * np.logspace(0, -10, 20)) @ q2
    b = A @ rng.standard_normal(20) + rng.standard_normal(4000)
    res = numkern.lstsq(A, b, method="precondition", rng=0)
    assert res.reason == "refined"
    assert numkern.lstsq(A, b, method="direct").reason == "solved"


# ------------------------------------------------------------------------------------- float32 storage


@pytest.mark.parametrize("cond", [1e4, 1e8])
@pytest.mark.parametrize("r_scale", [0.0, 1.0])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("d", [16, 13])
def test_float32_stored_A_reaches_float64_accuracy(cond, r_scale, sparse, d, isa):
    """A float32 A with a float64 b: the solution of the float32-stored problem to 1e-10, judged
    against its exact (rational) solution. d = 13 leaves a partial vector at the end of each row."""
    from _lstsq_families import exact_lstsq, incoherent

    P = incoherent(np.random.default_rng(int(math.log10(cond)) * 7 + 1), 4096, d, cond)
    A32 = P.A.astype(np.float32)
    b = A32.astype(np.float64) @ P.x + r_scale * (P.b - P.A @ P.x)
    x_exact = exact_lstsq(A32.astype(np.float64), b)
    res = numkern.lstsq(sp.csr_array(A32) if sparse else A32, b, method="precondition", rng=0)
    assert res.x.dtype == np.float64 and res.reason in ("converged", "refined")
    assert np.linalg.norm(res.x - x_exact) / np.linalg.norm(x_exact) <= 1e-10


def test_float32_sparse_rank_deficient_is_sketched_in_float64(isa):
    # A float32 sketch's rounding noise passed for rank here and gave x ~ 1e12 (found by fuzzing).
    A = sp.csr_array(np.array([[0, 0, -0.62327445, 0.04132598], [0, 0, 0, 0]], dtype=np.float32))
    b = np.random.default_rng(0).standard_normal((2, 2))
    res = numkern.lstsq(A, b, method="precondition", sketch="gaussian", rng=0)
    x_ref = np.linalg.pinv(A.toarray().astype(np.float64)) @ b
    np.testing.assert_allclose(res.x, x_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.residual_norm, np.linalg.norm(A.toarray() @ res.x - b, axis=0), rtol=1e-10)


def test_float32_stored_A_is_not_copied_to_float64():
    import tracemalloc

    rng = np.random.default_rng(0)
    A = rng.standard_normal((1 << 17, 64)).astype(np.float32)
    b = A.astype(np.float64) @ np.ones(64) + rng.standard_normal(1 << 17)
    numkern.lstsq(A[:1000], b[:1000], method="precondition", rng=0)  # first-call allocations
    tracemalloc.start()
    try:
        res = numkern.lstsq(A, b, method="precondition", rng=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A float64 copy alone would be 2 * A.nbytes; the solver keeps a few float64 n-vectors and
    # sketches through float64 column blocks of at most half of A.nbytes.
    assert peak < A.nbytes, peak
    x_ref = np.linalg.lstsq(A.astype(np.float64), b, rcond=None)[0]
    np.testing.assert_allclose(res.x, x_ref, rtol=1e-10)


def test_float32_A_and_b_give_float32_and_weights_keep_float32(isa):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((3000, 5)).astype(np.float32)
    b = rng.standard_normal(3000).astype(np.float32)
    w = rng.uniform(0.5, 2, 3000)
    res = numkern.lstsq(A, b, weights=w, method="precondition", rng=0)
    assert res.x.dtype == np.float32
    sw = np.sqrt(w)
    Aw = (A * sw.astype(np.float32)[:, None]).astype(np.float64)  # the float32-stored weighted A
    x_ref = np.linalg.lstsq(Aw, b.astype(np.float64) * sw, rcond=None)[0]
    np.testing.assert_allclose(res.x, x_ref.astype(np.float32), rtol=2e-7)


@pytest.mark.parametrize("kind", list(OPS))
@pytest.mark.parametrize("k", [1, 5, 9])
def test_apply_widened_is_the_float64_sketch(kind, k, isa):
    n, m = 3 * int(numkern.sketch.TILE) + 5, 48
    A = np.random.default_rng(2).standard_normal((n, k)).astype(np.float32)
    S = OPS[kind](n, m)
    y = S.apply_widened(A)
    ref = S @ A.astype(np.float64)
    assert y.dtype == np.float64
    if kind == "srht":
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    else:
        np.testing.assert_array_equal(y, ref)


def test_sparse_lstsq_does_not_depend_on_the_thread_count(isa):
    # 2.4M stored entries: enough work for the passes to split across threads (small ones run serially).
    A, b = _problem(300_000, 40, 0.2, 1e3, 12)
    threads = numkern.get_num_threads()
    out = []
    for nt in (1, max(2, threads)):
        numkern.set_num_threads(nt)
        try:
            out.append(numkern.lstsq(A, b, method="precondition", rng=0))
        finally:
            numkern.set_num_threads(threads)
    np.testing.assert_array_equal(out[0].x, out[1].x)
    assert out[0].iterations == out[1].iterations and out[0].residual_norm == out[1].residual_norm
