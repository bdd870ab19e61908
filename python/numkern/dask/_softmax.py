"""Softmax over a chunked axis: the two-pass (mantissa, exponent) sums of every chunk merged in a
tree, then one blockwise scaling pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dask.array as da
import numpy as np

from .. import _core
from .._validate import normalize_axis
from ..softmax import log_softmax as _nk_log_softmax
from ..softmax import softmax as _nk_softmax
from ._common import aligned, task

if TYPE_CHECKING:
    pass

#: A per-slice partial sum exp(x) = m * 2**e (m in [1, 2); 0 for none; NaN / +inf flags, see below).
EXT = np.dtype([("m", "f8"), ("e", "f8")])
_LIMIT = 1048576.0  # |e| beyond which the kernels' range reduction is not exact (ext_exponent_limit)


def _dtypes(dtype):
    """(compute dtype, result dtype), as numkern.softmax: float16 in float32, ints and bool in float64."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return dtype, dtype
    if dtype == np.float16:
        return np.dtype(np.float32), dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64), np.dtype(np.float64)
    raise TypeError(f"softmax needs a real numeric array, got dtype {dtype}")


@task
def _partials(x, axis, keepdims=True):
    """Per-slice (m, e) of one chunk, from the kernels' pass 1 (C++: softmax_ext_partials)."""
    axis = axis[0] if isinstance(axis, tuple) else axis
    x = aligned(x, contiguous=False)
    out_shape = x.shape[:axis] + x.shape[axis + 1 :]
    m = np.empty(out_shape, dtype=np.float64)
    e = np.empty(out_shape, dtype=np.float64)
    if x.size:
        _core.softmax_ext_partials(x, axis, m, e)
    else:
        m.fill(0.0)
        e.fill(-np.inf)
    r = np.empty(out_shape, dtype=EXT)
    r["m"], r["e"] = m, e
    return np.expand_dims(r, axis)


def _merge(p, axis, keepdims=True):
    """Merges the partials along `axis`: NaN (a NaN in the slice) wins over +inf (a +inf and no
    NaN), which wins over finite sums; zero sums are neutral; finite sums are aligned on the
    largest exponent (exact powers of two) and added in float64, then renormalized."""
    axis = axis[0] if isinstance(axis, tuple) else axis
    m, e = p["m"], p["e"]
    finite = np.isfinite(m) & (m > 0)
    top = np.max(np.where(finite, e, -np.inf), axis=axis, keepdims=True)
    shift = np.clip(np.where(finite, e - np.where(np.isfinite(top), top, 0.0), -2000.0), -2000.0, 0.0)
    total = np.sum(
        np.where(finite, np.ldexp(np.where(finite, m, 0.0), shift.astype(np.int64)), 0.0), axis=axis, keepdims=True
    )
    frac, ex = np.frexp(total)
    out = np.empty(total.shape, dtype=EXT)
    out["m"] = np.where(total > 0, 2.0 * frac, 0.0)
    out["e"] = np.where(total > 0, top + ex - 1, -np.inf)
    inf = np.any(m == np.inf, axis=axis, keepdims=True)
    nan = np.any(np.isnan(m), axis=axis, keepdims=True)
    out["m"] = np.where(nan, np.nan, np.where(inf, np.inf, out["m"]))
    return out


@task
def _scale(x, p, axis, log, result_dtype):
    """Pass 2 on one chunk with the merged sums; slices whose exponent is out of the kernels' range
    are left to the max-based fallback (_fallback_scale)."""
    x = aligned(x, contiguous=False)
    y = np.empty(x.shape, dtype=x.dtype)
    if x.size:
        p = np.ascontiguousarray(np.squeeze(p, axis))
        _core.softmax_scale_ext(x, y, axis, aligned(p["m"]), aligned(p["e"]), log)
    return y.astype(result_dtype, copy=False)


def _needs_fallback(p):
    return np.isfinite(p["m"]) & (p["m"] > 0) & ~(np.abs(p["e"]) <= _LIMIT)


@task
def _max_partials(x, p, axis):
    """For slices beyond the two-pass range: (max, sum exp(x - max)) of the chunk in float64."""
    bad = _needs_fallback(p)
    if not bad.any():  # the usual case: nothing to read
        return np.stack([np.full(bad.shape, -np.inf), np.zeros(bad.shape)])
    x = np.asarray(x, dtype=np.float64)
    mx = np.where(bad, np.max(x, axis=axis, keepdims=True, initial=-np.inf), -np.inf)
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.where(bad, np.sum(np.exp(x - np.where(np.isfinite(mx), mx, 0.0)), axis=axis, keepdims=True), 0.0)
    return np.stack([mx, s])


def _identity(v, axis, keepdims=True):
    return v


def _merge_max(q, axis, keepdims=True):
    axis = (axis[0] if isinstance(axis, tuple) else axis) - 1  # q stacks (max, sum) on a new axis 0
    mx, s = q[0], q[1]
    top = np.max(mx, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        w = np.where(np.isfinite(mx), np.exp(mx - np.where(np.isfinite(top), top, 0.0)), 0.0)
    return np.stack([top, np.sum(s * w, axis=axis, keepdims=True)])


@task
def _fallback_scale(y, x, p, mx, s, axis, log):
    bad = _needs_fallback(p)
    if not bad.any():
        return y
    x = np.asarray(x, dtype=np.float64)
    ref = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        z = (x - ref) - np.log(s) if log else np.exp(x - ref) / s
    y = y.copy()
    np.copyto(y, z, casting="unsafe", where=np.broadcast_to(bad, y.shape))
    return y


def _run(x, axis, log, split_every):
    x = da.asarray(x)
    if x.ndim == 0:
        raise ValueError("softmax needs an array of at least one dimension; got a 0-d array")
    compute_dtype, result_dtype = _dtypes(x.dtype)
    axis = normalize_axis(axis, x.ndim)
    fn = _nk_log_softmax if log else _nk_softmax
    if x.numblocks[axis] == 1:
        return x.map_blocks(task(fn), axis=axis, dtype=result_dtype, meta=np.empty((0,) * x.ndim, result_dtype))
    if x.dtype != compute_dtype:
        x = x.astype(compute_dtype)
    p = da.reduction(
        x,
        _partials,
        _merge,
        combine=_merge,
        axis=axis,
        keepdims=True,
        dtype=EXT,
        split_every=split_every,
        concatenate=True,
        meta=np.empty((0,) * x.ndim, EXT),
    )
    y = da.map_blocks(
        _scale,
        x,
        p,
        axis=axis,
        log=log,
        result_dtype=result_dtype,
        dtype=result_dtype,
        meta=np.empty((0,) * x.ndim, result_dtype),
    )
    q = da.reduction(
        da.map_blocks(
            _max_partials,
            x,
            p,
            axis=axis,
            dtype=np.float64,
            new_axis=0,
            chunks=((2,),) + tuple((1,) * len(c) if i == axis else c for i, c in enumerate(x.chunks)),
        ),
        _identity,
        _merge_max,
        combine=_merge_max,
        axis=axis + 1,
        keepdims=True,
        dtype=np.float64,
        split_every=split_every,
        concatenate=True,
        meta=np.empty((0,) * (x.ndim + 1), np.float64),
    )
    return da.map_blocks(
        _fallback_scale,
        y,
        x,
        p,
        q[0],
        q[1],
        axis=axis,
        log=log,
        dtype=result_dtype,
        meta=np.empty((0,) * x.ndim, result_dtype),
    )


def softmax(x: da.Array, axis: int = -1, *, split_every: int | None = None) -> da.Array:
    """Softmax of a Dask array along `axis`, lazily (a Dask array; call ``.compute()``).

    If `axis` is a single chunk, every block is computed by :func:`numkern.softmax` (blockwise,
    one kernel thread per Dask thread). Otherwise it is a reduction: each chunk gives every slice's
    pass-1 sum ``sum exp(x) = m * 2**e`` (Dukhan & Ablavatski, "The Two-Pass Softmax Algorithm",
    2020), the pairs are merged in a tree of fan-in `split_every` (exact power-of-two alignment,
    float64 additions), and a blockwise second pass scales each chunk. Slices whose magnitude is
    beyond the two-pass range (``|x|`` above about 7e5) take a max-based float64 path through a
    second small reduction that is empty otherwise.

    Parameters
    ----------
    x : dask.array.Array or array_like
        float32/float64 computed in their own type, float16 in float32 (returned as float16),
        integers and bool in float64.
    axis : int, default -1
    split_every : int, optional
        Fan-in of the merge tree (Dask's default when None).

    Returns
    -------
    dask.array.Array
        Same chunks as `x`. Equal to ``numkern.softmax`` of the whole array within its stated
        accuracy (relative 1e-6 float32, 1e-14 float64), with the same special values (scipy's).

    Raises
    ------
    TypeError
        For a non-numeric dtype.
    ValueError
        For a 0-d array. numpy.exceptions.AxisError for a bad axis.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> import numkern
    >>> import numkern.dask as nkd
    >>> x = np.random.default_rng(0).standard_normal((4, 1000))
    >>> y = nkd.softmax(da.from_array(x, chunks=(2, 300)), axis=-1)   # the axis in 4 chunks
    >>> print(np.allclose(y.compute(), numkern.softmax(x), rtol=1e-14, atol=0))
    True
    """
    return _run(x, axis, False, split_every)


def log_softmax(x: da.Array, axis: int = -1, *, split_every: int | None = None) -> da.Array:
    """Log-softmax of a Dask array along `axis`: as :func:`softmax`, the second pass subtracting
    ``log(m) + e log 2``. Equal to ``numkern.log_softmax`` within its stated accuracy (absolute
    2e-6 float32, 4e-15 float64, times ``max(1, |result|)``).

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> import numkern
    >>> import numkern.dask as nkd
    >>> x = np.random.default_rng(0).standard_normal((4, 1000))
    >>> y = nkd.log_softmax(da.from_array(x, chunks=(2, 300)), axis=-1)
    >>> print(np.allclose(y.compute(), numkern.log_softmax(x), rtol=0, atol=1e-13))
    True
    """
    return _run(x, axis, True, split_every)
