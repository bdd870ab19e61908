"""ShiftQuant: power-of-two group quantization and an exact int8 GEMM.

Source: Guo et al., "Towards Accurate and Efficient Sub-8-Bit Integer Training", arXiv 2411.10948.
The paper's code is not public; the definition implemented here is numkern's reading of it:

* symmetric values, no zero point: ``q`` in ``[-Q, Q]`` with ``Q = 2**(bits-1) - 1``;
* groups over the channels of one axis: with ``r_c`` the max-abs of channel ``c`` and ``R`` the
  maximum over channels, ``e_c = min(n_groups - 1, floor(log2(R / r_c)))`` (``n_groups - 1`` for an
  all-zero channel) and the channel's scale is ``s_c = (R / Q) * 2**-e_c``. The base scale ``R / Q``
  is rounded to float32; channels are labelled by their exponent ("shift"), never moved;
* ``granularity="block"``: fixed blocks of ``block_size`` elements along ``axis`` take the place of
  channels (one exponent per block, same formula, one base scale for the tensor), in the style of
  OCP MX / GGML Q8_0, so the two can be compared;
* rounding ``"nearest"`` (ties to even) or ``"stochastic"`` (``floor(t) + [u < t - floor(t)]`` with
  ``u`` uniform, so ``E[q * s] = x`` up to the 2**-24 resolution of ``u``).

Because scales differ by powers of two only, groups along the contracted axis of a matmul are
combined by shifting the integers (``q << (n_groups - 1 - e)`` still fits int8 with the default
``n_groups``: ``7 * 2**4 = 112`` and ``31 * 2**2 = 124``), and groups along an output axis by scaling
rows or columns of the int32 product; so :func:`matmul` runs one integer GEMM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import _core
from ._validate import c_aligned, check_int, float_operand, generator, normalize_axis

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

    from ._validate import RngLike

__all__ = [
    "ShiftQuantTensor",
    "shiftquant",
    "matmul",
    "int8_matmul",
    "pack_int4",
    "unpack_int4",
    "DEFAULT_N_GROUPS",
    "MAX_K_INT32",
]

#: Default number of groups per bit width: the largest n with Q * 2**(n-1) <= 127 for 4 and 6 bits,
#: so the pre-shifted integers still fit int8; 8 bits have no room to shift and default to 1 group.
DEFAULT_N_GROUPS = {4: 5, 6: 3, 8: 1}
_BITS = (4, 6, 8)
_MAX_GROUPS = 32

#: Largest K for which any int8 x int8 dot product of length K fits int32: K * 2**14 <= 2**31 - 1.
MAX_K_INT32 = (1 << 17) - 1

_KIND = {np.dtype(np.int32): 0, np.dtype(np.int64): 1, np.dtype(np.float32): 2, np.dtype(np.float64): 3}


def _qmax(bits: int) -> int:
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


def _quantize(x, bits, axis, n_groups, rounding, granularity, block_size, rng, preshift):
    """Validate, run the kernel; returns (q, shift, base, axis, n_groups, block_size)."""
    arr, _ = float_operand(x, "x")
    if arr.ndim == 0:
        raise ValueError("x must have at least one dimension")
    if isinstance(bits, (bool, np.bool_)) or bits not in _BITS:
        raise ValueError(f"bits must be one of {_BITS}, got {bits!r}")
    bits = int(bits)
    axis = normalize_axis(axis, arr.ndim)
    if rounding not in ("nearest", "stochastic"):
        raise ValueError(f"rounding must be 'nearest' or 'stochastic', got {rounding!r}")
    if granularity not in ("channel", "block"):
        raise ValueError(f"granularity must be 'channel' or 'block', got {granularity!r}")
    block_size = check_int(block_size, "block_size", 1)
    n_groups = DEFAULT_N_GROUPS[bits] if n_groups is None else check_int(n_groups, "n_groups", 1, _MAX_GROUPS)
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
    q, shift, base, axis, n_groups, block_size = _quantize(
        x, bits, axis, n_groups, rounding, granularity, block_size, rng, False
    )
    return ShiftQuantTensor(q, base, shift, axis, int(bits), n_groups, rounding, q.shape, granularity, block_size)


# --------------------------------------------------------------------------------------------- int4


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


# --------------------------------------------------------------------------------------------- GEMM


def _nrows(shape) -> int:
    """Rows of the (batch * M, K) view of an (..., M, K) array."""
    return int(np.prod(shape[:-1], dtype=np.int64))


def _gemm(a2: np.ndarray, b2: np.ndarray, out: np.ndarray, scale=1.0, row=None, col=None) -> np.ndarray:
    """out = scale * row[:, None] * col[None, :] * (a2 @ b2) for C-contiguous int8 a2, b2."""
    if a2.shape[1] == 0:
        out[...] = 0
        return out
    if out.size:
        _core.int8_gemm(a2, b2, out, _KIND[out.dtype], float(scale), row, col)
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
    a2 = np.ascontiguousarray(a.reshape(_nrows(a.shape), K))
    b2 = np.ascontiguousarray(b)
    work = dt if (dt == np.int64 or K <= MAX_K_INT32) else np.dtype(np.int64)
    out = _gemm(a2, b2, np.empty((a2.shape[0], b2.shape[1]), work))
    if work != dt:
        info = np.iinfo(np.int32)
        if out.size and (out.min() < info.min or out.max() > info.max):
            raise OverflowError("int8_matmul: a result does not fit int32; use out_dtype=numpy.int64")
        out = out.astype(np.int32)
    return out.reshape(a.shape[:-1] + (b.shape[1],))


# --------------------------------------------------------------------------------------------- matmul


def _preshift_room(bits: int) -> int:
    """Largest s with Q * 2**s <= 127: how far a group may be pre-shifted inside int8."""
    Q, s = _qmax(bits), 0
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
        return _Operand([(np.ascontiguousarray(q).reshape(_nrows(t.shape), K), 1.0)], base, row)
    e = t.exponents()  # broadcastable: (1, ..., K) for channels, full shape for blocks
    chunks = _contracted_chunks(q, e, t.bits, t.n_groups)
    return _Operand([(np.ascontiguousarray(c).reshape(_nrows(t.shape), K), p) for c, p in chunks], base, None)


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


def _prepare_matmul(a, b, out_dtype, bits, rounding, rng):
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
        q, shift, base, _, n_groups, _ = _quantize(a, bits, -1, None, rounding, "channel", 32, rng, True)
        opa = _Operand([(q.reshape(_nrows(q.shape), K), float(np.ldexp(1.0, -(n_groups - 1))))], float(base), None)
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
    opa, opb, dt, out_shape = _prepare_matmul(a, b, out_dtype, bits, rounding, rng)
    M2 = int(np.prod(out_shape[:-1], dtype=np.int64))
    N = out_shape[-1]
    scale = opa.scale * opb.scale
    if len(opa.chunks) == 1 and len(opb.chunks) == 1:
        (qa, pa), (qb, pb) = opa.chunks[0], opb.chunks[0]
        out = _gemm(qa, qb, np.empty((M2, N), dt), scale * pa * pb, opa.factor, opb.factor)
        return out.reshape(out_shape)
    acc = np.zeros((M2, N), np.float64)
    part = np.empty((M2, N), np.float64)
    for qa, pa in opa.chunks:
        for qb, pb in opb.chunks:
            acc += _gemm(qa, qb, part, scale * pa * pb, opa.factor, opb.factor)
    return acc.astype(dt, copy=False).reshape(out_shape)
