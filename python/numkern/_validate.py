"""Argument checks shared by the kernel families: dtype policy, axis, out=, overlap."""

from __future__ import annotations

from typing import Union

import numpy as np
import numpy.typing as npt

try:  # NumPy >= 2
    from numpy.lib.array_utils import normalize_axis_index as _normalize_axis_index
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import normalize_axis_index as _normalize_axis_index  # type: ignore[no-redef]

try:  # NumPy >= 1.25
    from numpy.exceptions import AxisError
except ImportError:  # pragma: no cover - NumPy 1.23 and 1.24
    AxisError = np.AxisError  # type: ignore[attr-defined,misc]  # noqa: NPY201 (the only name there)

#: What an ``rng=`` argument accepts: anything :func:`numpy.random.default_rng` takes.
RngLike = Union[None, int, np.integer, np.random.SeedSequence, np.random.BitGenerator, np.random.Generator]
#: Public data bounds of the dp structures: a radius ``r`` for ``(-r, r)``, or ``(lo, hi)`` with
#: scalars or one value per feature.
BoundsLike = Union[float, tuple[npt.ArrayLike, npt.ArrayLike]]

_COMPUTE_TYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Above this many bytes a conversion or copy runs on numkern's thread pool (NumPy's astype and copy
# use one thread, and would be a serial pass in front of a parallel kernel).
PARALLEL_COPY_BYTES = 1 << 21


def parallel_astype(arr: np.ndarray, dtype) -> np.ndarray:
    """``arr.astype(dtype)`` (always a new C-contiguous array), on the thread pool when large."""
    dtype = np.dtype(dtype)
    if (
        max(arr.nbytes, arr.size * dtype.itemsize) >= PARALLEL_COPY_BYTES
        and arr.flags.c_contiguous
        and arr.flags.aligned
        and arr.dtype.isnative
        and (dtype == arr.dtype or dtype in _COMPUTE_TYPES or (dtype == np.float16 and arr.dtype == np.float32))
    ):
        from . import _core

        out = np.empty(arr.shape, dtype=dtype)
        _core.convert(out, arr)
        return out
    return arr.astype(dtype, order="C")


def parallel_copyto(dst: np.ndarray, src: np.ndarray) -> None:
    """``np.copyto(dst, src, casting="unsafe")`` for arrays of one shape, on the thread pool when
    large and both are aligned C-contiguous native arrays of a pair it converts."""
    if (
        dst.nbytes >= PARALLEL_COPY_BYTES
        and dst.shape == src.shape
        and dst.flags.c_contiguous
        and src.flags.c_contiguous
        and dst.flags.aligned
        and src.flags.aligned
        and src.dtype.isnative
        and dst.dtype.isnative
        and (
            dst.dtype == src.dtype
            or dst.dtype in _COMPUTE_TYPES
            or (dst.dtype == np.float16 and src.dtype == np.float32)
        )
    ):
        from . import _core

        _core.convert(dst, src)
    else:
        np.copyto(dst, src, casting="unsafe")


def deliver(target: np.ndarray, out: np.ndarray | None, result_dtype) -> np.ndarray:
    """The result of a kernel that wrote `target`: `out` (filled from target unless it is target),
    or target itself in the result dtype (converted on the thread pool when it differs)."""
    if out is None:
        return target if target.dtype == result_dtype else parallel_astype(target, result_dtype)
    if target is not out:
        parallel_copyto(out, target)
    return out


def parallel_copy(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `arr`, on the thread pool when large."""
    return parallel_astype(arr, arr.dtype)


def float_operand(x, name: str = "x"):
    """Return (array in a compute dtype, dtype of the result) for a float kernel.

    float32/float64 are computed as they are; float16 in float32 and returned as float16;
    integers and bool in float64 (as SciPy does). Anything else raises TypeError.
    """
    arr = np.asarray(x)
    dt = arr.dtype
    if dt.kind == "f" and not dt.isnative:  # byte-swapped data: same values, native order
        arr = arr.astype(dt.newbyteorder("="))
        dt = arr.dtype
    if dt in _COMPUTE_TYPES:
        return arr, dt
    if dt == np.float16:
        return parallel_astype(arr, np.float32), dt
    if dt.kind in "biu":
        return parallel_astype(arr, np.float64), np.dtype(np.float64)
    raise TypeError(
        f"{name} must have a real floating-point, integer or bool dtype "
        f"(float16, float32, float64, int*, uint*, bool); got {dt}"
    )


def check_int(value: object, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """`value` as a Python int: TypeError unless it is an int or a NumPy integer (bools are not),
    ValueError outside ``[lo, hi]`` (either bound may be None)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        if hi is None:
            allowed = f">= {lo}"
        elif lo is None:
            allowed = f"<= {hi}"
        else:
            allowed = f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {allowed}, got {v}")
    return v


def generator(rng: RngLike, name: str = "rng") -> np.random.Generator:
    """The Generator an ``rng=`` argument stands for: :func:`numpy.random.default_rng` of None, an
    integer seed, a SeedSequence or a BitGenerator; a Generator is used as it is (its stream is
    shared with the caller). Anything else, bools included, raises TypeError."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(rng)
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, (int, np.integer)):
        raise TypeError(
            f"{name} must be None, an integer seed, a numpy.random.SeedSequence, BitGenerator or Generator, "
            f"got {type(rng).__name__}"
        )
    if rng < 0:
        raise ValueError(f"{name} must be a non-negative integer seed, got {int(rng)}")
    return np.random.default_rng(int(rng))


def normalize_axis(axis, ndim: int) -> int:
    """Normalize a possibly negative axis, raising numpy's AxisError if it is out of range."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer, got {type(axis).__name__}")
    return _normalize_axis_index(int(axis), ndim)


def check_out(out, shape, dtype, name: str = "out") -> np.ndarray:
    """Check that `out` can receive a result of this shape and dtype, without writing to it."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {np.dtype(dtype)}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return out


def next_pow2(n: int) -> int:
    """The smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(0, (int(n) - 1).bit_length())


def c_aligned(x, dtype=None) -> np.ndarray:
    """x as a C-contiguous, aligned array (of `dtype` if given), copied only if needed.

    ``np.ascontiguousarray`` keeps a contiguous array that starts at an odd address (a view one byte
    into a buffer), and the kernels' loads of such data are undefined behaviour (UBSan reports
    them); this also copies those. A dtype conversion of a large C-contiguous array runs on the pool."""
    if (
        dtype is not None
        and isinstance(x, np.ndarray)
        and x.dtype != np.dtype(dtype)
        and x.flags.c_contiguous
        and x.flags.aligned
    ):
        return parallel_astype(x, dtype)
    return np.require(x, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])


def scale_rows(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a * w[:, None]`` for a 2-D float array and a vector of its dtype, on the pool when large
    (one multiply per element: bit for bit NumPy's)."""
    if a.nbytes >= PARALLEL_COPY_BYTES and a.ndim == 2 and w.dtype == a.dtype and a.dtype in _COMPUTE_TYPES:
        from . import _core

        src = c_aligned(a)
        out = np.empty(src.shape, dtype=src.dtype)
        _core.scale_rows(out, src, c_aligned(w))
        return out
    return a * w[:, None]


def same_layout(a: np.ndarray, b: np.ndarray) -> bool:
    """True if a and b view exactly the same memory, element for element."""
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def kernel_input(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Return x in a form the kernels read safely.

    A misaligned x is copied; so is an x that overlaps `out` other than element for element
    (the kernels stream x once per pass and would otherwise read values they already wrote).
    """
    if not x.flags.aligned:
        return x.copy()
    if out is not None and not same_layout(x, out) and np.shares_memory(x, out):
        return parallel_copy(x)
    return x
