"""ShiftQuantTensor and the quantizer, shiftquant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import _core
from .._validate import c_aligned, check_int, float_operand, generator, normalize_axis
from ._int4 import pack_int4, unpack_int4

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

    from .._validate import RngLike

#: Default number of groups per bit width: the largest n with Q * 2**(n-1) <= 127 for 4 and 6 bits,
#: so the pre-shifted integers still fit int8; 8 bits have no room to shift and default to 1 group.
DEFAULT_N_GROUPS = {4: 5, 6: 3, 8: 1}
BITS = (4, 6, 8)
MAX_GROUPS = int(_core.quant_max_groups)


def qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


@dataclass(frozen=True, eq=False)
class ShiftQuantTensor:
    """A tensor quantized by :func:`shiftquant`.

    Attributes
    ----------
    qdata : ndarray
        int8 values in ``[-Q, Q]`` with the tensor's shape, or, when ``packed`` (4 bits only),
        uint8 with two values per byte along the last axis (see :func:`pack_int4`).
    base_scale : numpy.float32
        ``R / Q`` rounded to float32 (0 for an all-zero tensor).
    shift : ndarray of uint8
        Exponents ``e``: one per channel of ``axis`` (granularity ``"channel"``), or the tensor's
        shape with ``axis`` replaced by the number of blocks (granularity ``"block"``).
    axis, bits, n_groups, rounding, granularity, block_size, shape, packed
        The parameters it was made with.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> t = numkern.shiftquant(np.array([[8.0, -4.0, 1.0, 0.5]], dtype=np.float32), bits=4)
    >>> print(t.qdata, t.shift, t.bits, t.n_groups)
    [[ 7 -7  7  7]] [0 1 3 4] 4 5
    >>> print(t.dequantize())
    [[ 8.  -4.   1.   0.5]]
    >>> t.nbytes
    12
    """

    qdata: np.ndarray
    base_scale: np.float32
    shift: np.ndarray
    axis: int
    bits: int
    n_groups: int
    rounding: str
    shape: tuple
    granularity: str = "channel"
    block_size: int = 32
    packed: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the quantized data, the shifts and the float32 base scale."""
        return int(self.qdata.nbytes + self.shift.nbytes + 4)

    def values(self) -> np.ndarray:
        """The int8 values ``q`` (unpacked if stored packed)."""
        if self.packed:
            return unpack_int4(self.qdata, self.shape[-1])
        return self.qdata

    def exponents(self) -> np.ndarray:
        """Per-element exponents ``e`` (uint8) broadcastable to ``shape``."""
        if self.granularity == "channel":
            view = [1] * self.ndim
            view[self.axis] = self.shape[self.axis]
            return self.shift.reshape(view)
        e = np.repeat(self.shift, self.block_size, axis=self.axis)
        return np.take(e, np.arange(self.shape[self.axis]), axis=self.axis)

    def scales(self) -> np.ndarray:
        """Per-element scales ``base_scale * 2**-e`` as float64 (exact), broadcastable to ``shape``."""
        return np.ldexp(np.float64(self.base_scale), -self.exponents().astype(np.int32))

    def dequantize(self, dtype: DTypeLike = np.float32) -> np.ndarray:
        """Return ``q * base_scale * 2**-e``, computed exactly in float64 and rounded once to `dtype`.

        Raises
        ------
        TypeError
            If `dtype` is not float32 or float64.
        """
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        return (self.values().astype(np.float64) * self.scales()).astype(dtype, copy=False)

    def pack(self) -> ShiftQuantTensor:
        """Return the same tensor with 4-bit values stored two per byte (see :func:`pack_int4`)."""
        if self.bits != 4:
            raise ValueError(f"only 4-bit tensors can be packed, this one has bits={self.bits}")
        if self.packed:
            return self
        return _replace(self, qdata=pack_int4(self.qdata), packed=True)

    def unpack(self) -> ShiftQuantTensor:
        """Return the same tensor with int8 values, one per byte."""
        if not self.packed:
            return self
        return _replace(self, qdata=self.values(), packed=False)

    def __repr__(self) -> str:
        return (
            f"ShiftQuantTensor(shape={self.shape}, bits={self.bits}, axis={self.axis}, n_groups={self.n_groups}, "
            f"granularity={self.granularity!r}, rounding={self.rounding!r}, base_scale={float(self.base_scale)!r}, "
            f"packed={self.packed})"
        )


def _replace(t: ShiftQuantTensor, **kw) -> ShiftQuantTensor:
    fields = dict(t.__dict__)
    fields.update(kw)
    return ShiftQuantTensor(**fields)


def _derive_key(rng) -> int:
    gen = generator(rng)
    return int(gen.integers(0, np.iinfo(np.uint64).max, dtype=np.uint64, endpoint=True))


def quantize(x, bits, axis, n_groups, rounding, granularity, block_size, rng, preshift):
    """Validate, run the kernel; returns (q, shift, base, axis, n_groups, block_size)."""
    arr, _ = float_operand(x, "x")
    if arr.ndim == 0:
        raise ValueError("x must have at least one dimension")
    if isinstance(bits, (bool, np.bool_)) or bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits!r}")
    bits = int(bits)
    axis = normalize_axis(axis, arr.ndim)
    if rounding not in ("nearest", "stochastic"):
        raise ValueError(f"rounding must be 'nearest' or 'stochastic', got {rounding!r}")
    if granularity not in ("channel", "block"):
        raise ValueError(f"granularity must be 'channel' or 'block', got {granularity!r}")
    block_size = check_int(block_size, "block_size", 1)
    n_groups = DEFAULT_N_GROUPS[bits] if n_groups is None else check_int(n_groups, "n_groups", 1, MAX_GROUPS)
    key = _derive_key(rng) if rounding == "stochastic" else 0
    x32 = c_aligned(arr, np.float32)
    shape = x32.shape
    L = shape[axis]
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    q = np.empty(shape, dtype=np.int8)
    if granularity == "channel":
        shift = np.full(L, n_groups - 1, dtype=np.uint8)
        block = 0
    else:
        nb = -(-L // block_size)
        sshape = shape[:axis] + (nb,) + shape[axis + 1 :]
        shift = np.full(sshape, n_groups - 1, dtype=np.uint8)
        block = block_size
    if x32.size == 0:
        return q, shift, np.float32(0.0), axis, n_groups, block_size
    ok, base = _core.shiftquant(
        x32, outer, L, inner, bits, n_groups, block, rounding == "stochastic", key, preshift, q, shift
    )
    if not ok:
        raise ValueError("x must be finite: it contains inf or NaN")
    return q, shift, np.float32(base), axis, n_groups, block_size


def shiftquant(
    x: ArrayLike,
    bits: int = 4,
    *,
    axis: int = -1,
    n_groups: int | None = None,
    rounding: str = "nearest",
    granularity: str = "channel",
    block_size: int = 32,
    rng: RngLike = None,
) -> ShiftQuantTensor:
    """ShiftQuant a tensor: symmetric integers with per-group power-of-two scales.

    Implements ShiftQuant of Guo et al., arXiv 2411.10948, as numkern reads it (the paper's code is
    not public): with ``r_c`` the max-abs of channel ``c`` of `axis` and ``R = max_c r_c``, the
    channel's exponent is ``e_c = min(n_groups - 1, floor(log2(R / r_c)))`` (computed exactly, from
    the binary exponents of ``R`` and ``r_c``; ``n_groups - 1`` for an all-zero channel), its scale
    ``s_c = base_scale * 2**-e_c`` with ``base_scale = float32(R / Q)``, ``Q = 2**(bits-1) - 1``, and
    ``q = clamp(round(x * 2**e_c / base_scale), -Q, Q)`` with the division rounded in float32.

    Parameters
    ----------
    x : array_like
        Real values (float32; float64 and integers are rounded to float32 first). Must be finite.
    bits : {4, 6, 8}
    axis : int
        The channel axis (granularity "channel") or the axis the blocks run along ("block").
    n_groups : int, optional
        Number of distinct exponents, 1 to 32. Default 5 for 4 bits, 3 for 6 bits, 1 for 8 bits: the
        most for which the pre-shifted values ``q * 2**(n_groups-1)`` still fit int8.
    rounding : {"nearest", "stochastic"}
        "nearest" rounds ties to even (error <= s_c / 2). "stochastic" rounds up with probability
        equal to the fraction, which is unbiased to within 2**-24 of a step.
    granularity : {"channel", "block"}
        "block": consecutive runs of `block_size` elements along `axis` (for each index of the other
        axes) share an exponent, OCP-MX style; the base scale is still one per tensor.
    block_size : int
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator
        Source of randomness for stochastic rounding, following NumPy's conventions
        (``numpy.random.default_rng(rng)``); one 64-bit key is drawn from it and the kernel expands
        it with a counter-based hash, so results are the same on every ISA level and thread count.

    Returns
    -------
    ShiftQuantTensor

    Raises
    ------
    TypeError
        If `x` is not numeric, or `axis`, `n_groups`, `block_size` or `rng` have the wrong type.
    ValueError
        If `x` is 0-d or contains inf/NaN, or `bits`, `n_groups`, `rounding`, `granularity`,
        `block_size` are out of range.
    numpy.exceptions.AxisError
        If `axis` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> x = np.array([[8.0, -4.0, 1.0, 0.5], [2.0, 1.0, -0.25, 0.125]], dtype=np.float32)
    >>> t = numkern.shiftquant(x, bits=4)                       # one channel per column
    >>> print(t.qdata)
    [[ 7 -7  7  7]
     [ 2  2 -2  2]]
    >>> print(t.shift, round(float(t.base_scale), 6))           # exponents, R / Q = 8 / 7
    [0 1 3 4] 1.142857
    >>> g = numkern.shiftquant(x, bits=4, rounding="stochastic", rng=0)
    >>> print(np.abs(g.dequantize() - x).max() < 2 * 8 / 7)
    True
    """
    q, shift, base, axis, n_groups, block_size = quantize(
        x, bits, axis, n_groups, rounding, granularity, block_size, rng, False
    )
    return ShiftQuantTensor(q, base, shift, axis, int(bits), n_groups, rounding, q.shape, granularity, block_size)
