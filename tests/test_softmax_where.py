"""Masked softmax (where=): against a float64 reference computed here on where(mask, x, -inf) with
fully masked slices set to 0 (-inf for log-softmax), against torch's masked_fill where torch is
installed; broadcast and strided masks, every algorithm, several axes, and the backward passes."""

import numpy as np
import pytest

import numkern

ALGORITHMS = ["auto", "two_pass", "three_pass_reload", "three_pass_recompute"]


def _ref(x, mask, axes, log):
    x = np.where(mask, x.astype(np.float64), -np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.max(x, axis=axes, keepdims=True)
        z = x - np.where(np.isfinite(m), m, 0.0)
        s = np.sum(np.exp(z), axis=axes, keepdims=True)
        y = z - np.log(s) if log else np.exp(z) / s
    empty = ~np.any(np.broadcast_to(mask, x.shape), axis=axes, keepdims=True)
    return np.where(empty, -np.inf if log else 0.0, y)


def _masks(rng, shape):
    n = shape[-1]
    yield "full", rng.random(shape) < 0.6
    yield "row broadcast", rng.random((1, n)) < 0.5
    yield "column broadcast", rng.random((shape[0], 1)) < 0.5
    yield "1-d", rng.random(n) < 0.7
    yield "strided", (rng.random((shape[0], 2 * n)) < 0.5)[:, ::2]
    yield "reversed", (rng.random(shape) < 0.5)[::-1, ::-1]
    yield "all True", np.True_
    causal = np.tril(np.ones((shape[0], n), dtype=bool))
    yield "causal", causal


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_softmax_matches_the_reference(rng, dtype, algorithm, log):
    x = (rng.standard_normal((9, 300)) * 3).astype(dtype)
    x[3] = np.nan  # garbage under a fully masked row must not leak
    fn = numkern.log_softmax if log else numkern.softmax
    for name, mask in _masks(rng, x.shape):
        m = np.broadcast_to(mask, x.shape).copy()
        m[3] = False
        if name == "all True":
            m = np.ones(x.shape, bool)
            m[3] = False
        x0 = x.copy()
        got = fn(x, where=m, algorithm=algorithm)
        np.testing.assert_array_equal(x, x0)
        want = _ref(x, m, (1,), log)
        assert not np.isnan(got).any(), name
        tol = 2e-6 if dtype == np.float32 else 1e-14
        if log:
            fin = np.isfinite(want)
            assert np.array_equal(np.isfinite(got), fin), name
            np.testing.assert_allclose(got[fin], want[fin], rtol=0, atol=8 * tol * max(1, np.abs(want[fin]).max()))
        else:
            np.testing.assert_allclose(got, want, rtol=4 * tol, atol=1e-30, err_msg=name)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_masked_slices_split_and_streamed(rng, dtype, log):
    # Slices long enough for the two-pass algorithm are split into parts across threads, and an
    # output of >= 8 MiB is written with non-temporal stores; the mask is read in place there
    # (fused into the kernels' loads), from an element offset that misaligns every vector.
    n = (1 << 21) + 37
    buf = (rng.standard_normal(n + 1) * 4).astype(dtype)
    x = buf[1:]
    mask = rng.random(n + 3) < 0.3
    m = mask[3:]
    fn = numkern.log_softmax if log else numkern.softmax
    got = fn(x, where=m)
    want = _ref(x, m, (0,), log)
    if log:
        fin = np.isfinite(want)
        assert np.array_equal(np.isfinite(got), fin)
        np.testing.assert_allclose(got[fin], want[fin], rtol=0, atol=1e-5 * max(1, np.abs(want[fin]).max()))
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-30)
    out = np.full(n, 7.0, dtype)  # an existing output: the streamed path
    fn(x, where=m, out=out)
    np.testing.assert_array_equal(out, got)
    with numkern.thread_limit(1):
        np.testing.assert_array_equal(fn(x, where=m), got)  # the split is independent of threads


def test_broadcast_masks_are_read_in_place(rng):
    x = rng.standard_normal((6, 40))
    row = rng.random(40) < 0.5
    np.testing.assert_array_equal(numkern.softmax(x, where=row), numkern.softmax(x, where=np.tile(row, (6, 1))))
    col = rng.random((6, 1)) < 0.5
    got = numkern.softmax(x, where=col)
    assert np.all(got[~col[:, 0]] == 0)
    np.testing.assert_allclose(got[col[:, 0]], numkern.softmax(x[col[:, 0]]), rtol=1e-15)


def test_masked_over_several_axes_and_the_whole_array(rng):
    x = rng.standard_normal((4, 5, 6))
    mask = rng.random((4, 1, 6)) < 0.5
    for axis, axes in (((0, 2), (0, 2)), (None, (0, 1, 2)), ((1, 2), (1, 2))):
        np.testing.assert_allclose(
            numkern.softmax(np.asfortranarray(x), axis=axis, where=mask), _ref(x, mask, axes, False), rtol=1e-14
        )


@pytest.mark.parametrize("log", [False, True])
def test_matches_torch_masked_fill(rng, log):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((5, 64))
    mask = rng.random((5, 64)) < 0.4
    mask[:, 0] = True  # torch gives NaN for a fully masked row; numkern 0 / -inf (tested above)
    t = torch.tensor(x).masked_fill(~torch.tensor(mask), float("-inf"))
    want = (torch.log_softmax(t, -1) if log else torch.softmax(t, -1)).numpy()
    got = (numkern.log_softmax if log else numkern.softmax)(x, where=mask)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("axis", [-1, (0, 1)])
def test_masked_backward(rng, log, axis):
    x = rng.standard_normal((7, 50))
    mask = rng.random((7, 50)) < 0.5
    mask[2] = False
    f = numkern.log_softmax if log else numkern.softmax
    b = numkern.log_softmax_backward if log else numkern.softmax_backward
    y = f(x, axis=axis, where=mask)
    dy = rng.standard_normal(x.shape)
    dy_garbage = np.where(mask, dy, np.nan)  # values under the mask must not matter
    got = b(y, dy_garbage, axis=axis, where=mask)
    axes = axis if isinstance(axis, tuple) else (1,)
    dm = np.where(mask, dy, 0.0)
    if log:
        want = np.where(mask, dm - np.exp(y) * dm.sum(axis=axes, keepdims=True), 0.0)
    else:
        want = np.where(mask, y * (dm - (y * dm).sum(axis=axes, keepdims=True)), 0.0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert np.all(got[~mask] == 0)
    # finite differences of sum(w * f(x, where=mask)) on the selected entries
    w = rng.standard_normal(x.shape)
    h, i, j = 1e-6, 0, int(np.argmax(mask[0]))
    xp, xm = x.copy(), x.copy()
    xp[i, j] += h
    xm[i, j] -= h
    fd = (
        (w * np.nan_to_num(f(xp, axis=axis, where=mask), neginf=0)).sum()
        - (w * np.nan_to_num(f(xm, axis=axis, where=mask), neginf=0)).sum()
    ) / (2 * h)
    wm = np.where(mask, w, 0.0)
    np.testing.assert_allclose(b(y, wm, axis=axis, where=mask)[i, j], fd, rtol=1e-5, atol=1e-8)


def test_bad_masks_raise():
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match="bool"):
        numkern.softmax(x, where=np.ones((2, 3), np.int8))
    with pytest.raises(ValueError, match="broadcast"):
        numkern.log_softmax(x, where=np.ones((3, 2), bool))
    with pytest.raises(TypeError, match="bool"):
        numkern.softmax_backward(x, x, where=[1, 0, 1])
