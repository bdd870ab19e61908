"""PackedWeight and prepack: the right operand of matmul quantized and packed once, for many products."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from .. import _core
from .._validate import check_int
from ._operands import Operand, operand_b
from ._tensor import BITS, ShiftQuantTensor, shiftquant

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

# The alignment int8_gemm_packed requires of a packed buffer (the C++ kPackedBAlign).
_ALIGN = 64


def _aligned_copy(buf: np.ndarray) -> np.ndarray:
    """A read-only copy of a packed buffer at the alignment the kernel requires (an unpickled
    array has only NumPy's default alignment)."""
    raw = np.empty(buf.size + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    out = raw[start : start + buf.size]
    out[...] = buf
    out.flags.writeable = False
    return out


def _serves(buf: np.ndarray, shape: tuple) -> bool:
    """Whether buf is a packed (K, N) operand of the active kernel: a product with no rows runs
    every check of the kernel's header (kernel, K, N, size) and nothing else."""
    K, N = shape
    try:
        _core.int8_gemm_packed(np.empty((0, K), np.int8), buf, np.empty((0, N), np.float32), 2, 1.0, None, None)
    except ValueError:
        return False
    return True


class PackedWeight:
    """The right operand of :func:`matmul`, quantized and packed once for the GEMM kernel of the
    active ISA level; made by :func:`prepack`.

    ``matmul(x, pw)`` skips what ``matmul(x, w, bits=...)`` spends on `w` at every call (quantizing
    it, shifting its groups, packing it into the kernel's panels) and gives the same result, bit for
    bit. A PackedWeight is immutable: any number of threads may multiply by it at once. It pickles
    with its panels and the name of the kernel they were packed for; unpickled where another kernel
    is active (another CPU or ISA level), it is repacked from its quantized values, as it is when
    :func:`numkern.set_isa` changes the level after packing.

    Attributes
    ----------
    shape : tuple of int
        ``(K, N)``.
    bits, granularity, block_size
        The quantization of the weight (as :func:`shiftquant` has them).
    kernel : str
        The GEMM kernel the panels are packed for.
    tensor : ShiftQuantTensor
        The quantized weight, kept for :meth:`dequantize`, pickling and repacking; for 4 bits its
        values are stored two per byte (``tensor.packed``).
    nbytes : int
        Bytes held: the quantized weight, its shifts, the panels and the column factors.

    Notes
    -----
    Layout. The panels are those of the integer GEMM (:func:`int8_matmul`), one int8 per value: a
    64-byte header (kernel name, K, N, size) and then, for each run of the kernel's panel width of
    columns, the K-blocks of those columns in the order the micro-kernel reads them. Groups along
    K (column-wise ``granularity="block"``, or a tensor quantized with ``axis=0``) are pre-shifted,
    ``q << (n_groups - 1 - e)``, which takes up to 8 bits even for 4-bit values, so the panels are
    int8 whatever `bits` is. Channels along N (the default for a float `w`) stay unshifted and
    become column factors ``2**-e`` of the float epilogue. More exponent groups than fit int8 once
    shifted (a large ``n_groups``) give one panel set per chunk of exponents, as in :func:`matmul`.

    int4. A 4-bit weight keeps its quantized values as :func:`pack_int4` stores them: along each
    row of ``(K, N)``, byte ``j`` holds column ``2j`` in its low nibble and column ``2j + 1`` in its
    high nibble, both two's complement (-8 to 7; ShiftQuant uses -7 to 7), an odd last column padded
    with a zero nibble.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import quant
    >>> rng = np.random.default_rng(0)
    >>> w = rng.standard_normal((256, 64)).astype(np.float32)
    >>> pw = quant.prepack(w, bits=4)
    >>> pw.shape, pw.bits, pw.granularity
    ((256, 64), 4, 'channel')
    >>> x = rng.standard_normal((8, 256)).astype(np.float32)
    >>> print(np.array_equal(quant.matmul(x, pw), quant.matmul(x, w, bits=4)))
    True
    >>> print(np.array_equal(pw.dequantize(), quant.shiftquant(w, 4).dequantize()))
    True
    """

    __slots__ = ("_tensor", "_scale", "_col", "_powers", "_packed", "_lock", "__weakref__")
    _tensor: ShiftQuantTensor
    _scale: float
    _col: np.ndarray | None  # column factors 2**-e (channels along N), or None
    _powers: tuple  # 2**-hi of each chunk of pre-shifted groups
    _packed: tuple  # (kernel name, packed buffers of the chunks), replaced as one
    _lock: threading.Lock

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("PackedWeight objects are made by numkern.quant.prepack")

    @classmethod
    def _make(cls, tensor: ShiftQuantTensor, kernel: str | None = None, buffers=()) -> PackedWeight:
        """A PackedWeight of a 2-D tensor: `buffers` (packed for `kernel`, from a pickle) are taken
        if the active kernel can use them as they are, else the tensor is packed afresh."""
        self = object.__new__(cls)
        op = operand_b(tensor)
        col = op.factor
        if col is not None:
            col.flags.writeable = False
        powers = tuple(p for _, p in op.chunks)
        adopt = (
            kernel == _core.gemm_kernel()
            and len(buffers) == len(op.chunks)
            and all(isinstance(b, np.ndarray) and b.dtype == np.uint8 and b.ndim == 1 for b in buffers)
        )
        bufs = tuple(_aligned_copy(b) for b in buffers) if adopt else ()
        if adopt and all(_serves(b, tensor.shape) for b in bufs):
            packed = (kernel, bufs)
        else:
            packed = _pack(op)
        for name, value in (("_tensor", tensor), ("_scale", op.scale), ("_col", col), ("_powers", powers)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_packed", packed)
        object.__setattr__(self, "_lock", threading.Lock())
        return self

    def __setattr__(self, name, value):
        raise AttributeError("PackedWeight is immutable")

    def __delattr__(self, name):
        raise AttributeError("PackedWeight is immutable")

    @property
    def shape(self) -> tuple:
        return self._tensor.shape

    @property
    def bits(self) -> int:
        return self._tensor.bits

    @property
    def granularity(self) -> str:
        return self._tensor.granularity

    @property
    def block_size(self) -> int:
        return self._tensor.block_size

    @property
    def tensor(self) -> ShiftQuantTensor:
        return self._tensor

    @property
    def kernel(self) -> str:
        return self._packed[0]

    @property
    def nbytes(self) -> int:
        """Bytes held: the quantized weight, its shifts, the packed panels and the column factors."""
        col = 0 if self._col is None else self._col.nbytes
        return int(self._tensor.nbytes + sum(b.nbytes for b in self._packed[1]) + col)

    def dequantize(self, dtype: DTypeLike = np.float32) -> np.ndarray:
        """Return the weight's values ``q * base_scale * 2**-e``, (K, N), computed exactly in float64
        and rounded once to `dtype` (see :meth:`ShiftQuantTensor.dequantize`).

        Raises
        ------
        TypeError
            If `dtype` is not float32 or float64.
        """
        return self._tensor.dequantize(dtype)

    def _operand(self) -> Operand:
        """The GEMM operand, its panels packed for the active kernel (repacked first, once, if the
        ISA level changed since they were packed)."""
        kernel, bufs = self._packed
        if kernel != _core.gemm_kernel():
            with self._lock:  # one repack however many threads notice; readers keep the old tuple
                if self._packed[0] != _core.gemm_kernel():
                    object.__setattr__(self, "_packed", _pack(operand_b(self._tensor)))
                kernel, bufs = self._packed
        return Operand(list(zip(bufs, self._powers)), self._scale, self._col, packed=True)

    def __getstate__(self):
        kernel, bufs = self._packed
        return {"tensor": self._tensor, "kernel": kernel, "buffers": bufs}

    def __setstate__(self, state):
        # __new__ made this object without __init__; fill it as _make fills a new one.
        done = PackedWeight._make(state["tensor"], state.get("kernel"), tuple(state.get("buffers", ())))
        for name in PackedWeight.__slots__[:-1]:
            object.__setattr__(self, name, object.__getattribute__(done, name))

    def __repr__(self) -> str:
        return (
            f"PackedWeight(shape={self.shape}, bits={self.bits}, granularity={self.granularity!r}, "
            f"kernel={self.kernel!r}, nbytes={self.nbytes})"
        )


def _pack(op: Operand):
    """(kernel name, read-only packed buffers) of an operand's chunks for the active kernel."""
    kernel = _core.gemm_kernel()
    bufs = []
    for q, _ in op.chunks:
        buf, kernel = _core.int8_pack_b(q)
        buf.flags.writeable = False
        bufs.append(buf)
    return kernel, tuple(bufs)


def prepack(
    w: ShiftQuantTensor | ArrayLike, bits: int = 4, *, granularity: str = "channel", block_size: int = 32
) -> PackedWeight:
    """Quantize and pack the right operand of :func:`matmul` once, for many products.

    ``matmul(x, prepack(w, bits))`` equals ``matmul(x, w, bits=bits)`` bit for bit, for a float
    or :class:`ShiftQuantTensor` `x` (rounded to nearest, like `w`), and skips the work on `w`
    that the latter repeats at every call: quantizing, shifting and packing it for the GEMM kernel.

    Parameters
    ----------
    w : array_like or ShiftQuantTensor, shape (K, N)
        A float `w` is quantized as :func:`matmul` quantizes a float right operand:
        ``shiftquant(w, bits, axis=-1, granularity=granularity, block_size=block_size)`` (round to
        nearest). A ShiftQuantTensor is packed as it is; `bits`, `granularity` and (for blocks)
        `block_size` must then be its own.
    bits : {4, 6, 8}
    granularity : {"channel", "block"}
        "channel": one exponent per column of `w` (an epilogue factor). "block": runs of
        `block_size` consecutive columns of each row share an exponent (pre-shifted in the panels).
    block_size : int

    Returns
    -------
    PackedWeight

    Raises
    ------
    TypeError
        If `w` is not numeric or `block_size` is not an integer.
    ValueError
        If `w` is not 2-D or not finite, `bits` or `granularity` is not allowed, or a
        ShiftQuantTensor's parameters differ from those given.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import quant
    >>> rng = np.random.default_rng(0)
    >>> w = rng.standard_normal((512, 128)).astype(np.float32)
    >>> pw = quant.prepack(w, bits=4)
    >>> x = rng.standard_normal((4, 512)).astype(np.float32)
    >>> y = quant.matmul(x, pw)
    >>> y.shape, y.dtype
    ((4, 128), dtype('float32'))
    >>> print(np.array_equal(y, quant.matmul(x, w, bits=4)))
    True
    >>> qx = quant.shiftquant(x, 4)                      # a quantized left operand works too
    >>> exact = qx.dequantize().astype(np.float64) @ pw.dequantize(np.float64)
    >>> print(np.allclose(quant.matmul(qx, pw), exact, rtol=1e-6, atol=1e-6))
    True
    >>> pb = quant.prepack(w, bits=8, granularity="block", block_size=32)
    >>> print(pb.bits, pb.granularity, pb.nbytes > w.size)
    8 block True
    """
    if isinstance(bits, (bool, np.bool_)) or bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits!r}")
    if granularity not in ("channel", "block"):
        raise ValueError(f"granularity must be 'channel' or 'block', got {granularity!r}")
    block_size = check_int(block_size, "block_size", 1)
    if isinstance(w, PackedWeight):
        w = w.tensor
    if isinstance(w, ShiftQuantTensor):
        if w.ndim != 2:
            raise ValueError(f"w must be 2-D (K, N), got shape {w.shape}")
        if w.bits != bits or w.granularity != granularity or (granularity == "block" and w.block_size != block_size):
            raise ValueError(
                f"w is a ShiftQuantTensor with bits={w.bits}, granularity={w.granularity!r}, "
                f"block_size={w.block_size}: pass those, not bits={bits}, granularity={granularity!r}, "
                f"block_size={block_size}"
            )
        t = w
    else:
        if np.ndim(w) != 2:
            raise ValueError(f"w must be 2-D (K, N), got shape {np.shape(w)}")
        t = shiftquant(w, bits, axis=-1, granularity=granularity, block_size=block_size)
    if t.bits == 4 and not t.packed:
        t = t.pack()  # half the memory; the panels hold the int8 values the GEMM reads
    return PackedWeight._make(t)
