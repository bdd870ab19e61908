"""The exact int8 GEMM: int8_matmul, and gemm, the call the matmuls share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _core

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

#: Largest K for which any int8 x int8 dot product of length K fits int32: K * 2**14 <= 2**31 - 1.
MAX_K_INT32 = int(_core.gemm_max_k_int32)

_KIND = {np.dtype(name): code for code, name in enumerate(_core.gemm_out_kinds)}


def nrows(shape) -> int:
    """Rows of the (batch * M, K) view of an (..., M, K) array."""
    return int(np.prod(shape[:-1], dtype=np.int64))


def gemm(a2: np.ndarray, b2: np.ndarray, out: np.ndarray, scale=1.0, row=None, col=None, packed=False) -> np.ndarray:
    """out = scale * row[:, None] * col[None, :] * (a2 @ b2) for C-contiguous int8 a2 and b2, or
    with ``packed`` b2 given packed for the active kernel (an int8_pack_b buffer)."""
    if a2.shape[1] == 0:
        out[...] = 0
        return out
    if out.size:
        kernel = _core.int8_gemm_packed if packed else _core.int8_gemm
        kernel(a2, b2, out, _KIND[out.dtype], float(scale), row, col)
    return out


def _int8_operand(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != np.int8:
        raise TypeError(f"{name} must have dtype int8, got {arr.dtype}")
    return arr


def int8_matmul(a: ArrayLike, b: ArrayLike, *, out_dtype: DTypeLike | None = None) -> np.ndarray:
    """Exact int8 x int8 matrix product with integer accumulation (the kernel NumPy lacks:
    ``int8 @ int8`` in NumPy wraps around in int8).

    Runs a packed, cache-blocked, multi-threaded GEMM: AVX-512 VNNI ``vpdpbusd`` with ``a + 128``
    as the unsigned operand and a ``-128 * colsum(b)`` correction per K-block; AVX2 ``vpmaddwd`` on
    sign-extended pairs (no int16 saturation is possible, unlike ``vpmaddubsw`` at -128 * -128);
    a scalar kernel otherwise. int32 accumulators are exact within K-blocks of fewer than 2**17
    (``|sum| <= K * 2**14``); longer K is accumulated in int64 across blocks.

    Parameters
    ----------
    a : array_like of int8, shape (..., M, K)
        Leading dimensions are batch dimensions.
    b : array_like of int8, shape (K, N)
    out_dtype : {None, numpy.int32, numpy.int64}
        None: int32 when ``K <= MAX_K_INT32`` (2**17 - 1), where no result can overflow int32, else
        int64. int32 with a longer K is computed in int64 and raises if a value does not fit.

    Returns
    -------
    ndarray, shape (..., M, N)

    Raises
    ------
    TypeError
        If `a` or `b` is not int8 or `out_dtype` is not int32/int64.
    ValueError
        If the shapes do not match.
    OverflowError
        If ``out_dtype=int32`` was forced and a result does not fit.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> a = np.array([[1, -2, 3], [-128, 127, 0]], dtype=np.int8)
    >>> b = np.array([[1, 0], [0, 1], [127, -128]], dtype=np.int8)
    >>> c = numkern.int8_matmul(a, b)
    >>> print(c, c.dtype)
    [[ 382 -386]
     [-128  127]] int32
    >>> print(np.array_equal(c, a.astype(np.int64) @ b.astype(np.int64)))
    True
    """
    a = _int8_operand(a, "a")
    b = _int8_operand(b, "b")
    if a.ndim < 2 or b.ndim != 2:
        raise ValueError(f"a must be (..., M, K) and b (K, N); got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a is {a.shape}, b is {b.shape}")
    K = a.shape[-1]
    dt: np.dtype
    if out_dtype is None:
        dt = np.dtype(np.int32) if K <= MAX_K_INT32 else np.dtype(np.int64)
    else:
        dt = np.dtype(out_dtype)
        if dt not in (np.dtype(np.int32), np.dtype(np.int64)):
            raise TypeError(f"out_dtype must be None, int32 or int64, got {dt}")
    a2 = np.ascontiguousarray(a.reshape(nrows(a.shape), K))
    b2 = np.ascontiguousarray(b)
    work = dt if (dt == np.int64 or K <= MAX_K_INT32) else np.dtype(np.int64)
    out = gemm(a2, b2, np.empty((a2.shape[0], b2.shape[1]), work))
    if work != dt:
        info = np.iinfo(np.int32)
        if out.size and (out.min() < info.min or out.max() > info.max):
            raise OverflowError("int8_matmul: a result does not fit int32; use out_dtype=numpy.int64")
        out = out.astype(np.int32)
    return out.reshape(a.shape[:-1] + (b.shape[1],))
