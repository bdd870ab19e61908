"""The ShiftQuant GEMM used by Linear(bits=...): numkern.quant.shiftquant + numkern.quant.matmul."""

from __future__ import annotations

from ..quant import PackedWeight, matmul, shiftquant


def qmatmul(a, a_axis, a_rounding, a_bits, b, b_axis, b_rounding, b_bits, rng):
    """ShiftQuant(a) @ ShiftQuant(b) in float32, with each operand's channel axis, rounding, bits.

    The integer GEMM is exact, so the result is the float64 product of the dequantized operands
    rounded once to float32 (numkern.quant.matmul).
    """
    qa = shiftquant(a, a_bits, axis=a_axis, rounding=a_rounding, rng=rng)
    qb = shiftquant(b, b_bits, axis=b_axis, rounding=b_rounding, rng=rng)
    return matmul(qa, qb)


def qmatmul_packed(a, a_bits, pw: PackedWeight):
    """qmatmul(a, -1, "nearest", a_bits, w, -1, "nearest", bits) for ``pw = prepack(w, bits)``, bit
    for bit: `a` is quantized the same way (straight into its pre-shifted form), `w` was once."""
    return matmul(a, pw, bits=a_bits, rounding="nearest")
