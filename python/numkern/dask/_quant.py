"""ShiftQuant matmul with the rows of `a` (M) and the contracted axis (K) in chunks: exact int64
partial products per K block, summed in a tree, then the float epilogue once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dask.array as da
import numpy as np

from ..quant._gemm import gemm
from ..quant._matmul import prepare_matmul
from ._common import aligned, task

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

    from .._validate import RngLike
    from ..quant import ShiftQuantTensor


@task
def _int_block(qa, qb):
    """Exact int64 qa @ qb of one (M block, K block) pair, with a length-1 K axis for the sum."""
    out = np.empty((qa.shape[0], qb.shape[1]), np.int64)
    return gemm(aligned(qa), aligned(qb), out)[:, None, :]


@task
def _epilogue(acc, row, col, scale, out_dtype):
    """out = (acc * (scale * row_i)) * col_j in float64, rounded once: the C++ epilogue's order."""
    s = scale * row[:, 0] if row is not None else np.full(acc.shape[0], scale * 1.0)
    v = acc.astype(np.float64) * s[:, None]
    v = v * (col[None, :] if col is not None else 1.0)
    return v.astype(out_dtype, copy=False)


def matmul(
    a: da.Array | ShiftQuantTensor | ArrayLike,
    b: da.Array | ShiftQuantTensor | ArrayLike,
    *,
    out_dtype: DTypeLike = np.float32,
    bits: int | None = None,
    rounding: str | None = None,
    rng: RngLike = None,
    chunks: tuple[int, int | None] = (4096, None),
    split_every: int | None = None,
) -> da.Array:
    """``a @ b`` for ShiftQuant operands as :func:`numkern.quant.matmul`, as a Dask array whose
    blocks are computed in parallel: ``a``'s rows in chunks of ``chunks[0]`` and the contracted
    axis K in chunks of ``chunks[1]`` (None: one chunk).

    Each (row block, K block) is one exact integer GEMM (int8 operands, int64 result); the K
    blocks of a row block are added in a tree of fan-in `split_every` (exact integers: any order
    gives the same sum), and the epilogue (base scales, powers of two, per-row/column factors)
    multiplies once in the same order as the C++ kernel, so the result is bit-identical to
    ``numkern.quant.matmul(a, b)`` for any chunking.

    Parameters
    ----------
    a, b, out_dtype, bits, rounding, rng
        As :func:`numkern.quant.matmul`; the operands are quantized (if float) and pre-shifted on
        the driver, then chunked.
    chunks : (int, int or None), default (4096, None)
    split_every : int, optional

    Returns
    -------
    dask.array.Array of `out_dtype`, shape ``a.shape[:-1] + (N,)``, chunked along the rows.

    Raises
    ------
    As :func:`numkern.quant.matmul`; ValueError for non-positive chunk sizes.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from numkern import quant
    >>> import numkern.dask as nkd
    >>> rng = np.random.default_rng(0)
    >>> a = rng.standard_normal((300, 200)).astype(np.float32)
    >>> b = rng.standard_normal((200, 50)).astype(np.float32)
    >>> c = nkd.matmul(da.from_array(a, chunks=(100, 200)), b, bits=8, chunks=(100, 64)).compute()
    >>> print(np.array_equal(c, quant.matmul(a, b, bits=8)))   # bit-identical
    True
    """
    opa, opb, dt, out_shape = prepare_matmul(a, b, out_dtype, bits, rounding, rng)
    M2, K = opa.chunks[0][0].shape
    N = out_shape[-1]
    cm, ck = chunks
    ck = max(1, K) if ck is None else ck
    for c in (cm, ck):
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) or c < 1:
            raise ValueError(f"chunks must be positive integers (or None for K), got {chunks!r}")
    row = (
        None if opa.factor is None else da.from_array(opa.factor[:, None], chunks=(cm, 1))
    )  # (M, 1): aligns with acc's rows
    scale = opa.scale * opb.scale
    single = len(opa.chunks) == 1 and len(opb.chunks) == 1
    part_dtype = dt if single else np.dtype(np.float64)
    total = None
    for qa, pa in opa.chunks:
        A = da.from_array(qa, chunks=(cm, ck))
        for qb, pb in opb.chunks:
            if K == 0:
                acc = da.zeros((M2, N), dtype=np.int64, chunks=(cm, N))
            else:
                B = da.from_array(qb, chunks=(ck, N))
                parts = da.blockwise(
                    _int_block,
                    "ikj",
                    A,
                    "ik",
                    B,
                    "kj",
                    dtype=np.int64,
                    adjust_chunks={"k": 1},
                    meta=np.empty((0, 0, 0), np.int64),
                )
                acc = parts.sum(axis=1, dtype=np.int64, split_every=split_every)
            part = da.map_blocks(
                _epilogue,
                acc,
                row,
                col=opb.factor,
                scale=scale * pa * pb,
                out_dtype=part_dtype,
                dtype=part_dtype,
                meta=np.empty((0, 0), part_dtype),
            )
            # numkern.quant.matmul adds the chunk pairs' products into zeros, in this order
            total = part if single else (part + 0.0 if total is None else total + part)
    assert total is not None  # at least one chunk of groups
    return (total if single else total.astype(dt)).reshape(out_shape)
