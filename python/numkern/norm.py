"""L1 (mean absolute deviation) and L2 layer normalization, their uncentred forms (``x / mean|x|``
and RMS norm), forward and backward, with an optional fused residual add, and the integer-only int8
L1 normalization of Guo et al., "Towards Accurate and Efficient Sub-8-Bit Integer Training"
(2024), on any axis of any strided array."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, overload

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
    same_layout,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "l1_norm",
    "layer_norm",
    "rms_norm",
    "l1_norm_int8",
    "l1_norm_backward",
    "layer_norm_backward",
    "rms_norm_backward",
]

INT8_MAX_SLICE = 1 << 16
_KIND = {name: code for code, name in enumerate(_core.norm_kinds)}


def _l1_kind(center):
    if not isinstance(center, (bool, np.bool_)):
        raise TypeError(f"center must be a bool, got {type(center).__name__}")
    return _KIND["l1" if center else "l1_uncentered"]


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


def _forward(x, axis, weight, bias, eps, out, kind, residual=None):
    eps = _eps(eps)
    if residual is not None:
        return _forward_residual(x, residual, axis, weight, bias, eps, out, kind)
    if isinstance(out, tuple):
        raise TypeError("out must be an ndarray (a pair (out, h_out) only with residual=)")
    xc, result_dtype, axis = _prepare(x, axis, out)
    n = xc.shape[axis]
    w = _param(weight, "weight", n, xc.dtype)
    b = _param(bias, "bias", n, xc.dtype)
    compute_into_out = out is not None and out.dtype == xc.dtype and out.flags.aligned
    target = out if compute_into_out else np.empty(xc.shape, dtype=xc.dtype)
    if xc.size:
        _core.norm_forward(kernel_input(xc, target), target, axis, kind, w, b, eps, fresh=target is not out)
    return _finish(target, out, result_dtype)


def _kernel_operand(a, targets):
    """`a` as the kernel reads it: copied if misaligned or if it overlaps a target other than
    element for element (an output may replace an input exactly; a partial overlap would be read
    after it was written)."""
    if not a.flags.aligned or any(not same_layout(a, t) and np.shares_memory(a, t) for t in targets):
        return a.copy()
    return a


def _forward_residual(x, residual, axis, weight, bias, eps, out, kind):
    xc, x_result = float_operand(x)
    rc, r_result = float_operand(residual, "residual")
    if rc.shape != xc.shape:
        raise ValueError(f"residual has shape {rc.shape}, expected x's shape {xc.shape}")
    if xc.ndim == 0:
        raise ValueError("x must have at least one dimension; got a 0-d array")
    axis = normalize_axis(axis, xc.ndim)
    dtype = np.result_type(xc.dtype, rc.dtype)
    result_dtype = np.result_type(x_result, r_result)
    xc = xc.astype(dtype, copy=False)
    rc = rc.astype(dtype, copy=False)
    if out is None:
        out = (None, None)
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("with residual=, out must be a pair (out, h_out) of ndarrays or None")
    y_out, h_out = out
    for o, name in ((y_out, "out[0]"), (h_out, "out[1]")):
        if o is not None:
            check_out(o, xc.shape, result_dtype, name)
    if y_out is not None and h_out is not None and np.shares_memory(y_out, h_out):
        raise ValueError("out[0] and out[1] must not overlap")
    n = xc.shape[axis]
    w = _param(weight, "weight", n, dtype)
    b = _param(bias, "bias", n, dtype)

    def target_for(o):
        return o if o is not None and o.dtype == dtype and o.flags.aligned else np.empty(xc.shape, dtype=dtype)

    y, h = target_for(y_out), target_for(h_out)
    if xc.size:
        _core.norm_forward(
            _kernel_operand(xc, (y, h)),
            y,
            axis,
            kind,
            w,
            b,
            eps,
            fresh=y is not y_out,
            residual=_kernel_operand(rc, (y, h)),
            h=h,
            fresh_h=h is not h_out,
        )
    return _finish(y, y_out, result_dtype), _finish(h, h_out, result_dtype)


def _backward(dy, x, axis, weight, eps, out, kind):
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
        _core.norm_backward(kernel_input(dyc, target), xk, target, axis, kind, w, dw, db, eps)
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
%(params)s
    residual : array_like of ``x``'s shape, optional
        The fused residual add: ``h = x + residual`` is formed in the compute dtype of the two,
        written out, and normalized in the same pass over the data (two reads, two writes); the
        call then returns ``(norm(h), h)``.
    out : ndarray, or a pair of ndarrays or None with ``residual``, optional
        Writeable array of ``x``'s shape and the result dtype, any layout; ``out=x`` works in
        place. With ``residual``, ``out=(out, h_out)``; either may be None, and each may be
        ``x`` or ``residual`` itself (``out=(None, residual)`` updates the residual stream in
        place), but the two may not overlap.

    Returns
    -------
    ndarray, or (ndarray, ndarray) with ``residual``
        The normalized array (and ``h``).

    Raises
    ------
    TypeError
        Unsupported dtype of ``x``/``residual``/a parameter, non-real ``eps``, non-ndarray
        ``out`` or ``out`` of the wrong dtype.
    ValueError
        0-d input, parameters or ``residual`` of the wrong shape, negative or non-finite
        ``eps``, ``out`` of the wrong shape or read-only, outputs that overlap.
    numpy.exceptions.AxisError
        If ``axis`` is out of range.
"""
_WB = """    weight, bias : array_like of shape ``(x.shape[axis],)``, optional
        Per-feature scale and shift, cast to the compute dtype of ``x``.
    eps : float, default 1e-5
        Added to the spread; finite and >= 0."""
_CENTER = """
    center : bool, default True
        Subtract the mean first (the paper's L1 norm). ``center=False`` divides by
        ``mean(|x|) + eps`` instead: ``w * x / (mean(|x|) + eps) + b``, the L1 counterpart of
        :func:`rms_norm`, one pass over the data fewer."""
_RMS_PARAMS = """    weight : array_like of shape ``(x.shape[axis],)``, optional
        Per-feature scale, cast to the compute dtype of ``x``.
    eps : float, default 1e-6
        Added to ``mean(x**2)`` inside the square root; finite and >= 0."""


@overload
def l1_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
    center: bool = True,
    residual: None = None,
    out: np.ndarray | None = None,
) -> np.ndarray: ...
@overload
def l1_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
    center: bool = True,
    residual: ArrayLike,
    out: tuple[np.ndarray | None, np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]: ...


def l1_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
    center: bool = True,
    residual: ArrayLike | None = None,
    out: np.ndarray | tuple[np.ndarray | None, np.ndarray | None] | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """L1 normalization: ``w * (x - mean) / (mean(|x - mean|) + eps) + b`` along an axis.

    The normalization of Guo et al. (2024), "Towards Accurate and Efficient Sub-8-Bit Integer
    Training": the mean absolute deviation replaces the standard deviation, so no square or
    square root is needed. Each slice is read from memory once; the mean (summed in double
    across short blocks) and the absolute-deviation pass then re-read it from cache, and the
    mean is carried as a hi + lo pair so ``x - mean`` keeps its accuracy for offset data.
    """
    return _forward(x, axis, weight, bias, eps, out, _l1_kind(center), residual)


@overload
def layer_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
    residual: None = None,
    out: np.ndarray | None = None,
) -> np.ndarray: ...
@overload
def layer_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
    residual: ArrayLike,
    out: tuple[np.ndarray | None, np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]: ...


def layer_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
    residual: ArrayLike | None = None,
    out: np.ndarray | tuple[np.ndarray | None, np.ndarray | None] | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """L2 layer normalization: ``w * (x - mean) / sqrt(var + eps) + b`` along an axis.

    The standard LayerNorm (biased variance, eps inside the square root, as
    :func:`torch.nn.functional.layer_norm`), the baseline for :func:`l1_norm`. The variance is
    the two-pass ``mean((x - mean)**2)`` over the cached slice, not ``E[x^2] - E[x]^2``.
    """
    return _forward(x, axis, weight, bias, eps, out, _KIND["l2"], residual)


@overload
def rms_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    eps: float = 1e-6,
    residual: None = None,
    out: np.ndarray | None = None,
) -> np.ndarray: ...
@overload
def rms_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    eps: float = 1e-6,
    residual: ArrayLike,
    out: tuple[np.ndarray | None, np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]: ...


def rms_norm(
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    eps: float = 1e-6,
    residual: ArrayLike | None = None,
    out: np.ndarray | tuple[np.ndarray | None, np.ndarray | None] | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """RMS normalization: ``w * x / sqrt(mean(x**2) + eps)`` along an axis.

    As :func:`torch.nn.functional.rms_norm` (Zhang & Sennrich 2019): no mean is subtracted and
    there is no bias. Each slice is read from memory once: the sum of squares (in the input's
    type over short blocks, in double across them) and the scaling pass re-read it from cache.
    """
    return _forward(x, axis, weight, None, eps, out, _KIND["rms"], residual)


_ACC = """
    Notes
    -----
    Accuracy against a float64 reference: absolute error ``<= 2e-5 * (1 + |x_hat|) * max(1, |w|)``
    (float32) and ``<= 1e-12 * (1 + |x_hat|) * max(1, |w|)`` (float64) for data whose mean is within
    1e3 standard deviations of 0 (offset data loses the digits its input lacks). A slice with a
    NaN or an infinity is all NaN. A constant slice gives ``b`` (``x - mean`` is exactly 0) when
    eps > 0 and NaN when eps == 0; with ``center=False`` an all-zero slice does.
"""
_RMS_ACC = """
    Notes
    -----
    Accuracy against a float64 reference: absolute error ``<= 2e-5 * (1 + |x_hat|) * max(1, |w|)``
    (float32) and ``<= 1e-12 * (1 + |x_hat|) * max(1, |w|)`` (float64). A slice with a NaN or an
    infinity is all NaN; an all-zero slice gives 0 when eps > 0 and NaN when eps == 0. Slices
    whose squares overflow (or whose reciprocal RMS does) are rescaled by a power of two first,
    so finite input never gives an infinity or a NaN for eps == 0 unless it is all zeros.
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
    >>> print(numkern.l1_norm(x, eps=0.0, center=False))
    [[0.25       0.75       1.25       1.75      ]
     [0.66666667 0.66666667 0.66666667 2.        ]]
"""
_LAYER_EXAMPLES = """
    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> x = np.array([[1.0, 3.0, 5.0, 7.0]], dtype=np.float32)
    >>> print(numkern.layer_norm(x, eps=0.0).round(4))
    [[-1.3416 -0.4472  0.4472  1.3416]]

    The fused residual add returns the normalized sum and the sum itself:

    >>> y, h = numkern.layer_norm(x, residual=np.ones_like(x), eps=0.0)
    >>> print(h, y.round(4))
    [[2. 4. 6. 8.]] [[-1.3416 -0.4472  0.4472  1.3416]]
"""
_RMS_EXAMPLES = """
    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> x = np.array([[1.0, -1.0, 1.0, -1.0], [3.0, 4.0, 0.0, 0.0]])
    >>> print(numkern.rms_norm(x, eps=0.0))
    [[ 1.  -1.   1.  -1. ]
     [ 1.2  1.6  0.   0. ]]
    >>> print(numkern.rms_norm(x, weight=np.array([1.0, 2.0, 3.0, 4.0]), eps=0.0)[1])
    [1.2 3.2 0.  0. ]
"""
l1_norm.__doc__ = (l1_norm.__doc__ or "") + _COMMON_DOC % {"params": _WB + _CENTER} + _ACC + _L1_EXAMPLES
layer_norm.__doc__ = (layer_norm.__doc__ or "") + _COMMON_DOC % {"params": _WB} + _ACC + _LAYER_EXAMPLES
rms_norm.__doc__ = (rms_norm.__doc__ or "") + _COMMON_DOC % {"params": _RMS_PARAMS} + _RMS_ACC + _RMS_EXAMPLES


def l1_norm_backward(
    dy: ArrayLike,
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    eps: float = 1e-5,
    center: bool = True,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient of :func:`l1_norm`: returns ``(dx, dweight, dbias)``.

    With ``d = x - mean``, ``D = mean|d| + eps``, ``x_hat = d / D`` and ``g = dy * w``, the exact
    derivative of the definition, including the term from ``d mean|d| / dx``, is::

        dx = (g - mean(g) - mean(g * x_hat) * (sign(d) - mean(sign(d)))) / D
        dweight = sum(dy * x_hat) over all slices, dbias = sum(dy) over all slices

    with ``sign(0) = 0`` (the subgradient of ``|.|`` at 0). With ``center=False`` (``d = x``,
    no mean) the means of ``g`` and ``sign(d)`` drop out: ``dx = (g - mean(g * x_hat) *
    sign(x)) / D``. ``dweight``/``dbias`` are summed in double and have shape
    ``(x.shape[axis],)``; ``weight=None`` means all ones. ``dy`` and ``x`` must have one shape;
    they are computed in their common float type. ``out`` receives ``dx`` (``out=dy`` works in
    place).

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
    return _backward(dy, x, axis, weight, eps, out, _l1_kind(center))


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
    return _backward(dy, x, axis, weight, eps, out, _KIND["l2"])


def rms_norm_backward(
    dy: ArrayLike,
    x: ArrayLike,
    axis: int = -1,
    *,
    weight: ArrayLike | None = None,
    eps: float = 1e-6,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of :func:`rms_norm`: returns ``(dx, dweight)``.

    With ``s = sqrt(mean(x**2) + eps)``, ``x_hat = x / s`` and ``g = dy * w``::

        dx = (g - x_hat * mean(g * x_hat)) / s
        dweight = sum(dy * x_hat) over all slices

    ``dweight`` is summed in double and has shape ``(x.shape[axis],)``; ``weight=None`` means
    all ones. ``dy`` and ``x`` must have one shape; they are computed in their common float type.
    ``out`` receives ``dx`` (``out=dy`` works in place).

    Raises
    ------
    TypeError, ValueError, numpy.exceptions.AxisError
        As :func:`rms_norm`, and ValueError if ``dy`` and ``x`` differ in shape.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> x = np.array([[3.0, 4.0]])
    >>> dx, dweight = numkern.rms_norm_backward(np.array([[1.0, 0.0]]), x, eps=0.0)
    >>> print(dx.round(4), dweight.round(4))
    [[ 0.181  -0.1358]] [0.8485 0.    ]
    """
    dx, dw, _ = _backward(dy, x, axis, weight, eps, out, _KIND["rms"])
    return dx, dw


def l1_norm_int8(
    q: ArrayLike, axis: int = -1, *, out_shift: int = 5, center: bool = True, out: np.ndarray | None = None
) -> np.ndarray:
    """Integer-only L1 normalization of int8 data, int8 out.

    For a slice ``x`` of length ``n``: ``d = n*x - sum(x)`` and ``T = sum|d|`` are exact integers
    (the input's scale cancels) and the output is ``round(2**out_shift * n * d / T)`` saturated to
    int8, i.e. ``x_hat * 2**out_shift`` with ``x_hat = (x - mean) / mean|x - mean|``. This is the
    integer L1 normalization of Guo et al. (2024). With ``center=False``, ``d = n*x`` and
    ``T = n * sum|x|``: the output is ``round(2**out_shift * n * x / sum|x|)``, the integer form of
    ``l1_norm(..., center=False)``.

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
    center : bool, default True
        Subtract the mean first; False divides by ``mean|x|`` alone (an all-zero slice gives 0).
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
    >>> print(numkern.l1_norm_int8(q, out_shift=5, center=False))
    [[-53 -11  11  53]
     [  0   0   0 127]]
    """
    qa = np.asarray(q)
    if qa.dtype != np.int8:
        raise TypeError(f"q must have dtype int8, got {qa.dtype}")
    out_shift = check_int(out_shift, "out_shift", 0, 7)
    _l1_kind(center)  # the type check
    if qa.ndim == 0:
        raise ValueError("q must have at least one dimension; got a 0-d array")
    axis = normalize_axis(axis, qa.ndim)
    if qa.shape[axis] > INT8_MAX_SLICE:
        raise ValueError(f"slices longer than 2**16 are not supported (got {qa.shape[axis]})")
    if out is not None:
        check_out(out, qa.shape, np.int8)
    target = out if out is not None else np.empty(qa.shape, dtype=np.int8)
    if qa.size:
        _core.l1_norm_int8(kernel_input(qa, target), target, axis, int(out_shift), bool(center))
    return target
