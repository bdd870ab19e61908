"""SciPy sparse operands of the sketch operators and of numkern.lstsq.

scipy is imported only when an argument already is a scipy.sparse object. CSR, CSC and COO arrays
and matrices are accepted and brought to one canonical CSR form (sorted column indices, duplicates
summed) without densifying; other formats raise TypeError, as their conversion is slow enough that
the caller should choose it (``A.tocsr()``)."""

from __future__ import annotations

import math

import numpy as np

from . import _core

#: The scipy.sparse formats taken as they are (converted to CSR in O(nnz)).
SPARSE_FORMATS = ("csr", "csc", "coo")


def is_scipy_sparse(x) -> bool:
    """Whether ``x`` is a scipy.sparse array or matrix (tested without importing scipy)."""
    return type(x).__module__.startswith("scipy.sparse") and hasattr(x, "format") and hasattr(x, "nnz")


class CsrRows:
    """A validated canonical CSR matrix: ``indptr`` int64 (n + 1), ``indices`` int32 and ``data``
    float32/float64 (nnz), every entry finite. The row passes of the least-squares solver run on
    it in C++ (threaded, fixed summation order)."""

    def __init__(self, indptr, indices, data, shape):
        self.indptr, self.indices, self.data = indptr, indices, data
        self.shape = shape
        self.ndim = 2
        self.dtype = data.dtype

    @property
    def nnz(self) -> int:
        return int(self.data.size)

    def astype(self, dtype) -> CsrRows:
        if self.data.dtype == dtype:
            return self
        return CsrRows(self.indptr, self.indices, self.data.astype(dtype), self.shape)

    def scale_rows(self, w: np.ndarray) -> CsrRows:
        """diag(w) A, a new CSR matrix (O(nnz))."""
        counts = np.diff(self.indptr)
        data = self.data * np.repeat(w.astype(self.data.dtype, copy=False), counts)
        return CsrRows(self.indptr, self.indices, data, self.shape)

    def frobenius(self) -> float:
        step = 1 << 20  # float64 sums of float32 data, a bounded block at a time
        return math.sqrt(
            sum(
                float(np.dot(v, v))
                for v in (self.data[i : i + step].astype(np.float64) for i in range(0, self.nnz, step))
            )
        )

    def toarray(self) -> np.ndarray:
        n, d = self.shape
        out = np.zeros((n, d), dtype=self.dtype)
        rows = np.repeat(np.arange(n), np.diff(self.indptr))
        out[rows, self.indices] = self.data
        return out

    def column_blocks(self, width: int):
        """(c0, c1, block) for consecutive column ranges of ``width`` columns, each block the dense
        C-contiguous (n, c1 - c0) array of those columns (one O(nnz log nnz) sort, then O(nnz) in all)."""
        n, d = self.shape
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.indptr))
        order = np.argsort(self.indices, kind="stable")
        bounds = np.searchsorted(self.indices[order], np.arange(0, d + width, width).clip(max=d))
        for c0 in range(0, d, width):
            c1 = min(d, c0 + width)
            sel = order[bounds[c0 // width] : bounds[c0 // width + 1]]
            out = np.zeros((n, c1 - c0), dtype=self.dtype)
            out[rows[sel], self.indices[sel] - c0] = self.data[sel]
            yield c0, c1, out

    def row_residual(self, u, b, g, t) -> float:
        """||A u - b||^2, with g = A^T (A u - b) and t = A u - b written when given (as
        ``_core.row_residual``)."""
        return _core.csr_row_residual(self.indptr, self.indices, self.data, u, b, g, t)

    def ls_refine_residual(self, x, r, init_r, b, f, h) -> None:
        _core.csr_ls_refine_residual(self.indptr, self.indices, self.data, x, r, init_r, b, f, h)


def csr_rows(A, name: str = "A") -> CsrRows:
    """Validate a scipy.sparse ``A`` and return it as :class:`CsrRows`.

    float32/float64 data keep their dtype; float16 becomes float32; integer and bool data become
    float64. Raises TypeError for complex data or an unsupported format, ValueError for a shape
    that is not 2-d or for NaN/inf among the stored entries. The input is never modified."""
    fmt = getattr(A, "format", None)
    if fmt not in SPARSE_FORMATS:
        raise TypeError(
            f"{name}: scipy.sparse format {fmt!r} is not supported; pass CSR, CSC or COO (for example {name}.tocsr())"
        )
    if len(A.shape) != 2:
        raise ValueError(f"{name} must be 2-d (n, d), got a sparse array of shape {A.shape}")
    kind, size = A.dtype.kind, A.dtype.itemsize
    if kind == "c":
        raise TypeError(f"{name}: complex sparse data are not supported (dtype {A.dtype})")
    if kind == "f" and size in (4, 8):
        dtype = A.dtype
    elif kind == "f" and size == 2:
        dtype = np.dtype(np.float32)
    elif kind in "iub":
        dtype = np.dtype(np.float64)
    else:
        raise TypeError(f"{name}: sparse data of dtype {A.dtype} are not supported (float32/float64 expected)")
    n, d = (int(v) for v in A.shape)
    if d >= 2**31:
        raise ValueError(f"{name}: at most 2**31 - 1 columns are supported, got {d}")
    csr = A.tocsr() if fmt != "csr" else A
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    data = np.ascontiguousarray(csr.data, dtype=dtype.newbyteorder("="))
    if not np.isfinite(data).all():
        raise ValueError(f"{name} contains NaN or inf")
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(csr.indices, dtype=np.int32)
    return CsrRows(indptr, indices, data, (n, d))


def dense_rhs(b, name: str = "b"):
    """A right-hand side given as a scipy.sparse matrix becomes a dense array (it has one column
    per solution, so it is small next to A)."""
    if is_scipy_sparse(b):
        if getattr(b, "format", None) not in SPARSE_FORMATS:
            raise TypeError(f"{name}: scipy.sparse format {b.format!r} is not supported; pass CSR, CSC or COO")
        if b.dtype.kind == "c":
            raise TypeError(f"{name}: complex sparse data are not supported (dtype {b.dtype})")
        return b.toarray()
    return b


def column_block(n: int, itemsize: int, budget: int = 32 << 20) -> int:
    """Columns per dense block of an n-row operand within ``budget`` bytes (at least one)."""
    return max(1, budget // max(1, n * itemsize))


def is_sparse_operand(x) -> bool:
    return isinstance(x, CsrRows) or is_scipy_sparse(x)


__all__ = ["SPARSE_FORMATS", "CsrRows", "column_block", "csr_rows", "dense_rhs", "is_scipy_sparse", "is_sparse_operand"]
