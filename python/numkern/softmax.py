"""Softmax and log-softmax: the two-pass algorithm of Dukhan & Ablavatski (2020) and the
classic three-pass variants, on any axis of any strided array."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import _core
from ._validate import check_out, float_operand, kernel_input, normalize_axis, parallel_astype, parallel_copyto

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

ALGORITHMS = tuple(_core.softmax_algorithms)
_ALGORITHM_CODE = {name: code for code, name in enumerate(ALGORITHMS)}


def _run(x, axis, out, algorithm, log):
    # Fast path: the binding checks the common case itself (native aligned float array, out=
    # absent or a plain matching array) and returns None when the general path below is needed.
    if axis.__class__ is int and algorithm.__class__ is str:
        code = _ALGORITHM_CODE.get(algorithm)
        if code is not None:
            y = _core.softmax_fast(x, out, axis, code, log)
            if y is not None:
                return y
    if not isinstance(algorithm, str) or algorithm not in _ALGORITHM_CODE:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    xc, result_dtype = float_operand(x)
    axis = normalize_axis(axis, xc.ndim) if xc.ndim else None
    if out is not None:
        check_out(out, xc.shape, result_dtype)
    if xc.ndim == 0:
        raise ValueError("softmax needs an array of at least one dimension; got a 0-d array")
    compute_into_out = out is not None and out.dtype == xc.dtype and out.flags.aligned
    target = out if compute_into_out else np.empty(xc.shape, dtype=xc.dtype)
    if xc.size:
        xk = kernel_input(xc, target)
        _core.softmax(xk, target, axis, _ALGORITHM_CODE[algorithm], log, fresh=target is not out)
    if out is None:
        return target if target.dtype == result_dtype else parallel_astype(target, result_dtype)
    if target is not out:
        parallel_copyto(out, target)
    return out


def softmax(x: ArrayLike, axis: int = -1, *, out: np.ndarray | None = None, algorithm: str = "auto") -> np.ndarray:
    """Softmax along an axis: ``exp(x) / sum(exp(x), axis)``.

    Parameters
    ----------
    x : array_like
        Input. float32 and float64 are computed and returned in their own type; float16 is
        computed in float32 and returned as float16; integer and bool inputs are computed and
        returned in float64 (as :func:`scipy.special.softmax`). Other dtypes raise TypeError.
    axis : int, default -1
        Axis along which the slices are normalized; may be negative. Any memory layout
        (C, F, strided, negative strides) is read in place, with no transposed copy.
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
        For an unsupported dtype of ``x``, a non-ndarray ``out`` or an ``out`` of the wrong dtype.
    ValueError
        For a 0-d input, an ``out`` of the wrong shape or read-only, or an unknown algorithm.
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
    """
    return _run(x, axis, out, algorithm, False)


def log_softmax(x: ArrayLike, axis: int = -1, *, out: np.ndarray | None = None, algorithm: str = "auto") -> np.ndarray:
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
    return _run(x, axis, out, algorithm, True)
