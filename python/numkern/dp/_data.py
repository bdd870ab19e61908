"""Input checks of the private structures: a bad dtype raises TypeError, other bad input ValueError,
naming the problem."""

from __future__ import annotations

import numbers

import numpy as np


def check_records_schema(arr, name: str = "X") -> None:
    """dtype and shape of a records array (NumPy or Dask: no pass over the data)."""
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_records, n_features); got {arr.ndim} dimension(s)")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one feature (column); got shape {arr.shape}")


def private_data(X, name: str = "X") -> np.ndarray:
    try:
        arr = np.asarray(X)
    except Exception as exc:  # noqa: BLE001 - ragged lists and the like
        raise ValueError(f"{name} must be a 2-D numeric array: {exc}") from None
    check_records_schema(arr, name)
    arr = np.require(arr, np.float64, ["C_CONTIGUOUS", "ALIGNED"])
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def queries(Y, d: int, name: str = "Y"):
    arr = np.asarray(Y)
    if arr.dtype != np.float64:
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ValueError(f"{name} must have shape (n_queries, {d}) or ({d},); got {np.shape(Y)}")
    if not (arr.flags.c_contiguous and arr.flags.aligned):
        arr = np.require(arr, np.float64, ["C_CONTIGUOUS", "ALIGNED"])
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr, single


def bounds(bounds, d: int):
    """(lo, hi) as float64 arrays of length d from (lo, hi) scalars/arrays or a radius r > 0."""
    if bounds is None:
        raise ValueError(
            "bounds are required: pass bounds=(lo, hi) (scalars or one per feature) or a radius r for "
            "(-r, r); they are public parameters and must not be computed from the private data"
        )
    if isinstance(bounds, numbers.Real) and not isinstance(bounds, bool):
        lo, hi = -float(bounds), float(bounds)
    else:
        try:
            lo, hi = bounds
        except (TypeError, ValueError):
            raise ValueError(f"bounds must be (lo, hi) or a radius, got {bounds!r}") from None
    try:
        lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (d,)).copy()
        hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (d,)).copy()
    except (TypeError, ValueError):
        raise ValueError(
            f"bounds (lo, hi) must be real scalars or arrays of one value per feature ({d}); got {bounds!r}"
        ) from None
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
        raise ValueError("bounds must be finite with hi > lo for every feature")
    return lo, hi
