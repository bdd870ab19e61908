"""L1 (mean absolute deviation) and L2 layer normalization, forward and backward, and the
integer-only int8 L1 normalization of Guo et al., "Towards Accurate and Efficient Sub-8-Bit
Integer Training" (2024), on any axis of any strided array."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np

from . import _core
from ._validate import (
    c_aligned,
    check_int,
    check_out,
    deliver,
    float_operand,
    kernel_input,
    normalize_axis,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["l1_norm", "layer_norm", "l1_norm_int8", "l1_norm_backward", "layer_norm_backward"]

INT8_MAX_SLICE = 1 << 16


def _eps(eps):
    if isinstance(eps, (bool, np.bool_)) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a real number, got {type(eps).__name__}")
    eps = float(eps)
    if not (eps >= 0.0 and np.isfinite(eps)):
        raise ValueError(f"eps must be finite and >= 0, got {eps}")
    return eps


def _param(p, name, n, dtype):
    """A per-feature parameter as a contiguous aligned array of n elements of dtype, or None."""
    if p is None:
        return None
    arr = np.asarray(p)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must have a real numeric dtype, got {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (the length of the normalized axis), got {arr.shape}")
    return c_aligned(arr, dtype)


def _prepare(x, axis, out, name="x"):
    xc, result_dtype = float_operand(x, name)
    if xc.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension; got a 0-d array")
    axis = normalize_axis(axis, xc.ndim)
    if out is not None:
        check_out(out, xc.shape, result_dtype)
    return xc, result_dtype, axis


def _finish(target, out, result_dtype):
    # A float16 result is computed in float32; values beyond float16's range become infinities of
    # their sign, by design, so the cast does not warn about them.
    with np.errstate(over="ignore"):
        return deliver(target, out, result_dtype)


def _forward(x, axis, weight, bias, eps, out, l1):
    eps = _eps(eps)
    xc, result_dtype, axis = _prepare(x, axis, out)
    n = xc.shape[axis]
    w = _param(weight, "weight", n, xc.dtype)
    b = _param(bias, "bias", n, xc.dtype)
    compute_into_out = out is not None and out.dtype == xc.dtype and out.flags.aligned
    target = out if compute_into_out else np.empty(xc.shape, dtype=xc.dtype)
    if xc.size:
        _core.norm_forward(kernel_input(xc, target), target, axis, l1, w, b, eps, fresh=target is not out)
    return _finish(target, out, result_dtype)


def _backward(dy, x, axis, weight, eps, out, l1):
    eps = _eps(eps)
    xc, x_result, axis = _prepare(x, axis, None)
    dyc, dy_result = float_operand(dy, "dy")
    if dyc.shape != xc.shape:
        raise ValueError(f"dy has shape {dyc.shape}, expected x's shape {xc.shape}")
    dtype = np.result_type(xc.dtype, dyc.dtype)
    result_dtype = np.result_type(x_result, dy_result)
    xc = xc.astype(dtype, copy=False)
    dyc = dyc.astype(dtype, copy=False)
    if out is not None:
        check_out(out, xc.shape, result_dtype)
    n = xc.shape[axis]
    w = _param(weight, "weight", n, dtype)
    compute_into_out = out is not None and out.dtype == dtype and out.flags.aligned
    target = out if compute_into_out else np.empty(xc.shape, dtype=dtype)
    dw = np.zeros(n, dtype=dtype)
    db = np.zeros(n, dtype=dtype)
    if xc.size:
        # dx may replace dy element for element, never x (x is read again after dx is written).
        xk = xc.copy() if np.shares_memory(xc, target) else kernel_input(xc)
        _core.norm_backward(kernel_input(dyc, target), xk, target, axis, l1, w, dw, db, eps)
    dx = _finish(target, out, result_dtype)
    return dx, dw.astype(result_dtype, copy=False), db.astype(result_dtype, copy=False)


_COMMON_DOC = """
    Parameters
    ----------
    x : array_like
        Input. float32 and float64 are computed and returned in their own type; float16 is
        computed in float32 and returned as float16 (results beyond its range as infinities);
        integer and bool inputs are computed and returned in float64. Other dtypes raise
        TypeError.
    axis : int, default -1
        The axis normalized; may be negative. Any layout (C, F, strided, negative strides) is
        read in place; a strided slice is gathered into a per-thread buffer.
    weight, bias : array_like of shape ``(x.shape[axis],)``, optional
        Per-feature scale and shift, cast to the compute dtype of ``x``.
    eps : float, default 1e-5
        Added to the spread; finite and >= 0.
    out : ndarray, optional
        Writeable array of ``x``'s shape and the result dtype, any layout; ``out=x`` works in
        place.

    Raises
    ------
    TypeError
        Unsupported dtype of ``x``/``weight``/``bias``, non-real ``eps``, non-ndarray ``out``
        or ``out`` of the wrong dtype.
    ValueError
        0-d input, ``weight``/``bias`` of the wrong shape, negative or non-finite ``eps``,
        ``out`` of the wrong shape or read-only.
    numpy.exceptions.AxisError
        If ``axis`` is out of range.
"""


def l1_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """L1 normalization: ``w * (x - mean) / (mean(|x - mean|) + eps) + b`` along an axis.

    The normalization of Guo et al. (2024), "Towards Accurate and Efficient Sub-8-Bit Integer
    Training": the mean absolute deviation replaces the standard deviation, so no square or
    square root is needed. Each slice is read from memory once; the mean (summed in double
    across short blocks) and the absolute-deviation pass then re-read it from cache, and the
    mean is carried as a hi + lo pair so ``x - mean`` keeps its accuracy for offset data.
    """
    return _forward(x, axis, weight, bias, eps, out, True)


def layer_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """L2 layer normalization: ``w * (x - mean) / sqrt(var + eps) + b`` along an axis.

    The standard LayerNorm (biased variance, eps inside the square root, as
    :func:`torch.nn.functional.layer_norm`), the baseline for :func:`l1_norm`. The variance is
    the two-pass ``mean((x - mean)**2)`` over the cached slice, not ``E[x^2] - E[x]^2``.
    """
    return _forward(x, axis, weight, bias, eps, out, False)


_ACC = """
    Notes
    -----
    Accuracy against a float64 reference: absolute error ``<= 2e-5 * (1 + |x_hat|) * max(1, |w|)``
    (float32) and ``<= 1e-12 * (1 + |x_hat|) * max(1, |w|)`` (float64) for data whose mean is within
    1e3 standard deviations of 0 (offset data loses the digits its input lacks). A slice with a
    NaN or an infinity is all NaN. A constant slice gives ``b`` (``x - mean`` is exactly 0) when
    eps > 0 and NaN when eps == 0.
"""
_L1_EXAMPLES = """
    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> x = np.array([[1.0, 3.0, 5.0, 7.0], [2.0, 2.0, 2.0, 6.0]])
    >>> print(numkern.l1_norm(x, eps=0.0))
    [[-1.5        -0.5         0.5         1.5       ]
     [-0.66666667 -0.66666667 -0.66666667  2.        ]]
    >>> print(numkern.l1_norm(x, weight=np.full(4, 2.0), bias=np.ones(4), eps=0.0))
    [[-2.          0.          2.          4.        ]
     [-0.33333333 -0.33333333 -0.33333333  5.        ]]
"""
_LAYER_EXAMPLES = """
    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> x = np.array([[1.0, 3.0, 5.0, 7.0]], dtype=np.float32)
    >>> print(numkern.layer_norm(x, eps=0.0).round(4))
    [[-1.3416 -0.4472  0.4472  1.3416]]
"""
l1_norm.__doc__ = (l1_norm.__doc__ or "") + _COMMON_DOC + _ACC + _L1_EXAMPLES
layer_norm.__doc__ = (layer_norm.__doc__ or "") + _COMMON_DOC + _ACC + _LAYER_EXAMPLES


def l1_norm_backward(
    dy: ArrayLike,
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    eps: float = 1e-5,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient of :func:`l1_norm`: returns ``(dx, dweight, dbias)``.

    With ``d = x - mean``, ``D = mean|d| + eps``, ``x_hat = d / D`` and ``g = dy * w``, the exact
    derivative of the definition, including the term from ``d mean|d| / dx``, is::

        dx = (g - mean(g) - mean(g * x_hat) * (sign(d) - mean(sign(d)))) / D
        dweight = sum(dy * x_hat) over all slices, dbias = sum(dy) over all slices

    with ``sign(0) = 0`` (the subgradient of ``|.|`` at 0). ``dweight``/``dbias`` are summed in
    double and have shape ``(x.shape[axis],)``; ``weight=None`` means all ones. ``dy`` and ``x``
    must have one shape; they are computed in their common float type. ``out`` receives ``dx``
    (``out=dy`` works in place).

    Raises
    ------
    TypeError, ValueError, numpy.exceptions.AxisError
        As :func:`l1_norm`, and ValueError if ``dy`` and ``x`` differ in shape.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> x = np.array([[1.0, 3.0, 5.0, 7.0]])
    >>> dy = np.array([[1.0, 0.0, 0.0, 0.0]])
    >>> dx, dweight, dbias = numkern.l1_norm_backward(dy, x, eps=0.0)
    >>> print(dx.round(4), dweight, dbias)
    [[ 0.1875 -0.3125  0.0625  0.0625]] [-1.5  0.   0.   0. ] [1. 0. 0. 0.]
    """
    return _backward(dy, x, axis, weight, eps, out, True)


def layer_norm_backward(
    dy: ArrayLike,
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    eps: float = 1e-5,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient of :func:`layer_norm`: returns ``(dx, dweight, dbias)``.

    With ``s = sqrt(var + eps)``, ``x_hat = (x - mean) / s`` and ``g = dy * w``::

        dx = (g - mean(g) - x_hat * mean(g * x_hat)) / s

    and ``dweight``, ``dbias`` as in :func:`l1_norm_backward`.

    Raises
    ------
    TypeError, ValueError, numpy.exceptions.AxisError
        As :func:`l1_norm_backward`.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> x = np.array([[1.0, 3.0, 5.0, 7.0]])
    >>> dx, dweight, dbias = numkern.layer_norm_backward(np.ones_like(x), x)
    >>> print(np.abs(dx).max() < 1e-12, dbias)
    True [1. 1. 1. 1.]
    """
    return _backward(dy, x, axis, weight, eps, out, False)


def l1_norm_int8(q: ArrayLike, axis: int = -1, *, out_shift: int = 5, out: np.ndarray | None = None) -> np.ndarray:
    """Integer-only L1 normalization of int8 data, int8 out.

    For a slice ``x`` of length ``n``: ``d = n*x - sum(x)`` and ``T = sum|d|`` are exact integers
    (the input's scale cancels) and the output is ``round(2**out_shift * n * d / T)`` saturated to
    int8, i.e. ``x_hat * 2**out_shift`` with ``x_hat = (x - mean) / mean|x - mean|``. This is the
    integer L1 normalization of Guo et al. (2024).

    Algorithm: one pass sums ``x``; ``t = floor(sum / n)``; a second pass (from cache) sums and
    counts the ``x > t``, which gives ``T = 2 (n A - S p)`` without forming ``|d|``; one
    reciprocal ``2**97 // T`` per slice yields a 30-bit fixed-point multiplier ``G`` and offset
    ``C``, and each output is ``(u*G - C + 2**(k-1)) >> k`` with ``u = x - t`` (int32 x int32 ->
    int64 products), saturated. All other arithmetic is on integers.

    Guarantees: the result is within 1 of the correctly rounded (then saturated) value for any
    slice length up to 2**20 (the fixed-point error is below 0.51 LSB; it is below 0.01 LSB for
    ``n <= 16384``, so results differ from the correctly rounded value only at near-ties). The
    accumulators cannot overflow: ``|sum| <= 2**27`` and ``T < 2**48`` in int64, ``u*G < 2**39``.
    A constant slice (``T == 0``) gives 0.

    Parameters
    ----------
    q : ndarray of int8
        Input (any layout).
    axis : int, default -1
    out_shift : int in [0, 7], default 5
        Fractional bits of the output: 5 maps ``x_hat`` in [-4, 4) onto int8.
    out : ndarray of int8, optional

    Raises
    ------
    TypeError
        If ``q`` is not int8, ``out_shift`` is not an integer, or ``out`` is not an int8 ndarray.
    ValueError
        0-d ``q``, ``out_shift`` outside [0, 7], a slice longer than 2**20, ``out`` of the wrong
        shape or read-only.
    numpy.exceptions.AxisError
        If ``axis`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> q = np.array([[-100, -20, 20, 100], [0, 0, 0, 64]], dtype=np.int8)
    >>> print(numkern.l1_norm_int8(q, out_shift=5))
    [[-53 -11  11  53]
     [-21 -21 -21  64]]
    """
    qa = np.asarray(q)
    if qa.dtype != np.int8:
        raise TypeError(f"q must have dtype int8, got {qa.dtype}")
    out_shift = check_int(out_shift, "out_shift", 0, 7)
    if qa.ndim == 0:
        raise ValueError("q must have at least one dimension; got a 0-d array")
    axis = normalize_axis(axis, qa.ndim)
    if qa.shape[axis] > INT8_MAX_SLICE:
        raise ValueError(f"slices longer than 2**16 are not supported (got {qa.shape[axis]})")
    if out is not None:
        check_out(out, qa.shape, np.int8)
    target = out if out is not None else np.empty(qa.shape, dtype=np.int8)
    if qa.size:
        _core.l1_norm_int8(kernel_input(qa, target), target, axis, int(out_shift))
    return target
