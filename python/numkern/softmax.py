"""Softmax and log-softmax: the two-pass algorithm of Dukhan & Ablavatski (2020) and the
classic three-pass variants, on any axis of any strided array."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import _core
from ._validate import check_out, deliver, float_operand, kernel_input, normalize_axis, parallel_astype

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

ALGORITHMS = tuple(_core.softmax_algorithms)
_ALGORITHM_CODE = {name: code for code, name in enumerate(ALGORITHMS)}


def _axes(axis, ndim: int) -> tuple[int, ...]:
    """The normalized axes a slice spans: an int, a tuple of ints, or None (every axis)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, tuple):
        axes = tuple(normalize_axis(a, max(ndim, 1)) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"axis contains a repeated axis: {axis!r}")
    else:
        axes = (normalize_axis(axis, max(ndim, 1)),)
    return axes if ndim else ()  # a 0-d array is one slice of one element (axis 0 or -1, as NumPy)


def _where(where, shape) -> np.ndarray | None:
    """where= as a bool array broadcast to `shape` (a view: zero strides where broadcast)."""
    if where is None:
        return None
    w = np.asarray(where)
    if w.dtype != np.bool_:
        raise TypeError(f"where must be a bool array, got dtype {w.dtype}")
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(f"where of shape {w.shape} does not broadcast to the input's shape {shape}") from None


def _run(x, axis, out, algorithm, log, where=None):
    # Fast path: the binding checks the common case itself (native aligned float array, out=
    # absent or a plain matching array) and returns None when the general path below is needed.
    if axis.__class__ is int and algorithm.__class__ is str and where is None:
        code = _ALGORITHM_CODE.get(algorithm)
        if code is not None:
            y = _core.softmax_fast(x, out, axis, code, log)
            if y is not None:
                return y
    if not isinstance(algorithm, str) or algorithm not in _ALGORITHM_CODE:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    xc, result_dtype = float_operand(x)
    axes = _axes(axis, xc.ndim)
    mask = _where(where, xc.shape)
    if out is not None:
        check_out(out, xc.shape, result_dtype)
    compute_into_out = out is not None and out.dtype == xc.dtype and out.flags.aligned
    target = out if compute_into_out else np.empty(xc.shape, dtype=xc.dtype)
    if xc.size:
        xk = kernel_input(xc, target)
        fresh = target is not out
        code = _ALGORITHM_CODE[algorithm]
        if not axes:  # one-element slices: 1 (log: 0) where finite, NaN elsewhere, as scipy
            y = np.where(np.isfinite(xk), 0.0 if log else 1.0, np.nan)
            np.copyto(target, y if mask is None else np.where(mask, y, -np.inf if log else 0.0))
        elif mask is not None:
            _core.softmax_axes(xk, target, list(axes), code, log, fresh=fresh, where=mask)
        elif len(axes) == 1:
            _core.softmax(xk, target, axes[0], code, log, fresh=fresh)
        else:
            _core.softmax_axes(xk, target, list(axes), code, log, fresh=fresh)
    return deliver(target, out, result_dtype)


def softmax(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    *,
    out: np.ndarray | None = None,
    algorithm: str = "auto",
    where: ArrayLike | None = None,
) -> np.ndarray:
    """Softmax along an axis: ``exp(x) / sum(exp(x), axis)``.

    Parameters
    ----------
    x : array_like
        Input. float32 and float64 are computed and returned in their own type; float16 is
        computed in float32 and returned as float16; integer and bool inputs are computed and
        returned in float64 (as :func:`scipy.special.softmax`). Other dtypes raise TypeError.
    axis : int, tuple of ints or None, default -1
        Axis along which the slices are normalized; may be negative. A tuple normalizes over
        those axes together (each slice spans all of them), ``None`` over the whole array, and a
        0-d input is one slice of one element. Any memory layout (C, F, strided, negative
        strides) is read in place, with no transposed copy. Note that
        :func:`scipy.special.softmax` defaults to ``axis=None``: a 2-D array switching from it
        needs ``axis=None`` for SciPy's answer.
    out : ndarray, optional
        Writeable array of ``x``'s shape and the result dtype, any layout, that receives the
        result and is returned. ``out=x`` computes in place.
    algorithm : {"auto", "two_pass", "three_pass_reload", "three_pass_recompute"}
        ``"two_pass"`` is the algorithm of M. Dukhan and A. Ablavatski, "The Two-Pass Softmax
        Algorithm" (2020): pass 1 sums ``exp(x)`` as a pair ``m * 2**e`` that cannot overflow,
        so no max pass is needed; pass 2 recomputes ``exp(x)`` and scales it. The three-pass
        variants subtract the maximum first and either store ``exp(x - max)`` and rescale it
        (``reload``) or recompute it (``recompute``). ``"auto"`` picks per slice length from
        crossovers measured on the benchmark machine (reload for slices of at most 64 KiB,
        two-pass beyond). All give the same results within the stated accuracy.
    where : array_like of bool, optional
        Mask broadcastable to ``x`` (read in place, broadcast dimensions included): ``False``
        entries take no part. They get 0 (log-softmax: ``-inf``), and a slice with no ``True``
        entry is all 0 (all ``-inf``), never NaN. The other entries are the softmax of the
        selected ones.

    Returns
    -------
    ndarray
        The softmax of ``x`` (``out`` if given).

    Notes
    -----
    Accuracy against a float64 reference: relative error <= 1e-6 (float32) for every output
    >= 1e-30, and <= 1e-14 (float64) for outputs >= 1e-300; smaller outputs may be flushed to 0.
    Special values follow :func:`scipy.special.softmax`: a slice containing NaN, +inf, or only
    -inf is all NaN; a -inf entry gives 0. Inputs whose magnitude defeats the two-pass range
    reduction (``|x|`` above about 7e5) are detected after pass 1 and computed with the
    max-subtracting algorithm. Results do not depend on the thread count beyond the stated
    tolerance.

    Raises
    ------
    TypeError
        For an unsupported dtype of ``x``, a non-ndarray ``out``, an ``out`` of the wrong dtype,
        or a ``where`` that is not bool.
    ValueError
        For an ``out`` of the wrong shape or read-only, a repeated axis, or an unknown algorithm.
    numpy.exceptions.AxisError
        If ``axis`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -np.inf]], dtype=np.float32)
    >>> y = numkern.softmax(x, axis=-1)
    >>> print(y.round(4))
    [[0.09   0.2447 0.6652]
     [0.5    0.5    0.    ]]
    >>> y.dtype
    dtype('float32')
    >>> numkern.softmax(x, axis=-1, out=x) is x   # in place
    True
    >>> print(numkern.softmax(np.zeros((2, 2)), axis=None))   # the whole array, SciPy's default
    [[0.25 0.25]
     [0.25 0.25]]
    >>> print(numkern.softmax(np.zeros((2, 3, 2)), axis=(0, 2))[:, 0])   # axes 0 and 2 together
    [[0.25 0.25]
     [0.25 0.25]]
    >>> causal = np.tril(np.ones((3, 3), dtype=bool))          # row i attends to columns <= i
    >>> print(numkern.softmax(np.zeros((3, 3)), where=causal).round(3))
    [[1.    0.    0.   ]
     [0.5   0.5   0.   ]
     [0.333 0.333 0.333]]
    >>> print(numkern.softmax(np.zeros((1, 2)), where=np.array([False, False])))   # no NaN
    [[0. 0.]]
    """
    return _run(x, axis, out, algorithm, False, where)


def log_softmax(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    *,
    out: np.ndarray | None = None,
    algorithm: str = "auto",
    where: ArrayLike | None = None,
) -> np.ndarray:
    """Log-softmax along an axis: ``x - log(sum(exp(x), axis))``.

    Parameters are as for :func:`softmax`. ``"two_pass"`` reads the input twice: pass 1 is the
    (mantissa, exponent) sum of Dukhan & Ablavatski (2020), pass 2 only subtracts, with no exp.
    Both three-pass names select the max-subtracting algorithm (max; sum of ``exp(x - max)``;
    subtract), which has nothing to reload. ``"auto"`` uses the max-based one for slices of at
    most 64 KiB (they stay in L1/L2, where a whole-row kernel saves the per-slice overhead) and
    two passes beyond.

    Notes
    -----
    Absolute error against a float64 reference ``<= 2e-6 * max(1, |ref|)`` (float32) and
    ``<= 4e-15 * max(1, |ref|)`` (float64). Special values follow :func:`scipy.special.log_softmax`:
    NaN anywhere, or only -inf, gives an all-NaN slice; -inf entries give -inf; with a +inf entry
    the +inf entries give NaN and the others -inf.

    Raises
    ------
    TypeError, ValueError, numpy.exceptions.AxisError
        As :func:`softmax`.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> print(numkern.log_softmax(np.array([0.0, 1.0, 2.0])).round(4))
    [-2.4076 -1.4076 -0.4076]
    >>> print(numkern.log_softmax(np.array([1000.0, 1000.0])).round(4))   # no overflow
    [-0.6931 -0.6931]
    """
    return _run(x, axis, out, algorithm, True, where)


def _backward(y, dy, axis, out, log, where):
    yc, y_dtype = float_operand(y, "y")
    dyc, dy_dtype = float_operand(dy, "dy")
    if yc.shape != dyc.shape:
        raise ValueError(f"y and dy must have one shape; got {yc.shape} and {dyc.shape}")
    axes = _axes(axis, yc.ndim)
    mask = _where(where, yc.shape)
    result_dtype = np.result_type(y_dtype, dy_dtype)
    compute = np.dtype(np.float64) if result_dtype == np.float64 else np.dtype(np.float32)
    if out is not None:
        check_out(out, yc.shape, result_dtype)
    if yc.dtype != compute:
        yc = parallel_astype(yc, compute)
    if dyc.dtype != compute:
        dyc = parallel_astype(dyc, compute)
    compute_into_out = out is not None and out.dtype == compute and out.flags.aligned
    target = out if compute_into_out else np.empty(yc.shape, dtype=compute)
    if yc.size:
        yk, dyk = kernel_input(yc, target), kernel_input(dyc, target)
        if axes:
            _core.softmax_backward(yk, dyk, target, list(axes), log, where=mask, fresh=target is not out)
        else:  # one-element slices: the sum is the element itself
            g = dyk - np.exp(yk) * dyk if log else yk * (dyk - yk * dyk)
            np.copyto(target, g if mask is None else np.where(mask, g, 0.0))
    return deliver(target, out, result_dtype)


def softmax_backward(
    y: ArrayLike,
    dy: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    *,
    out: np.ndarray | None = None,
    where: ArrayLike | None = None,
) -> np.ndarray:
    """Gradient of :func:`softmax`: ``dx = y * (dy - sum(dy * y, axis, keepdims=True))``.

    Given the forward output ``y = softmax(x, axis)`` and the gradient ``dy`` of a loss with
    respect to ``y``, returns the gradient with respect to ``x`` (what
    ``torch._softmax_backward_data`` computes). Two passes over the data per slice (the dot
    product, then the update), with no temporary of the input's size.

    Parameters
    ----------
    y : array_like
        The softmax output. float32 and float64 are computed in their own type, float16 in
        float32; integer and bool inputs in float64.
    dy : array_like
        The gradient with respect to ``y``, of ``y``'s shape. The result dtype is the common
        type of the two (``numpy.result_type``).
    axis : int, tuple of ints or None, default -1
        The axis (axes, or ``None`` for all) the forward softmax normalized. Any memory layout is
        read in place.
    out : ndarray, optional
        Writeable array of ``y``'s shape and the result dtype that receives the result;
        ``out=dy`` (or ``out=y``) computes in place.
    where : array_like of bool, optional
        The forward pass's mask: ``False`` entries take no part in the sum (whatever ``dy`` holds
        there) and get ``dx = 0``.

    Returns
    -------
    ndarray
        ``dx`` (``out`` if given).

    Notes
    -----
    With ``u`` the unit roundoff of the compute type (``2**-24`` for float32, ``2**-53`` for
    float64), each output satisfies ``|dx_i - exact_i| <= 64 u |y_i| (|dy_i| + sum_j |y_j dy_j|)``,
    where ``exact`` is computed from the given ``y`` and ``dy`` in exact arithmetic: the sum is
    accumulated in blocks of 32 terms per SIMD lane and in float64 across blocks. NaN or inf in a
    slice of ``y * dy`` makes that slice's sum NaN or inf, as the formula does. Results do not
    depend on the thread count (a long slice is split by its length alone).

    Raises
    ------
    TypeError
        For an unsupported dtype, a non-ndarray ``out`` or an ``out`` of the wrong dtype.
    ValueError
        If ``y`` and ``dy`` differ in shape, for a repeated axis, or an ``out`` of the wrong shape
        or read-only.
    numpy.exceptions.AxisError
        If ``axis`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> x = np.array([[1.0, 2.0, 3.0]])
    >>> y = numkern.softmax(x)
    >>> dy = np.array([[0.0, 0.0, 1.0]])          # d loss / d y for loss = y[0, 2]
    >>> print(numkern.softmax_backward(y, dy).round(4))
    [[-0.0599 -0.1628  0.2227]]
    >>> print(bool(np.allclose(numkern.softmax_backward(y, dy), y * (dy - (y * dy).sum(-1, keepdims=True)))))
    True
    """
    return _backward(y, dy, axis, out, False, where)


def log_softmax_backward(
    y: ArrayLike,
    dy: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    *,
    out: np.ndarray | None = None,
    where: ArrayLike | None = None,
) -> np.ndarray:
    """Gradient of :func:`log_softmax`: ``dx = dy - exp(y) * sum(dy, axis, keepdims=True)``.

    Given the forward output ``y = log_softmax(x, axis)`` and the gradient ``dy`` with respect to
    it, returns the gradient with respect to ``x`` (what ``torch._log_softmax_backward_data``
    computes). Parameters, returns and errors are as for :func:`softmax_backward`.

    Notes
    -----
    Each output satisfies ``|dx_i - exact_i| <= 64 u (|dy_i| + exp(y_i) sum_j |dy_j|)`` (``u`` as in
    :func:`softmax_backward`). ``y`` is a log-softmax output, so at most 0 up to rounding; values
    above 88 (float32) or 709 (float64), where ``exp`` would overflow, are taken as those bounds.
    A ``-inf`` in ``y`` (a zero probability) contributes ``exp(-inf) = 0``.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> y = numkern.log_softmax(np.array([1.0, 2.0, 3.0]))
    >>> dy = np.array([-1.0, 0.0, 0.0])          # d loss / d y for the loss -y[0] (cross-entropy)
    >>> print(numkern.log_softmax_backward(y, dy).round(4))   # softmax(x) - onehot(0)
    [-0.91    0.2447  0.6652]
    """
    return _backward(y, dy, axis, out, True, where)
