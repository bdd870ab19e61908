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


# Products without BLAS. NumPy hands float32/float64/complex products (@, np.dot, np.matmul,
# np.linalg) to the BLAS it was built with (OpenBLAS with a CPU-specific kernel, MKL, Accelerate,
# BLIS), and their last bits depend on that kernel's blocking and summation order. Products of
# long-double arrays run NumPy's own loops, in a fixed order, so references built from them are
# the same under every BLAS.

#: Unit roundoff of WIDE: 2**-64 for the x87 80-bit format, 2**-53 where long double is double.
U_WIDE = float(np.finfo(WIDE).eps) / 2


def matmul_wide(a, b):
    """``a @ b`` in WIDE by NumPy's own loop (no BLAS): each entry a sequential sum over the
    contracted axis, so within gamma_K(U_WIDE) * (|a| @ |b|) of the exact product of the inputs."""
    return np.matmul(np.asarray(a).astype(WIDE), np.asarray(b).astype(WIDE))


def dot_rows(M, v, block=256):
    """``M @ v`` for a 2-d ``M`` without BLAS, as float64: the products in WIDE and NumPy's pairwise
    sum along each row (error about log2(n) U_WIDE (|M| @ |v|), far below any float64 tolerance
    even where long double is double), in blocks of rows to bound the temporary."""
    M = np.asarray(M)
    v = np.asarray(v).astype(WIDE)
    out = np.empty(M.shape[0])
    for i in range(0, M.shape[0], block):
        out[i : i + block] = (M[i : i + block].astype(WIDE) * v).sum(axis=-1)
    return out


def _as_scaled_ints(a):
    """float64 array -> (object array of Python ints M, int E) with a == M * 2**E exactly."""
    a = np.asarray(a, dtype=np.float64)
    mant, exp = np.frexp(a)
    mant = (mant * 2.0**53).astype(np.int64)  # exact: |mant| < 2**53
    exp = exp.astype(np.int64) - 53
    nz = mant != 0
    e0 = int(exp[nz].min()) if nz.any() else 0
    out = np.empty(a.shape, dtype=object)
    out.ravel()[:] = [int(m) << int(e - e0) if m else 0 for m, e in zip(mant.ravel().tolist(), exp.ravel().tolist())]
    return out, e0


def matmul_exact(a, b):
    """``a @ b`` of finite float64 arrays (batched as np.matmul) computed exactly in Python integers
    and rounded once to float64: no BLAS and no rounding in the sum. For small products."""
    ai, ea = _as_scaled_ints(a)
    bi, eb = _as_scaled_ints(b)
    e = ea + eb
    prod = np.matmul(ai, bi)
    flat = [float(v << e) if e >= 0 else v / (1 << -e) for v in np.asarray(prod, dtype=object).ravel().tolist()]
    return np.array(flat, dtype=np.float64).reshape(np.shape(prod))
