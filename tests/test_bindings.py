"""The bindings pick the element type by item size, not by dtype identity: a float32 dtype that is
equal to NumPy's float32 but another object (as an array unpickled on a dask worker carries) must
still run the float32 kernels."""

import pickle

import numpy as np

import numkern


def _unpickled_float32(rng, shape):
    x = pickle.loads(pickle.dumps(rng.standard_normal(shape).astype(np.float32)))
    assert x.dtype == np.float32
    return x


def test_unpickled_float32_dtype_runs_the_float32_kernels(rng):
    x = _unpickled_float32(rng, (6, 40))
    if x.dtype is np.dtype(np.float32):  # NumPy versions that intern the descriptor cannot show the case
        x = x.view(np.dtype(np.float32, metadata={"from": "test"}))
    assert x.dtype is not np.dtype(np.float32)
    ref = x.astype(np.float64)

    sm = numkern.softmax(x)
    e = np.exp(ref - ref.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(sm, e / e.sum(axis=-1, keepdims=True), rtol=2e-6)

    y = numkern.l1_norm(x)
    d = ref - ref.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(y, d / (np.abs(d).mean(axis=-1, keepdims=True) + 1e-5), rtol=1e-5, atol=1e-6)

    h = numkern.fwht(x[:4], axis=0)
    r = ref[:4]
    had = np.stack(
        [r[0] + r[1] + r[2] + r[3], r[0] - r[1] + r[2] - r[3], r[0] + r[1] - r[2] - r[3], r[0] - r[1] - r[2] + r[3]]
    )
    np.testing.assert_allclose(h, had, rtol=1e-5, atol=1e-5)
