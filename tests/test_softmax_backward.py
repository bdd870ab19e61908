"""softmax_backward and log_softmax_backward against float64 references computed here, against
finite differences of the forward functions, and against torch autograd where torch is installed;
every layout, in-place outputs, special values and the documented error bound."""

import numpy as np
import pytest

import numkern

U = {np.dtype(np.float32): 2.0**-24, np.dtype(np.float64): 2.0**-53}


def _ref(y, dy, axis, log):
    y, dy = y.astype(np.float64), dy.astype(np.float64)
    if log:
        return dy - np.exp(y) * dy.sum(axis=axis, keepdims=True)
    return y * (dy - (y * dy).sum(axis=axis, keepdims=True))


def _bound(y, dy, axis, log, u):
    y, ady = y.astype(np.float64), np.abs(dy.astype(np.float64))
    if log:
        return 64 * u * (ady + np.exp(y) * ady.sum(axis=axis, keepdims=True))
    ay = np.abs(y)
    return 64 * u * ay * (ady + (ay * ady).sum(axis=axis, keepdims=True))


def _pair(rng, shape, axis, dtype, log):
    x = rng.standard_normal(shape) * 3
    y = numkern.log_softmax(x, axis) if log else numkern.softmax(x, axis)
    return y.astype(dtype), rng.standard_normal(shape).astype(dtype)


def _fn(log):
    return numkern.log_softmax_backward if log else numkern.softmax_backward


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape,axis",
    [((7,), 0), ((3, 1), 1), ((5, 33), -1), ((4, 1000), 1), ((64, 6), 0), ((2, 3, 300), 1), ((1, 2**19), 1)],
)
def test_backward_matches_the_float64_formula_within_the_documented_bound(rng, shape, axis, dtype, log):
    y, dy = _pair(rng, shape, axis, dtype, log)
    dx = _fn(log)(y, dy, axis)
    assert dx.dtype == dtype and dx.shape == shape
    err = np.abs(dx.astype(np.float64) - _ref(y, dy, axis, log))
    bound = _bound(y, dy, axis, log, U[np.dtype(dtype)])
    assert np.all(err <= bound), float(np.max(err / np.where(bound > 0, bound, 1)))


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_outputs_equal_fresh_ones(rng, dtype, log):
    # An existing output of >= 8 MiB is written with non-temporal stores, forward and backward;
    # a fresh one is split on its pages. Both must hold the same values, within the bound.
    n = (1 << 21) + 37
    x = (rng.standard_normal(n) * 3).astype(dtype)
    fwd = numkern.log_softmax if log else numkern.softmax
    y = fwd(x, algorithm="two_pass")
    out = np.full(n, 7, dtype)
    fwd(x, out=out, algorithm="two_pass")
    np.testing.assert_array_equal(out, y)
    dy = rng.standard_normal(n).astype(dtype)
    dx = _fn(log)(y, dy)
    np.testing.assert_array_equal(_fn(log)(y, dy, out=out), dx)
    assert (np.abs(dx.astype(np.float64) - _ref(y, dy, 0, log)) <= _bound(y, dy, 0, log, U[np.dtype(dtype)])).all()


@pytest.mark.parametrize("log", [False, True])
def test_every_layout_gives_the_contiguous_result(rng, log):
    y, dy = _pair(rng, (6, 40, 5), 1, np.float64, log)
    want = _fn(log)(y, dy, axis=1)
    for view in (lambda a: a, np.asfortranarray, lambda a: a[::-1, :, ::-1], lambda a: np.swapaxes(a, 0, 2)):
        yv, dyv = view(y), view(dy)
        wv = view(want)
        ax = 1
        np.testing.assert_array_equal(_fn(log)(yv, dyv, axis=ax), wv)
    # strided y, contiguous dy, and a strided out
    big = np.zeros((6, 80, 5))
    big[:, ::2] = y
    out = np.zeros((12, 40, 5))[::2]
    r = _fn(log)(big[:, ::2], dy, axis=1, out=out)
    assert r is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("log", [False, True])
def test_in_place_on_dy_and_on_y(rng, log):
    y, dy = _pair(rng, (5, 70), -1, np.float32, log)
    want = _fn(log)(y, dy)
    d2 = dy.copy()
    assert _fn(log)(y, d2, out=d2) is d2
    np.testing.assert_array_equal(d2, want)
    y2 = y.copy()
    _fn(log)(y2, dy, out=y2)
    np.testing.assert_array_equal(y2, want)
    # an out that overlaps dy other than element for element is computed through a copy
    buf = np.concatenate([dy.ravel(), np.zeros(1, np.float32)])
    shifted_out = buf[1:].reshape(dy.shape)
    _fn(log)(y, buf[:-1].reshape(dy.shape), out=shifted_out)
    np.testing.assert_array_equal(shifted_out, want)


@pytest.mark.parametrize("log", [False, True])
def test_inputs_are_not_changed_and_dtypes_follow_numpy(rng, log):
    y, dy = _pair(rng, (3, 20), -1, np.float64, log)
    y0, dy0 = y.copy(), dy.copy()
    _fn(log)(y, dy)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(dy, dy0)
    assert _fn(log)(y.astype(np.float16), dy.astype(np.float16)).dtype == np.float16
    assert _fn(log)(y.astype(np.float16), dy.astype(np.float32)).dtype == np.float32
    assert _fn(log)(y.astype(np.float32), dy).dtype == np.float64
    r16 = _fn(log)(y.astype(np.float16), dy.astype(np.float16))
    r32 = _fn(log)(y.astype(np.float16).astype(np.float32), dy.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(r16, r32.astype(np.float16))


@pytest.mark.parametrize("log", [False, True])
def test_finite_differences_of_the_forward(rng, log):
    # d/dx of sum(w * f(x)) by central differences against backward(f(x), w).
    x = rng.standard_normal((3, 9))
    w = rng.standard_normal((3, 9))
    f = numkern.log_softmax if log else numkern.softmax
    h = 1e-6
    num = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = ((w * f(xp)).sum() - (w * f(xm)).sum()) / (2 * h)
    np.testing.assert_allclose(_fn(log)(f(x), w), num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("log", [False, True])
def test_matches_torch_autograd(rng, log):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 50))
    w = rng.standard_normal((4, 50))
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.log_softmax(xt, dim=1) if log else torch.softmax(xt, dim=1)
    (yt * torch.tensor(w)).sum().backward()
    got = _fn(log)(yt.detach().numpy(), w, axis=1)
    np.testing.assert_allclose(got, xt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_special_values():
    nan, inf = np.nan, np.inf
    # a NaN in y * dy makes its slice NaN; other slices are untouched
    y = np.array([[0.5, 0.5], [nan, 1.0]])
    dy = np.array([[1.0, 2.0], [1.0, 1.0]])
    dx = numkern.softmax_backward(y, dy)
    np.testing.assert_allclose(dx[0], [-0.25, 0.25])
    assert np.isnan(dx[1]).all()
    # log-softmax: a -inf output (probability 0) takes no part in the sum's weight
    y = np.array([np.log(0.25), -inf, np.log(0.75)])
    dy = np.array([1.0, 1.0, 0.0])
    np.testing.assert_allclose(numkern.log_softmax_backward(y, dy), [1 - 0.5, 1.0, -1.5])
    # the log-softmax sum is over dy alone: a NaN in y stays in its entry, a NaN in dy spreads
    np.testing.assert_array_equal(numkern.log_softmax_backward(np.array([0.0, nan]), np.array([1.0, 0.0])), [0.0, nan])
    assert np.isnan(numkern.log_softmax_backward(np.array([0.0, -1.0]), np.array([nan, 0.0]))).all()
    # an empty slice axis, and empty arrays
    assert numkern.softmax_backward(np.zeros((3, 0)), np.zeros((3, 0))).shape == (3, 0)
    assert numkern.log_softmax_backward(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 4)


def test_results_do_not_depend_on_the_thread_count(rng):
    y, dy = _pair(rng, (1, 2**20 + 3), -1, np.float32, False)
    with numkern.thread_limit(1):
        one = numkern.softmax_backward(y, dy)
    np.testing.assert_array_equal(numkern.softmax_backward(y, dy), one)


@pytest.mark.parametrize("log", [False, True])
def test_large_existing_outputs_are_streamed_to_the_same_result(rng, log):
    # >= 8 MiB into an existing out= takes the non-temporal-store path; rows of an odd length
    # from an offset view misalign every vector, and the column before them must stay untouched.
    x = rng.standard_normal((300, 7001)).astype(np.float32)
    fwd, bwd = (
        (numkern.log_softmax, numkern.log_softmax_backward) if log else (numkern.softmax, numkern.softmax_backward)
    )
    y = fwd(x[:, 1:])
    dy = rng.standard_normal(y.shape).astype(np.float32)
    want = bwd(y, dy)  # a new output: not streamed
    out = np.full((300, 7001), 7.0, np.float32)
    got = bwd(y, dy, out=out[:, 1:])
    np.testing.assert_array_equal(got, want)
    assert np.all(out[:, 0] == 7.0)
    flat = np.full(y.size + 1, 7.0, np.float32)
    np.testing.assert_array_equal(bwd(y.ravel(), dy.ravel(), out=flat[1:]), bwd(y.ravel(), dy.ravel()))


def test_bad_arguments_raise():
    y = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="one shape"):
        numkern.softmax_backward(y, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="repeated"):
        numkern.log_softmax_backward(y, y, axis=(0, -2))
    with pytest.raises(TypeError, match="dy must have"):
        numkern.softmax_backward(y, y.astype(np.complex128))
    with pytest.raises(np.exceptions.AxisError):
        numkern.softmax_backward(y, y, axis=2)
    with pytest.raises(TypeError):
        numkern.softmax_backward(y, y, out=np.zeros((2, 3), np.float32))
    ro = np.zeros((2, 3))
    ro.setflags(write=False)
    with pytest.raises(ValueError):
        numkern.softmax_backward(y, y, out=ro)
