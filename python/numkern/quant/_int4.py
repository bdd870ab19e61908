"""Packed int4: two values in [-8, 7] per byte."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _core
from .._validate import check_int

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def pack_int4(q: ArrayLike) -> np.ndarray:
    """Pack int8 values in [-8, 7] two per byte along the last axis.

    Byte ``j`` holds element ``2j`` in its low nibble and ``2j + 1`` in its high nibble (two's
    complement nibbles); an odd last axis is padded with a zero nibble.

    Raises
    ------
    TypeError
        If `q` is not an integer array.
    ValueError
        If `q` is 0-d or holds values outside [-8, 7].

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import quant
    >>> q = np.array([-7, 7, 1, -1, 3], dtype=np.int8)
    >>> p = quant.pack_int4(q)
    >>> p.dtype, p.shape
    (dtype('uint8'), (3,))
    >>> print(quant.unpack_int4(p, 5))
    [-7  7  1 -1  3]
    """
    q = np.asarray(q)
    if q.dtype.kind not in "iu":
        raise TypeError(f"q must be an integer array, got {q.dtype}")
    if q.ndim == 0:
        raise ValueError("q must have at least one dimension")
    if q.size and (q.min() < -8 or q.max() > 7):
        raise ValueError("pack_int4: values must lie in [-8, 7]")
    q = q.astype(np.int8, copy=False)
    if q.shape[-1] % 2:
        q = np.concatenate([q, np.zeros(q.shape[:-1] + (1,), np.int8)], axis=-1)
    u = q.view(np.uint8)
    return ((u[..., 0::2] & 0x0F) | (u[..., 1::2] << 4)).astype(np.uint8)


def unpack_int4(p: ArrayLike, n: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack_int4`: uint8 bytes to int8 values in [-8, 7] along the last axis.

    Parameters
    ----------
    p : array_like of uint8
    n : int, optional
        Length of the unpacked last axis (``2 * p.shape[-1]`` or one less); default ``2 * p.shape[-1]``.

    Raises
    ------
    TypeError
        If `p` is not uint8.
    ValueError
        If `p` is 0-d or `n` does not match.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import quant
    >>> p = quant.pack_int4(np.array([[1, -2, 3, -4]], dtype=np.int8))
    >>> print(quant.unpack_int4(p))
    [[ 1 -2  3 -4]]
    """
    p = np.asarray(p)
    if p.dtype != np.uint8:
        raise TypeError(f"p must be uint8, got {p.dtype}")
    if p.ndim == 0:
        raise ValueError("p must have at least one dimension")
    full = 2 * p.shape[-1]
    if n is None:
        n = full
    n = check_int(n, "n", max(0, full - 1), full)
    pc = np.ascontiguousarray(p)
    out = np.empty(p.shape[:-1] + (n,), np.int8)
    if out.size:
        rows = int(np.prod(p.shape[:-1], dtype=np.int64))
        _core.unpack_int4(pc, out, rows, p.shape[-1], n)
    return out
