"""The integer operands of matmul: int8 matrices (pre-shifted chunks), base scale, row/column factors."""

from __future__ import annotations

import numpy as np

from ._gemm import nrows
from ._tensor import ShiftQuantTensor, qmax


def _preshift_room(bits: int) -> int:
    """Largest s with Q * 2**s <= 127: how far a group may be pre-shifted inside int8."""
    Q, s = qmax(bits), 0
    while Q << (s + 1) <= 127:
        s += 1
    return s


class Operand:
    """An operand of the integer GEMM: int8 matrix (pre-shift chunks), scale, row/col factors."""

    def __init__(self, chunks, scale, factor, packed=False):
        self.chunks = chunks  # list of (int8 matrix, 2**-hi power as float)
        self.scale = scale  # float64 base scale
        self.factor = factor  # float64 per output row (a) / column (b), or None
        self.packed = packed  # the matrices are int8_pack_b buffers (a PackedWeight's)


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


def operand_a(t: ShiftQuantTensor) -> Operand:
    q = t.values()
    K = t.shape[-1]
    base = float(t.base_scale)
    if t.granularity == "channel" and t.axis != t.ndim - 1:
        # Groups along M or a batch axis: an output-row factor applied in the epilogue.
        e = np.broadcast_to(t.exponents(), t.shape[:-1] + (1,))[..., 0]
        row = np.ascontiguousarray(np.ldexp(1.0, -e.astype(np.int32)).reshape(-1))
        return Operand([(np.ascontiguousarray(q).reshape(nrows(t.shape), K), 1.0)], base, row)
    e = t.exponents()  # broadcastable: (1, ..., K) for channels, full shape for blocks
    chunks = _contracted_chunks(q, e, t.bits, t.n_groups)
    return Operand([(np.ascontiguousarray(c).reshape(nrows(t.shape), K), p) for c, p in chunks], base, None)


def operand_b(t: ShiftQuantTensor) -> Operand:
    q = t.values()
    base = float(t.base_scale)
    if t.granularity == "channel" and t.axis == 1:
        col = np.ascontiguousarray(np.ldexp(1.0, -t.shift.astype(np.int32)))
        return Operand([(np.ascontiguousarray(q), 1.0)], base, col)
    e = t.exponents()
    return Operand([(np.ascontiguousarray(c), p) for c, p in _contracted_chunks(q, e, t.bits, t.n_groups)], base, None)
