"""Plain NumPy references, computed in extended precision (x87 long double where available)."""

import numpy as np

WIDE = np.longdouble


def softmax_ref(x, axis=-1):
    xl = np.asarray(x).astype(WIDE)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(xl, axis=axis, keepdims=True)
        e = np.exp(xl - m)
        return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax_ref(x, axis=-1):
    xl = np.asarray(x).astype(WIDE)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(xl, axis=axis, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        t = xl - m
        return t - np.log(np.sum(np.exp(t), axis=axis, keepdims=True))
