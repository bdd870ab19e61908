"""Every array handed to the compiled kernels is aligned for its dtype, whatever the caller passed.

Found by fuzzing under tools/sanitize.sh: a float64 array one byte past an aligned address is
C-contiguous, so ``np.ascontiguousarray`` passed it through and the kernels loaded misaligned
doubles (undefined behaviour; UBSan reported it in the dp kernels). Here every ``numkern._core``
function is wrapped to check its array arguments, and each public entry point is called with
misaligned inputs."""

import warnings

import numpy as np
import pytest

import numkern
from numkern import _core


def _misaligned(a):
    a = np.ascontiguousarray(a)
    raw = np.zeros(a.nbytes + 1, np.uint8)
    view = np.frombuffer(raw[1:].data, dtype=a.dtype).reshape(a.shape)  # read-only, odd address
    raw[1:] = np.frombuffer(a.tobytes(), np.uint8)
    assert not view.flags.aligned and view.flags.c_contiguous
    return view


@pytest.fixture
def checked_core(monkeypatch):
    seen = []
    for name in dir(_core):
        fn = getattr(_core, name)
        if name.startswith("_") or not callable(fn) or name == "softmax_fast":
            continue  # softmax_fast checks alignment itself and declines such arrays (returns None)

        def wrapper(*args, _fn=fn, _name=name, **kwargs):
            for a in list(args) + list(kwargs.values()):
                if isinstance(a, np.ndarray):
                    assert a.flags.aligned, f"_core.{_name} got a misaligned {a.dtype} array"
            seen.append(_name)
            return _fn(*args, **kwargs)

        monkeypatch.setattr(_core, name, wrapper)
    return seen


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_misaligned_inputs_reach_the_kernels_aligned(checked_core, dtype, rng):
    X = _misaligned(rng.standard_normal((40, 3)).astype(dtype))
    Y = _misaligned(rng.standard_normal((5, 3)).astype(dtype))
    w = _misaligned(rng.uniform(0, 1, 40).astype(dtype))
    ref = numkern.kernel_sum(np.array(X), np.array(Y), bandwidth=1.5, weights=np.array(w))
    np.testing.assert_allclose(numkern.kernel_sum(X, Y, bandwidth=1.5, weights=w), ref, rtol=1e-13)
    numkern.distance_sum(X, Y, metric="l1", weights=w)
    for S in (
        numkern.sketch.SRHT(40, 8, rng=1),
        numkern.sketch.Gaussian(40, 8, rng=1),
        numkern.sketch.SparseSign(40, 8, nnz_per_col=2, rng=1),
        numkern.sketch.CountSketch(40, 8, rng=1),
    ):
        np.testing.assert_array_equal(S @ X, S @ np.array(X))
    b = _misaligned(rng.standard_normal(40).astype(dtype))
    for method in ("sketch", "precondition", "direct"):
        numkern.lstsq(X, b, method=method, m=16, rng=2)
    numkern.shiftquant(X, 4)
    numkern.quant.matmul(X, _misaligned(rng.standard_normal((3, 4)).astype(dtype)))
    numkern.l1_norm(X, weight=Y[0], bias=Y[1])
    numkern.layer_norm_backward(X, X, weight=Y[0])
    numkern.softmax(X)
    numkern.fwht(X[:32])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", numkern.dp.NotPrivateWarning)
        numkern.dp.KernelDensity(n_components=16, rng=1).fit(X).query(Y)
        numkern.dp.DistanceSum("l1", 1.0, bounds=5.0, rng=1).fit(X).query(Y)
        numkern.dp.DistanceSum("l2", 1.0, bounds=5.0, rng=1).fit(X).query(Y)
    assert {"dp_pair_sum", "shiftquant", "norm_forward"} <= set(checked_core)
