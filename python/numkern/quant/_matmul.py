"""matmul of ShiftQuantTensors with one exact integer GEMM; prepare_matmul, shared with numkern.dask."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._validate import generator
from ._gemm import gemm, nrows
from ._operands import Operand, operand_a, operand_b
from ._prepack import PackedWeight
from ._tensor import ShiftQuantTensor, quantize, shiftquant

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

    from .._validate import RngLike


def _as_tensor(x, name: str, bits: int, axis: int, rounding: str, rng):
    if isinstance(x, ShiftQuantTensor):
        return x
    return shiftquant(x, bits, axis=axis, rounding=rounding, rng=rng)


def prepare_matmul(a, b, out_dtype, bits, rounding, rng, packed_b=False):
    """Checks and the integer operands of matmul (also used by numkern.dask.matmul). A PackedWeight
    `b` gives its packed operand with ``packed_b``, else its quantized tensor (the same values)."""
    if isinstance(a, PackedWeight):
        raise TypeError("a PackedWeight is a right operand (b) only")
    if isinstance(b, PackedWeight) and not packed_b:
        b = b.tensor
    dt = np.dtype(out_dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"out_dtype must be float32 or float64, got {dt}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        rng = generator(rng)  # one stream for both operands, never the same key twice
    b_tensor = b.tensor if isinstance(b, PackedWeight) else b
    known = a if isinstance(a, ShiftQuantTensor) else (b_tensor if isinstance(b_tensor, ShiftQuantTensor) else None)
    if bits is None:
        bits = known.bits if known is not None else 8
    if rounding is None:
        rounding = known.rounding if known is not None else "nearest"
    a_shape = a.shape if isinstance(a, ShiftQuantTensor) else np.shape(a)
    b_shape = b_tensor.shape if isinstance(b_tensor, ShiftQuantTensor) else np.shape(b)
    if len(a_shape) < 2 or len(b_shape) != 2:
        raise ValueError(f"a must be (..., M, K) and b (K, N); got shapes {tuple(a_shape)} and {tuple(b_shape)}")
    if a_shape[-1] != b_shape[0]:
        raise ValueError(f"inner dimensions differ: a is {tuple(a_shape)}, b is {tuple(b_shape)}")
    out_shape = tuple(a_shape[:-1]) + (b_shape[1],)
    K = a_shape[-1]

    if not isinstance(a, ShiftQuantTensor) and K > 0:
        # Fast path: quantize a straight into its pre-shifted form (groups along K).
        q, shift, base, _, n_groups, _ = quantize(a, bits, -1, None, rounding, "channel", 32, rng, True)
        opa = Operand([(q.reshape(nrows(q.shape), K), float(np.ldexp(1.0, -(n_groups - 1))))], float(base), None)
    else:
        opa = operand_a(_as_tensor(a, "a", bits, -1, rounding, rng))
    if isinstance(b, PackedWeight):
        opb = b._operand()
    else:
        opb = operand_b(_as_tensor(b, "b", bits, -1, rounding, rng))

    return opa, opb, dt, out_shape


def matmul(
    a: ShiftQuantTensor | ArrayLike,
    b: ShiftQuantTensor | PackedWeight | ArrayLike,
    *,
    out_dtype: DTypeLike = np.float32,
    bits: int | None = None,
    rounding: str | None = None,
    rng: RngLike = None,
) -> np.ndarray:
    """``a @ b`` for ShiftQuantTensors, computed with one exact integer GEMM.

    The result equals the float64 product of the dequantized operands, rounded once to
    `out_dtype` (the int32/int64 accumulation is exact; the scaling multiplies by the float64
    product of the base scales and powers of two). Where the shifts go (the ShiftQuant point of the
    paper, as numkern reads it): groups along the contracted axis K are pre-shifted in the integer
    domain, ``q << (n_groups - 1 - e)``, which fits int8 for the default ``n_groups`` (otherwise the
    groups are split into chunks that fit, one GEMM per chunk, summed exactly after scaling); groups
    along an output axis (rows of `a`, columns of `b`) become row/column factors in the epilogue.

    Parameters
    ----------
    a : ShiftQuantTensor or array_like, shape (..., M, K)
        A float operand is quantized on the fly: ``shiftquant(a, bits, axis=-1)`` (groups along K,
        the input channels, so they are pre-shifted).
    b : ShiftQuantTensor, PackedWeight or array_like, shape (K, N)
        A float operand is quantized with ``axis=-1`` (groups along N: per-column epilogue factors).
        A :class:`PackedWeight` (:func:`prepack`) is already quantized and packed for the GEMM
        kernel, which saves that work on every call with the same `b`; the result is the same.
    out_dtype : {numpy.float32, numpy.float64}
    bits, rounding, rng
        For operands quantized on the fly: default the other operand's bits and rounding, or
        8 bits and "nearest" when both are float.

    Raises
    ------
    TypeError
        If `out_dtype` is not float32/float64 or an operand is not numeric.
        If `a` is a PackedWeight (a right operand only).
    ValueError
        If the shapes do not match, `b` is not 2-D or `a` has fewer than 2 dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import quant
    >>> rng = np.random.default_rng(0)
    >>> a = rng.standard_normal((32, 64)).astype(np.float32)
    >>> b = rng.standard_normal((64, 16)).astype(np.float32)
    >>> qa, qb = quant.shiftquant(a, 8), quant.shiftquant(b, 8, axis=0)
    >>> y = quant.matmul(qa, qb)
    >>> exact = qa.dequantize().astype(np.float64) @ qb.dequantize()
    >>> print(y.dtype, np.allclose(y, exact, rtol=1e-5, atol=1e-5))
    float32 True
    >>> y4 = quant.matmul(a, b, bits=4)                  # float operands quantized on the fly
    >>> y4.shape
    (32, 16)
    """
    opa, opb, dt, out_shape = prepare_matmul(a, b, out_dtype, bits, rounding, rng, packed_b=True)
    M2 = int(np.prod(out_shape[:-1], dtype=np.int64))
    N = out_shape[-1]
    scale = opa.scale * opb.scale
    if len(opa.chunks) == 1 and len(opb.chunks) == 1:
        (qa, pa), (qb, pb) = opa.chunks[0], opb.chunks[0]
        out = gemm(qa, qb, np.empty((M2, N), dt), scale * pa * pb, opa.factor, opb.factor, opb.packed)
        return out.reshape(out_shape)
    acc = np.zeros((M2, N), np.float64)
    part = np.empty((M2, N), np.float64)
    for qa, pa in opa.chunks:
        for qb, pb in opb.chunks:
            acc += gemm(qa, qb, part, scale * pa * pb, opa.factor, opb.factor, opb.packed)
    return acc.astype(dt, copy=False).reshape(out_shape)
