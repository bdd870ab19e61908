"""scikit-learn's estimator conventions without importing scikit-learn: parameters, input checks with
the messages scikit-learn's own validation raises (``check_estimator`` looks for them), and its
exception and warning classes when it is installed."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np


def not_fitted_error(msg: str) -> Exception:
    """scikit-learn's NotFittedError (a ValueError) if scikit-learn is installed, else a ValueError."""
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:
        return ValueError(msg)
    return NotFittedError(msg)


def _data_conversion_warning() -> type[Warning]:
    try:
        from sklearn.exceptions import DataConversionWarning
    except ImportError:
        return UserWarning
    return DataConversionWarning


class ComplexDataError(TypeError, ValueError):
    """Complex input: a TypeError, numkern's rule for an unsupported dtype, that is also the
    ValueError scikit-learn's estimator checks expect for it."""


class ParamsMixin:
    """get_params / set_params from the constructor's signature, as ``sklearn.base.BaseEstimator``
    does (so ``sklearn.base.clone`` and grid searches work)."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p for p in sig.parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator (scikit-learn convention).

        Examples
        --------
        >>> from numkern import dp
        >>> dp.KernelDensity(bandwidth=0.5).get_params()["bandwidth"]
        0.5
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Any:
        """Set parameters (scikit-learn convention); returns self.

        Examples
        --------
        >>> from numkern import dp
        >>> dp.KernelDensity().set_params(bandwidth=2.0).bandwidth
        2.0
        """
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; valid: {valid}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"


def _is_sparse(X) -> bool:
    # scipy.sparse matrices and arrays, recognized without importing scipy
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "toarray")


def check_array(X, owner: str, *, n_features: int | None = None) -> np.ndarray:
    """X as a C-contiguous float64 2-D array of finite values, with the errors (types and messages)
    of ``sklearn.utils.check_array``: sparse input (TypeError), complex, 1-D, empty, NaN/inf and,
    when ``n_features`` is given, a different number of features (ValueError). Object arrays are
    converted to float64 (TypeError for entries that are not numbers)."""
    if _is_sparse(X):
        raise TypeError(
            "Sparse data was passed for X, but dense data is required. Use '.toarray()' to convert to a "
            "dense numpy array."
        )
    try:
        arr = np.asarray(X)
    except Exception as exc:  # noqa: BLE001 - ragged lists and the like
        raise ValueError(f"X must be a 2-D numeric array: {exc}") from None
    if arr.dtype.kind == "c":
        raise ComplexDataError(f"Complex data not supported: X has dtype {arr.dtype}")
    if arr.dtype.kind == "O":
        arr = arr.astype(np.float64)  # TypeError "float() argument must be a string or a ... number"
    elif arr.dtype.kind not in "biuf":
        raise TypeError(f"X must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        kind = "scalar" if arr.ndim == 0 else f"{arr.ndim}D"
        raise ValueError(
            f"Expected 2D array, got {kind} array instead (shape {arr.shape}). Reshape your data either using "
            "array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) if it contains a "
            "single sample."
        )
    if arr.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required by {owner}."
        )
    if arr.shape[1] < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required by {owner}."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"X has {arr.shape[1]} features, but {owner} is expecting {n_features} features as input.")
    arr = np.require(arr, np.float64, ["C_CONTIGUOUS", "ALIGNED"])
    finite = np.isfinite(arr)
    if not finite.all():
        what = "NaN" if np.isnan(arr).any() else "infinity or a value too large for dtype('float64')"
        raise ValueError(f"Input X contains {what}.")
    return arr


def check_labels(y, n_samples: int, owner: str) -> np.ndarray:
    """Class labels as a 1-D array, as scikit-learn's classifiers take them: None, NaN, infinity,
    complex values, non-integral floats ("continuous") and 2-D arrays of more than one column raise
    ValueError; a column vector is raveled with a DataConversionWarning."""
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None.")
    try:
        arr = np.asarray(y)
    except Exception as exc:  # noqa: BLE001 - ragged lists and the like
        raise ValueError(f"y must be a 1-D array of class labels: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
            "(n_samples, ), for example using ravel().",
            _data_conversion_warning(),
            stacklevel=3,
        )
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {arr.shape} instead.")
    if arr.shape[0] != n_samples:
        raise ValueError(f"y must be 1-D with one label per row of X ({n_samples}); got shape {arr.shape}")
    if arr.dtype.kind == "c":
        raise ComplexDataError("Complex data not supported: y has a complex dtype")
    if arr.dtype.kind == "f":
        if np.isnan(arr).any():
            raise ValueError("Input y contains NaN.")
        if np.isinf(arr).any():
            raise ValueError("Input y contains infinity or a value too large for dtype('float64').")
        if np.any(arr != np.round(arr)):
            raise ValueError(
                "Unknown label type: continuous. Maybe you are trying to fit a classifier, which expects "
                "discrete classes on a regression target with continuous values."
            )
    elif arr.dtype.kind not in "biuUSO":
        raise ValueError(f"Unknown label type: y has dtype {arr.dtype}")
    return arr
