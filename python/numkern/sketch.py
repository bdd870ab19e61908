"""Randomized sketches and the fast Walsh-Hadamard transform.

A sketch is an ``m x n`` random matrix ``S`` with ``E[S^T S] = I``, built once from ``(n, m, rng)``
and applied to any ``(n,)`` or ``(n, k)`` array, so ``A`` and ``b`` see the same ``S``. ``S`` is
never stored densely. Results depend only on the random state: the same ``rng`` gives
bit-identical output across runs and thread counts (the kernels fix every summation order).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from . import _core
from ._sparse import CsrRows, column_block, csr_rows, is_sparse_operand
from ._validate import (
    c_aligned,
    check_int,
    check_out,
    deliver,
    float_operand,
    generator,
    next_pow2,
    normalize_axis,
    parallel_copy,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from scipy.sparse.linalg import LinearOperator

    from ._validate import RngLike

__all__ = ["SRHT", "CountSketch", "Gaussian", "SparseSign", "fwht"]


def _is_pow2(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def _transform_c_contiguous(t: np.ndarray, axis: int, scale: float) -> None:
    n = t.shape[axis]
    outer = math.prod(t.shape[:axis])
    inner = math.prod(t.shape[axis + 1 :])
    if t.size == 0:
        return
    if inner == 1:
        _core.fwht_rows(t.reshape(outer, n), scale)
    elif outer == 1:
        _core.fwht_cols(t.reshape(n, inner), scale)
    else:
        v = t.reshape(outer, n, inner)
        for i in range(outer):
            _core.fwht_cols(v[i], scale)


def fwht(x: ArrayLike, axis: int = 0, *, normalize: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Fast Walsh-Hadamard transform along one axis.

    Computes ``H_n @ x`` along ``axis`` with ``H_n[i, j] = (-1)**popcount(i & j)`` (Sylvester,
    natural order), in ``n log2 n`` additions. For a row-major ``(n, d)`` matrix and ``axis=0``
    every column is transformed at once, without transposing: the butterflies run across rows,
    vectorized along the contiguous columns. Long transforms are cache-blocked: the ``log2 n``
    stages are grouped into passes that each work on L2-resident tiles, so a ``2**24``-long
    transform makes two passes over memory (at most three for any size the machine can hold).

    Parameters
    ----------
    x : array_like
        float32/float64 are computed in their own type, float16 in float32, integers and bool in
        float64.
    axis : int, default 0
        Axis to transform; its length must be a power of two.
    normalize : bool, default False
        Multiply by ``1/sqrt(n)``, making the transform orthogonal (and its own inverse).
    out : ndarray, optional
        Receives the result; ``out=x`` transforms in place.

    Returns
    -------
    ndarray
        The transform (``out`` if given). Applying the unnormalized transform twice gives ``n * x``.

    Notes
    -----
    Each output is a sum of ``n`` signed inputs formed by a butterfly tree of depth ``log2 n``, so
    the error is at most ``log2(n) * u * sqrt(n) * ||x||_2`` per entry (``u`` the unit roundoff),
    usually far less. NaN and inf propagate as in the equivalent additions.

    Raises
    ------
    TypeError
        For an unsupported dtype, a non-ndarray ``out`` or one of the wrong dtype.
    ValueError
        For a 0-d input, an axis length that is not a power of two, or an ``out`` of the wrong
        shape or read-only.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> print(numkern.fwht(np.array([1.0, 2.0, 3.0, 4.0])))
    [10. -2. -4.  0.]
    >>> A = np.arange(8.0).reshape(4, 2)
    >>> print(numkern.fwht(A, axis=0, normalize=True))
    [[ 6.  8.]
     [-2. -2.]
     [-4. -4.]
     [ 0.  0.]]
    """
    xc, result_dtype = float_operand(x)
    if xc.ndim == 0:
        raise ValueError("fwht needs an array of at least one dimension; got a 0-d array")
    axis = normalize_axis(axis, xc.ndim)
    n = xc.shape[axis]
    if not _is_pow2(n):
        raise ValueError(f"fwht: the length along axis {axis} must be a power of two, got {n}")
    if out is not None:
        check_out(out, xc.shape, result_dtype)
    scale = 1.0 / math.sqrt(n) if normalize else 1.0
    direct = out is not None and out.dtype == xc.dtype and out.flags.c_contiguous and out.flags.aligned
    if direct:
        assert out is not None
        if not (out.__array_interface__["data"][0] == xc.__array_interface__["data"][0] and out.strides == xc.strides):
            _core.convert(out, xc) if xc.flags.c_contiguous and xc.flags.aligned else np.copyto(out, xc)
        target = out
    else:
        target = parallel_copy(xc)
    _transform_c_contiguous(target, axis, scale)
    return deliver(target, out, result_dtype)


class _Sketch:
    """Common part: shape checks and the (n,) / (n, k) handling of apply."""

    kind = "sketch"

    def __init__(self, n: int, m: int, max_m: int) -> None:
        n = check_int(n, "n")
        m = check_int(m, "m")
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if m < 1 or m > max_m:
            raise ValueError(f"m must be in [1, {max_m}] for n={n} ({self.kind}), got {m}")
        self.n, self.m = n, m

    @property
    def shape(self):
        return (self.m, self.n)

    def _operand(self, A):
        a, _ = float_operand(A, "A")
        if a.ndim not in (1, 2) or a.shape[0] != self.n:
            raise ValueError(
                f"{type(self).__name__} of shape {self.shape} applies to arrays of shape ({self.n},) or ({self.n}, k); got {a.shape}"
            )
        return c_aligned(a)

    def apply(self, A: ArrayLike) -> np.ndarray:
        """Return ``S @ A`` for ``A`` of shape ``(n,)`` or ``(n, k)``, in A's compute dtype.

        ``A`` may also be a scipy.sparse CSR, CSC or COO array or matrix of shape ``(n, k)``
        (other formats raise TypeError); the result is then a dense ``(m, k)`` array. See the class
        docstring for how each sketch treats sparse input."""
        if is_sparse_operand(A):
            return self._apply_sparse_operand(A)
        a = self._operand(A)
        y = np.empty((self.m,) + a.shape[1:], dtype=a.dtype)
        if a.size == 0:
            y.fill(0)
            return y
        self._apply(a, y)
        return y

    def _apply_sparse_operand(self, A, dtype=None) -> np.ndarray:
        c = A if isinstance(A, CsrRows) else csr_rows(A, "A")
        if c.shape[0] != self.n:
            raise ValueError(
                f"{type(self).__name__} of shape {self.shape} applies to arrays of shape ({self.n},) or ({self.n}, k); got {c.shape}"
            )
        y = np.zeros((self.m, c.shape[1]), dtype=dtype or c.dtype)
        if c.shape[1]:
            self._apply_sparse(c, y)
        return y

    def _apply_sparse(self, c: CsrRows, y: np.ndarray) -> None:
        # Through the dense kernel on blocks of columns: every output column is computed on its own
        # there, so the result equals the dense one bit for bit, in bounded memory.
        for c0, c1, block in c.column_blocks(column_block(self.n, y.dtype.itemsize)):
            yb = np.empty((self.m, c1 - c0), dtype=y.dtype)
            self._apply(block.astype(y.dtype, copy=False), yb)
            y[:, c0:c1] = yb

    def apply_widened(self, A: np.ndarray) -> np.ndarray:
        """``S @ A`` in float64 for a float32 ``(n, k)`` A without a float64 copy of it: dense columns
        go through the float64 kernel in blocks of at most 32 MiB and ``k / 4`` columns; a sparse A
        as :meth:`apply` does, in float64 from its float32 entries. For Gaussian,
        SparseSign and CountSketch every column is computed on its own, so this equals
        ``S @ A.astype(np.float64)`` bit for bit; SRHT groups partial sums by the block width,
        so it agrees to rounding."""
        if is_sparse_operand(A):
            c = A if isinstance(A, CsrRows) else csr_rows(A, "A")
            return self._apply_sparse_operand(c.astype(np.float64) if c.dtype != np.float32 else c, np.float64)
        a = self._operand(A)
        if a.ndim == 1 or a.dtype != np.float32:
            return self.apply(a.astype(np.float64))
        n, k = a.shape
        y = np.empty((self.m, k))
        if a.size == 0:
            y.fill(0)
            return y
        # Blocks of at most 32 MiB and at most a quarter of the columns (so the float64 block stays
        # within half the float32 array).
        w = max(1, min(column_block(n, 8), k // 4))
        cuts = list(range(0, k, w)) + [k]
        if len(cuts) > 2 and cuts[-1] - cuts[-2] == 1:
            del cuts[-2]  # no single-column block: one column takes a vector path of its own
        for c0, c1 in zip(cuts[:-1], cuts[1:]):
            yb = np.empty((self.m, c1 - c0))
            self._apply(np.ascontiguousarray(a[:, c0:c1], dtype=np.float64), yb)
            y[:, c0:c1] = yb
        return y

    def _rmatmat(self, V: np.ndarray) -> np.ndarray:
        """``S^T V`` (n, k) for a C-contiguous float64 V (m, k), in C++ without forming S."""
        raise NotImplementedError

    def aslinearoperator(self) -> LinearOperator:
        """``S`` as a ``scipy.sparse.linalg.LinearOperator`` of shape ``(m, n)``, float64.

        ``matvec``/``matmat`` apply ``S`` (as :meth:`apply`); ``rmatvec``/``rmatmat`` apply ``S^T``
        from the same random state, without storing ``S``: a C++ kernel per sketch on numkern's
        threads, every output summed in a fixed order (the same bits at any thread count). Needs
        scipy.

        Examples
        --------
        >>> import numpy as np
        >>> from numkern.sketch import SRHT
        >>> S = SRHT(100, 16, rng=0)
        >>> L = S.aslinearoperator()
        >>> x, y = np.arange(100.0), np.arange(16.0)
        >>> L.shape, bool(np.isclose(y @ (L @ x), (L.T @ y) @ x))
        ((16, 100), True)
        """
        from scipy.sparse.linalg import LinearOperator

        def rmatmat(Y):
            return self._rmatmat(np.ascontiguousarray(np.asarray(Y, dtype=np.float64).reshape(self.m, -1)))

        return LinearOperator(
            (self.m, self.n),
            matvec=lambda x: self.apply(np.asarray(x, dtype=np.float64).reshape(self.n)),
            rmatvec=lambda y: rmatmat(np.asarray(y).reshape(self.m, 1))[:, 0],
            matmat=lambda X: self.apply(np.asarray(X, dtype=np.float64)),
            rmatmat=rmatmat,
            dtype=np.float64,
        )

    def __matmul__(self, A: ArrayLike) -> np.ndarray:
        return self.apply(A)

    def apply_pair(self, A: ArrayLike, B: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(S @ A, S @ B)``, each as :meth:`apply` gives it.

        The same operator sketches both (a least-squares problem's ``A`` and ``b``) without
        forming ``[A B]``; the Gaussian sketch generates ``S`` once for the two.

        Examples
        --------
        >>> import numpy as np
        >>> from numkern.sketch import Gaussian
        >>> rng = np.random.default_rng(0)
        >>> A, b = rng.standard_normal((500, 3)), rng.standard_normal(500)
        >>> S = Gaussian(500, 40, rng=1)
        >>> SA, Sb = S.apply_pair(A, b)
        >>> bool(np.array_equal(SA, S @ A) and np.array_equal(Sb, S @ b))
        True
        """
        return self.apply(A), self.apply(B)

    def _apply(self, a: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(n={self.n}, m={self.m})"


class SRHT(_Sketch):
    """Subsampled randomized Hadamard transform ``S = sqrt(N/m) R H D P``.

    ``P`` a uniformly random row permutation, ``D`` random signs, ``H`` the orthonormal
    Walsh-Hadamard transform of size ``N = 2**ceil(log2 n)`` (zero padding), ``R`` uniform
    sampling of ``m`` of the ``N`` rows without replacement (Ailon & Chazelle 2009; Tropp 2011).
    The permutation is part of the operator: without it, coherent inputs can leave the sampled
    rows rank-deficient.

    Only the ``m`` sampled outputs are formed: rows are gathered (permuted, signed) in blocks of
    ``b`` rows, each block is transformed in cache with ``H_b``, and since ``H_N = H_{N/b} (x) H_b``
    a sampled output is a signed sum of one row of every transformed block. This reads ``A``
    once and costs ``n k log2(b) + m k n / b`` additions.

    A scipy.sparse ``A`` (CSR, CSC or COO) is applied through the dense kernel on blocks of columns
    densified at most 32 MiB at a time: every row of ``S`` is dense, so a sparse algorithm would
    not be cheaper than the transform. The result equals ``S @ A.toarray()`` bit for bit when one
    block holds every column, else to rounding (the partial sums are grouped by the block width).

    Parameters
    ----------
    n, m : int
        Input length and number of sketch rows, ``1 <= m <= N``.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator
        Source of the permutation, signs and sampled rows (drawn at construction).

    Examples
    --------
    >>> import numpy as np
    >>> from numkern.sketch import SRHT
    >>> A = np.random.default_rng(0).standard_normal((1000, 5))
    >>> S = SRHT(1000, 64, rng=0)
    >>> SA = S @ A
    >>> SA.shape, S.shape
    ((64, 5), (64, 1000))
    >>> ratio = np.linalg.norm(SA, axis=0) / np.linalg.norm(A, axis=0)   # column norms kept
    >>> print(bool(np.all(np.abs(ratio - 1) < 0.5)))
    True
    """

    kind = "srht"

    def __init__(self, n: int, m: int, rng: RngLike = None) -> None:
        N = next_pow2(check_int(n, "n")) if check_int(n, "n") >= 1 else 1
        super().__init__(n, m, N)
        if n >= 2**32:
            raise ValueError("SRHT supports n < 2**32")
        g = generator(rng)
        self.N = N
        self._perm = random_permutation(int(g.integers(0, 2**63)), self.n)
        self._neg = g.integers(0, 2, size=self.n, dtype=np.uint8)
        self._rows = np.sort(g.choice(N, size=self.m, replace=False)).astype(np.uint32)

    def _apply(self, a, y):
        _core.srht_apply(a, self.N, self._perm, self._neg, self._rows, 1.0 / math.sqrt(self.m), y)

    def _rmatmat(self, V):
        # S[i, perm[j]] = H[rows[i], j] sign_j / sqrt(m), H symmetric: scatter, transform, sign, permute.
        out = np.empty((self.n, V.shape[1]))
        _core.srht_transpose(V, self.N, self._perm, self._neg, self._rows, 1.0 / math.sqrt(self.m), out)
        return out


class Gaussian(_Sketch):
    """Dense Gaussian sketch with i.i.d. ``N(0, 1/m)`` entries, generated on the fly.

    Entry ``(i, j)`` is a function of a 64-bit key and the counter ``(i, j)`` only: a keyed
    32-bit integer hash turned into a normal number by Giles' single-precision inverse error
    function (relative error ~4e-7; tails cut at about 5.4 sigma). ``S`` is generated block by
    block next to the rows of ``A`` it multiplies and never stored, and every output is summed
    in a fixed order keyed by ``j`` (ascending within tiles of 4096 rows, tiles in the dyadic
    tree over tile indices), so the result does not depend on blocking or on the thread count,
    and :func:`numkern.dask.lstsq` reproduces it from row blocks.
    Costs ``m n k`` multiply-adds plus ``m n`` normal numbers.

    A scipy.sparse ``A`` (CSR, CSC or COO) is applied through the dense kernel on blocks of columns
    densified at most 32 MiB at a time (generating the ``m n`` normal numbers dominates either
    way); the result equals ``S @ A.toarray()`` bit for bit.

    Parameters
    ----------
    n, m : int
        Input length (``< 2**32``) and sketch rows, ``1 <= m <= 2**ceil(log2 n)``.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator
        Source of the key.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern.sketch import Gaussian
    >>> S = Gaussian(1000, 64, rng=0)
    >>> b = np.ones(1000)
    >>> print(S.apply(b).shape, np.array_equal(S @ b, Gaussian(1000, 64, rng=0) @ b))
    (64,) True
    """

    kind = "gaussian"

    def __init__(self, n: int, m: int, rng: RngLike = None) -> None:
        super().__init__(n, m, next_pow2(check_int(n, "n")) if check_int(n, "n") >= 1 else 1)
        if self.n >= 2**32:
            raise ValueError("Gaussian supports n < 2**32")
        self.key = int(generator(rng).integers(0, 2**63, dtype=np.int64))

    def _apply(self, a, y):
        _core.gaussian_apply(a, self.key, 1.0 / math.sqrt(self.m), y)

    def _rmatmat(self, V):
        out = np.empty((self.n, V.shape[1]))
        _core.gaussian_transpose(V, self.key, 1.0 / math.sqrt(self.m), out)
        return out

    def apply_pair(self, A: ArrayLike, B: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        if is_sparse_operand(A) or is_sparse_operand(B):
            return self.apply(A), self.apply(B)
        a, b = self._operand(A), self._operand(B)
        if a.dtype != b.dtype or a.size == 0 or b.size == 0:
            return self.apply(a), self.apply(b)
        d = a.shape[1] if a.ndim == 2 else 1
        y = np.empty((self.m, d + (b.shape[1] if b.ndim == 2 else 1)), dtype=a.dtype)
        _core.gaussian_apply_pair(a, b, self.key, 1.0 / math.sqrt(self.m), y)
        ya, yb = y[:, :d], y[:, d:]
        return (ya if a.ndim == 2 else ya[:, 0]), (yb if b.ndim == 2 else yb[:, 0])

    apply_pair.__doc__ = _Sketch.apply_pair.__doc__

    def rows(self, i0: int = 0, count: int | None = None) -> np.ndarray:
        """The rows ``i0 .. i0 + count`` of ``S`` as a dense float64 array (for inspection)."""
        count = self.m - i0 if count is None else count
        return _core.gaussian_rows(i0, count, 0, self.n, self.key).astype(np.float64) / math.sqrt(self.m)


#: Rows per tile of the sketches' fixed summation tree (the Gaussian kernel's tile; numkern.dask's
#: row blocks are aligned to it), so a sketch is the same whatever the row blocking.
TILE = int(_core.gaussian_tile_rows)


def sparse_sign_rows(key, j0, count, m, s):
    """Columns j0 .. j0+count of a row-keyed sparse sign sketch: for global row j, `s` distinct
    buckets in [0, m) and signs, from splitmix64 at counter (j, attempt, t) of the stream `key`
    (a row whose buckets collide is redrawn whole with the next attempt). A function of (key, j)
    only, so any row block draws its own columns (numkern.dask). Drawn in C++
    (``_core.sparse_sign_draw``; tests/test_sketch.py holds a NumPy reference of the stream)."""
    idx, neg = _core.sparse_sign_draw(int(key), int(j0), int(count), int(m), int(s))
    return idx, neg.view(bool)


def random_permutation(key, n):
    """A uniformly random permutation of ``range(n)`` (int64), a function of the 64-bit ``key`` and
    ``n``: elements are dealt into cache-sized buckets by a keyed hash and each bucket is shuffled
    (``_core.random_permutation``; in parallel, and without the random memory accesses of one
    Fisher-Yates pass over a large array)."""
    buckets = 1 << max(0, min(16, (n >> 14).bit_length()))  # about 8-16K elements per bucket
    return _core.random_permutation(int(key), int(n), buckets)


def sparse_sign_scale(s, dtype):
    """The magnitude 1/sqrt(s) of the nonzeros in `dtype`, computed the same way wherever the sketch
    is applied (sqrt(s) rounded to `dtype`, then divided in `dtype`). The kernels take it with the
    sign bytes, so no array of nonzeros is ever formed."""
    return float(dtype(1.0) / dtype(np.sqrt(s)))


def sparse_sign_values(neg, s, dtype):
    """The nonzeros +-1/sqrt(s) in `dtype` as an array shaped like `neg` (for dense references)."""
    v = sparse_sign_scale(s, dtype)
    return np.array([v, -v], dtype=dtype)[np.asarray(neg).view(np.uint8)]


def merge_tile_sums(*parts):
    """Union of partial sums keyed (level, k) = tiles [k 2^level, (k+1) 2^level), adding siblings
    (left + right) into their parent until no two siblings remain: the same dyadic tree as the
    Gaussian kernel's stack, so the result does not depend on how the tiles were grouped."""
    nodes = {}
    for p in parts:
        nodes.update(p)
    while True:
        pair = next(((lv, k) for lv, k in sorted(nodes) if k % 2 == 0 and (lv, k + 1) in nodes), None)
        if pair is None:
            return nodes
        lv, k = pair
        nodes[(lv + 1, k // 2)] = nodes.pop((lv, k)) + nodes.pop((lv, k + 1))


def fold_tile_sums(nodes):
    """The incomplete right edge of the tree: the remaining subtrees added from the right."""
    order = sorted(nodes, key=lambda key: key[1] << key[0])
    acc = nodes[order[-1]]
    for key in reversed(order[:-1]):
        acc = nodes[key] + acc
    return acc


class SparseSign(_Sketch):
    """Sparse sign embedding: each column of ``S`` has ``nnz_per_col`` nonzeros ``+-1/sqrt(s)``
    in distinct uniformly random rows (Meng & Mahoney 2013; Cohen 2016).

    Cheap (``s n k`` multiply-adds) and a subspace embedding for ``m = O(d log d)``, but, as
    Song et al. (ICML 2023) point out, sparse sketches cannot give the l-infinity guarantee of
    dense ones on coherent inputs.

    A scipy.sparse ``A`` (CSR, CSC or COO; converted to CSR without densifying) costs
    ``O(nnz_per_col * nnz(A))``: each stored entry is scattered into its ``nnz_per_col`` rows of
    the sketch (C++, column strips in parallel, every output summed in ascending row order, so
    the result does not depend on the thread count). It equals ``S @ A.toarray()`` up to
    rounding (the dense path sums 4096-row tiles in a tree).

    Parameters
    ----------
    n, m : int
        Input length and sketch rows, ``1 <= m <= 2**ceil(log2 n)``.
    nnz_per_col : int, default 8
        Nonzeros per column, ``1 <= nnz_per_col <= m``.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator

    Examples
    --------
    >>> import numpy as np
    >>> from numkern.sketch import SparseSign
    >>> S = SparseSign(1000, 64, nnz_per_col=4, rng=0)
    >>> print((S @ np.eye(1000)).shape)
    (64, 1000)
    >>> print(np.count_nonzero(S @ np.eye(1000), axis=0)[:5])   # 4 nonzeros per column
    [4 4 4 4 4]
    """

    kind = "sparse_sign"

    def __init__(self, n: int, m: int, nnz_per_col: int = 8, rng: RngLike = None) -> None:
        super().__init__(n, m, next_pow2(check_int(n, "n")) if check_int(n, "n") >= 1 else 1)
        s = check_int(nnz_per_col, "nnz_per_col")
        if s < 1 or s > self.m:
            raise ValueError(f"nnz_per_col must be in [1, m={self.m}], got {s}")
        if self.n >= 2**32:
            raise ValueError("SparseSign supports n < 2**32")
        g = generator(rng)
        self.nnz_per_col = s
        # Column j is a function of (key, j) and the sum runs over a fixed tree of TILE-row tiles, so
        # numkern.dask draws and adds the same sketch from any row blocks.
        self._key = int(g.integers(0, 2**63, dtype=np.int64))
        self._idx, self._neg = sparse_sign_rows(self._key, 0, self.n, self.m, s)

    @property
    def _sign(self):
        """The nonzeros as an (n, nnz_per_col) float64 array (for dense references in tests)."""
        return sparse_sign_values(self._neg, self.nnz_per_col, np.float64)

    def _apply(self, a, y):
        # Tiles of TILE rows summed in the dyadic tree over tile indices (in C++, tiles in parallel):
        # numkern.dask sums its row blocks' tiles in the same tree.
        scale = sparse_sign_scale(self.nnz_per_col, a.dtype.type)
        _core.sparse_apply(a, self._idx, self._neg.view(np.uint8), scale, y)

    def _apply_sparse(self, c, y):
        # O(nnz * nnz_per_col): the CSR rows are scattered into the sketch (C++, column strips in
        # parallel, each output summed in ascending row order).
        scale = sparse_sign_scale(self.nnz_per_col, y.dtype.type)  # y float64, float32 entries: float64 sketch
        _core.csr_sketch_apply(c.indptr, c.indices, c.data, self._idx, self._neg.view(np.uint8), scale, y)

    def _rmatmat(self, V):
        out = np.empty((self.n, V.shape[1]))
        scale = float(sparse_sign_scale(self.nnz_per_col, np.float64))
        _core.sparse_transpose(V, self._idx, self._neg.view(np.uint8), scale, out)
        return out


class CountSketch(SparseSign):
    """CountSketch (Charikar, Chen & Farach-Colton 2002; Clarkson & Woodruff 2013): one ``+-1``
    per column of ``S`` in a uniformly random row. A sparse sketch: fast, but no l-infinity
    guarantee on coherent inputs (heavy rows collide in one bucket).

    Examples
    --------
    >>> import numpy as np
    >>> from numkern.sketch import CountSketch
    >>> S = CountSketch(1000, 64, rng=0)
    >>> dense = S @ np.eye(1000)
    >>> print(dense.shape, np.count_nonzero(dense, axis=0).max(), np.unique(np.abs(dense[dense != 0])))
    (64, 1000) 1 [1.]
    """

    kind = "countsketch"

    def __init__(self, n: int, m: int, rng: RngLike = None) -> None:
        super().__init__(n, m, nnz_per_col=1, rng=rng)
