"""matmul of ShiftQuantTensors with one exact integer GEMM; prepare_matmul, shared with numkern.dask."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._validate import generator
from ._gemm import gemm, nrows
from ._tensor import ShiftQuantTensor, qmax, quantize, shiftquant

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

    from .._validate import RngLike


def _preshift_room(bits: int) -> int:
    """Largest s with Q * 2**s <= 127: how far a group may be pre-shifted inside int8."""
    Q, s = qmax(bits), 0
    while Q << (s + 1) <= 127:
        s += 1
    return s


class _Operand:
    """An operand of the integer GEMM: int8 matrix (pre-shift chunks), scale, row/col factors."""

    def __init__(self, chunks, scale, factor):
        self.chunks = chunks  # list of (int8 matrix, 2**-hi power as float)
        self.scale = scale  # float64 base scale
        self.factor = factor  # float64 per output row (a) / column (b), or None


def _contracted_chunks(q: np.ndarray, e: np.ndarray, bits: int, n_groups: int):
    """Groups along the contracted axis: shift q << (hi - e) within chunks of exponents that fit int8."""
    room = _preshift_room(bits)
    if n_groups == 1:
        return [(q, 1.0)]
    if n_groups - 1 <= room:  # one pass: every group fits int8 once shifted to the finest scale
        return [(np.left_shift(q, (n_groups - 1 - e).astype(np.int8)), float(np.ldexp(1.0, -(n_groups - 1))))]
    chunks = []
    for lo in range(0, n_groups, room + 1):
        hi = min(n_groups - 1, lo + room)
        sel = (e >= lo) & (e <= hi)
        if not sel.any():
            continue
        s = (hi - e.astype(np.int16)).clip(0).astype(np.int8)
        qc = np.where(sel, np.left_shift(q, s), np.int8(0)).astype(np.int8, copy=False)
        chunks.append((qc, float(np.ldexp(1.0, -hi))))
    if not chunks:
        chunks.append((np.zeros_like(q), 1.0))
    return chunks


def _operand_a(t: ShiftQuantTensor) -> _Operand:
    q = t.values()
    K = t.shape[-1]
    base = float(t.base_scale)
    if t.granularity == "channel" and t.axis != t.ndim - 1:
        # Groups along M or a batch axis: an output-row factor applied in the epilogue.
        e = np.broadcast_to(t.exponents(), t.shape[:-1] + (1,))[..., 0]
        row = np.ascontiguousarray(np.ldexp(1.0, -e.astype(np.int32)).reshape(-1))
        return _Operand([(np.ascontiguousarray(q).reshape(nrows(t.shape), K), 1.0)], base, row)
    e = t.exponents()  # broadcastable: (1, ..., K) for channels, full shape for blocks
    chunks = _contracted_chunks(q, e, t.bits, t.n_groups)
    return _Operand([(np.ascontiguousarray(c).reshape(nrows(t.shape), K), p) for c, p in chunks], base, None)


def _operand_b(t: ShiftQuantTensor) -> _Operand:
    q = t.values()
    base = float(t.base_scale)
    if t.granularity == "channel" and t.axis == 1:
        col = np.ascontiguousarray(np.ldexp(1.0, -t.shift.astype(np.int32)))
        return _Operand([(np.ascontiguousarray(q), 1.0)], base, col)
    e = t.exponents()
    return _Operand([(np.ascontiguousarray(c), p) for c, p in _contracted_chunks(q, e, t.bits, t.n_groups)], base, None)


def _as_tensor(x, name: str, bits: int, axis: int, rounding: str, rng):
    if isinstance(x, ShiftQuantTensor):
        return x
    return shiftquant(x, bits, axis=axis, rounding=rounding, rng=rng)


def prepare_matmul(a, b, out_dtype, bits, rounding, rng):
    """Checks and the integer operands of matmul (also used by numkern.dask.matmul)."""
    dt = np.dtype(out_dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"out_dtype must be float32 or float64, got {dt}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        rng = generator(rng)  # one stream for both operands, never the same key twice
    known = a if isinstance(a, ShiftQuantTensor) else (b if isinstance(b, ShiftQuantTensor) else None)
    if bits is None:
        bits = known.bits if known is not None else 8
    if rounding is None:
        rounding = known.rounding if known is not None else "nearest"
    a_shape = a.shape if isinstance(a, ShiftQuantTensor) else np.shape(a)
    b_shape = b.shape if isinstance(b, ShiftQuantTensor) else np.shape(b)
    if len(a_shape) < 2 or len(b_shape) != 2:
        raise ValueError(f"a must be (..., M, K) and b (K, N); got shapes {tuple(a_shape)} and {tuple(b_shape)}")
    if a_shape[-1] != b_shape[0]:
        raise ValueError(f"inner dimensions differ: a is {tuple(a_shape)}, b is {tuple(b_shape)}")
    out_shape = tuple(a_shape[:-1]) + (b_shape[1],)
    K = a_shape[-1]

    if not isinstance(a, ShiftQuantTensor) and K > 0:
        # Fast path: quantize a straight into its pre-shifted form (groups along K).
        q, shift, base, _, n_groups, _ = quantize(a, bits, -1, None, rounding, "channel", 32, rng, True)
        opa = _Operand([(q.reshape(nrows(q.shape), K), float(np.ldexp(1.0, -(n_groups - 1))))], float(base), None)
    else:
        opa = _operand_a(_as_tensor(a, "a", bits, -1, rounding, rng))
    opb = _operand_b(_as_tensor(b, "b", bits, -1, rounding, rng))

    return opa, opb, dt, out_shape


def matmul(
    a: ShiftQuantTensor | ArrayLike,
    b: ShiftQuantTensor | ArrayLike,
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
    b : ShiftQuantTensor or array_like, shape (K, N)
        A float operand is quantized with ``axis=-1`` (groups along N: per-column epilogue factors).
    out_dtype : {numpy.float32, numpy.float64}
    bits, rounding, rng
        For operands quantized on the fly: default the other operand's bits and rounding, or
        8 bits and "nearest" when both are float.

    Raises
    ------
    TypeError
        If `out_dtype` is not float32/float64 or an operand is not numeric.
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
    opa, opb, dt, out_shape = prepare_matmul(a, b, out_dtype, bits, rounding, rng)
    M2 = int(np.prod(out_shape[:-1], dtype=np.int64))
    N = out_shape[-1]
    scale = opa.scale * opb.scale
    if len(opa.chunks) == 1 and len(opb.chunks) == 1:
        (qa, pa), (qb, pb) = opa.chunks[0], opb.chunks[0]
        out = gemm(qa, qb, np.empty((M2, N), dt), scale * pa * pb, opa.factor, opb.factor)
        return out.reshape(out_shape)
    acc = np.zeros((M2, N), np.float64)
    part = np.empty((M2, N), np.float64)
    for qa, pa in opa.chunks:
        for qb, pb in opb.chunks:
            acc += gemm(qa, qb, part, scale * pa * pb, opa.factor, opb.factor)
    return acc.astype(dt, copy=False).reshape(out_shape)
