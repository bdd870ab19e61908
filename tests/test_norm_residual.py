"""The fused residual add of l1_norm / layer_norm / rms_norm (``h = x + residual``, ``(norm(h), h)``),
and rms_norm / the uncentred l1_norm with their gradients against torch, on every ISA level."""

import functools

import numpy as np
import pytest

import numkern

NORMS = [
    numkern.l1_norm,
    numkern.layer_norm,
    numkern.rms_norm,
    functools.partial(numkern.l1_norm, center=False),
]
IDS = ["l1", "l2", "rms", "l1u"]


@pytest.mark.parametrize("fn", NORMS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((7, 1000), -1), ((3, 4, 33), 1), ((40000,), 0), ((5, 3), 0)])
def test_fused_equals_add_then_norm_bit_for_bit(fn, dtype, shape, axis, rng):
    x = rng.standard_normal(shape).astype(dtype)
    r = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(shape[axis]).astype(dtype)
    y, h = fn(x, axis=axis, weight=w, residual=r)
    np.testing.assert_array_equal(h, x + r)  # one correctly rounded add, as NumPy's
    np.testing.assert_array_equal(y, fn(x + r, axis=axis, weight=w))
    assert y.dtype == h.dtype == dtype


@pytest.mark.parametrize("fn", NORMS, ids=IDS)
def test_fused_strided_and_negative_stride_operands(fn, rng):
    base = rng.standard_normal((6, 20, 9))
    x = base[:, ::-2, :]
    r = np.asfortranarray(rng.standard_normal((6, 10, 9)))
    for axis in (0, 1, 2):
        y_out = np.zeros((6, 20, 9))[:, ::2]
        h_out = np.zeros((9, 10, 6)).T
        y, h = fn(x, axis=axis, residual=r, out=(y_out, h_out))
        assert y is y_out and h is h_out
        np.testing.assert_array_equal(h, x + r)
        np.testing.assert_array_equal(y, fn(x + r, axis=axis))


@pytest.mark.parametrize("fn", NORMS, ids=IDS)
def test_fused_outputs_may_replace_inputs(fn, rng):
    x0 = rng.standard_normal((16, 300)).astype(np.float32)
    r0 = rng.standard_normal((16, 300)).astype(np.float32)
    want_y, want_h = fn(x0 + r0), x0 + r0
    for pick in [(None, "r"), ("x", None), ("x", "r"), ("r", "x"), ("r", None), (None, "x")]:
        x, r = x0.copy(), r0.copy()
        named = {"x": x, "r": r, None: None}
        y, h = fn(x, residual=r, out=(named[pick[0]], named[pick[1]]))
        np.testing.assert_array_equal(y, want_y, err_msg=str(pick))
        np.testing.assert_array_equal(h, want_h, err_msg=str(pick))
        if pick[0] is not None:
            assert y is named[pick[0]]
        if pick[1] is not None:
            assert h is named[pick[1]]


@pytest.mark.parametrize("fn", NORMS, ids=IDS)
def test_fused_partially_overlapping_operands_read_the_original_values(fn, rng):
    buf = rng.standard_normal(2 * 257)
    x = buf[:256]
    r = rng.standard_normal(256)
    h_out = buf[1:257]  # overlaps x shifted by one element
    xr = x.copy() + r
    y, h = fn(x, residual=r, out=(None, h_out))
    np.testing.assert_array_equal(h, xr)
    np.testing.assert_array_equal(y, fn(xr))


@pytest.mark.parametrize("fn", NORMS, ids=IDS)
def test_fused_dtype_policy(fn, rng):
    x16 = rng.standard_normal((4, 64)).astype(np.float16)
    r16 = rng.standard_normal((4, 64)).astype(np.float16)
    y, h = fn(x16, residual=r16)
    assert y.dtype == h.dtype == np.float16
    # Computed in float32: the exact sum of two float16 values, normalized, then rounded once.
    h32 = x16.astype(np.float32) + r16.astype(np.float32)
    np.testing.assert_array_equal(h, h32.astype(np.float16))
    np.testing.assert_array_equal(y, fn(h32).astype(np.float16))
    y, h = fn(x16, residual=r16.astype(np.float64))
    assert y.dtype == h.dtype == np.float64
    y, h = fn(np.arange(64).reshape(4, 16), residual=np.ones((4, 16), np.int32))
    assert y.dtype == h.dtype == np.float64
    np.testing.assert_array_equal(h, np.arange(64).reshape(4, 16) + 1.0)
    out = (np.empty((4, 64), np.float16), np.empty((4, 64), np.float16))
    y2, h2 = fn(x16, residual=r16, out=out)
    assert y2 is out[0] and h2 is out[1]
    np.testing.assert_array_equal(y2, fn(x16, residual=r16)[0])


@pytest.mark.isa_independent
@pytest.mark.parametrize("fn", NORMS, ids=IDS)
def test_fused_bad_arguments_raise_and_do_not_mutate(fn):
    x = np.arange(12.0).reshape(3, 4)
    r = np.ones((3, 4))
    keep_x, keep_r = x.copy(), r.copy()
    with pytest.raises(ValueError, match="residual has shape"):
        fn(x, residual=np.ones((3, 5)))
    with pytest.raises(ValueError, match="residual has shape"):
        fn(x, residual=np.ones(4))  # no broadcasting: h has x's shape
    with pytest.raises(TypeError, match="residual"):
        fn(x, residual=np.ones((3, 4), np.complex64))
    with pytest.raises(TypeError, match="pair"):
        fn(x, residual=r, out=np.empty((3, 4)))
    with pytest.raises(TypeError, match="pair"):
        fn(x, residual=r, out=(np.empty((3, 4)),))
    with pytest.raises(TypeError, match="only with residual"):
        fn(x, out=(np.empty((3, 4)), np.empty((3, 4))))
    both = np.empty((3, 4))
    with pytest.raises(ValueError, match="overlap"):
        fn(x, residual=r, out=(both, both))
    with pytest.raises(ValueError, match="overlap"):
        fn(x, residual=r, out=(both, both[::-1]))
    with pytest.raises(TypeError, match=r"out\[1\] has dtype"):
        fn(x, residual=r, out=(None, np.empty((3, 4), np.float32)))
    ro = np.empty((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fn(x, residual=r, out=(None, ro))
    np.testing.assert_array_equal(x, keep_x)
    np.testing.assert_array_equal(r, keep_r)


# ---------------------------------------------------------------- against torch (skipped without it)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rms_norm_and_its_gradient_match_torch(dtype, rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((8, 96)).astype(dtype)
    w = rng.standard_normal(96).astype(dtype)
    dy = rng.standard_normal((8, 96)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.rms_norm(xt, (96,), weight=wt, eps=1e-6)
    yt.backward(torch.tensor(dy))
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(numkern.rms_norm(x, weight=w), yt.detach().numpy(), rtol=tol, atol=tol)
    dx, dw = numkern.rms_norm_backward(dy, x, weight=w)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=10 * tol, atol=10 * tol)
    np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=10 * tol, atol=10 * tol)


def test_uncentered_l1_norm_and_its_gradient_match_torch_autograd(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((5, 50))
    dy = rng.standard_normal((5, 50))
    w = rng.standard_normal(50)
    b = rng.standard_normal(50)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    yt = wt * xt / (xt.abs().mean(-1, keepdim=True) + 1e-5) + bt
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(
        numkern.l1_norm(x, weight=w, bias=b, center=False), yt.detach().numpy(), rtol=1e-12, atol=1e-12
    )
    dx, dw, db = numkern.l1_norm_backward(dy, x, weight=w, center=False)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-11, atol=1e-11)


def test_fused_layer_norm_matches_torch_add_then_layer_norm(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 128)).astype(np.float32)
    r = rng.standard_normal((4, 128)).astype(np.float32)
    ht = torch.tensor(x) + torch.tensor(r)
    yt = torch.nn.functional.layer_norm(ht, (128,))
    y, h = numkern.layer_norm(x, residual=r)
    np.testing.assert_array_equal(h, ht.numpy())
    np.testing.assert_allclose(y, yt.numpy(), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("fn", NORMS[1:3], ids=IDS[1:3])
def test_fused_large_outputs_stream_correctly(fn, rng):
    # >= 8 MiB of existing outputs take the non-temporal-store path for y and h; an offset view
    # misaligns each row, and the first column must stay untouched.
    x = rng.standard_normal((1025, 2049), dtype=np.float32)
    r = rng.standard_normal((1025, 2049), dtype=np.float32)
    y_out = np.full((1025, 2049), 7.0, np.float32)
    h_out = np.full((1025, 2049), 7.0, np.float32)
    y, h = fn(x[:, 1:], residual=r[:, 1:], out=(y_out[:, 1:], h_out[:, 1:]))
    want_h = x[:, 1:] + r[:, 1:]
    np.testing.assert_array_equal(h, want_h)
    np.testing.assert_array_equal(y, fn(want_h))
    assert np.all(y_out[:, 0] == 7.0) and np.all(h_out[:, 0] == 7.0)
    # In place on the residual stream: h replaces r.
    r2 = r.copy()
    fn(x, residual=r2, out=(None, r2))
    np.testing.assert_array_equal(r2, x + r)
