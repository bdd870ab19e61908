"""The ShiftQuant GEMM used by Linear(bits=...).

Uses numkern.quant (shiftquant + matmul) when it is present.
TEMPORARY FALLBACK (remove once the quant branch is merged): a NumPy quantizer with the same
definition (issue 3), so the layers can be developed before the kernels land.
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - depends on the build
    from ..quant import matmul as _q_matmul
    from ..quant import shiftquant as _q_shiftquant
except ImportError:  # pragma: no cover
    _q_matmul = _q_shiftquant = None

_DEFAULT_GROUPS = {4: 5, 6: 3, 8: 1}


def _fallback_dequantized(x, bits, axis, rounding, rng):
    """TEMPORARY FALLBACK: ShiftQuant quantize-dequantize in NumPy (same definition as issue 3)."""
    x = np.asarray(x, dtype=np.float32)
    q_max = 2 ** (bits - 1) - 1
    groups = _DEFAULT_GROUPS[bits]
    axis = axis % x.ndim
    other = tuple(d for d in range(x.ndim) if d != axis)
    r = np.abs(x).max(axis=other, keepdims=True) if other else np.abs(x)
    big = float(r.max()) if r.size else 0.0
    if big == 0.0:
        return np.zeros_like(x)
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(big / r))
    e = np.where(r == 0, groups - 1, np.minimum(groups - 1, e))
    s = (np.float32(big / q_max) * np.exp2(-e)).astype(np.float32)
    v = x / s
    if rounding == "nearest":
        q = np.rint(v)
    else:
        q = np.floor(v + rng.random(v.shape, dtype=np.float32))
    return (np.clip(q, -q_max, q_max) * s).astype(np.float32)


def qmatmul(a, a_axis, a_rounding, b, b_axis, b_rounding, bits, rng):
    """ShiftQuant(a) @ ShiftQuant(b) in float32; channel axes and rounding modes per operand."""
    if _q_matmul is not None:
        qa = _q_shiftquant(a, bits, axis=a_axis, rounding=a_rounding, rng=rng)
        qb = _q_shiftquant(b, bits, axis=b_axis, rounding=b_rounding, rng=rng)
        return _q_matmul(qa, qb)
    da = _fallback_dequantized(a, bits, a_axis, a_rounding, rng)
    db = _fallback_dequantized(b, bits, b_axis, b_rounding, rng)
    return da @ db


def using_fallback() -> bool:
    return _q_matmul is None
