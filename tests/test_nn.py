"""numkern.nn: finite-difference gradient checks in float64 for every layer, optimizer steps
against their formulas, and the ShiftQuant Linear against the float one."""

import numpy as np
import pytest

import numkern.nn as nn

H = 1e-6


def numeric_grads(module, x, g):
    """Central differences of sum(module.forward(x) * g) for x and every parameter."""

    def loss():
        return float((module.forward(x) * g).sum())

    out = []
    for arr in [x] + [p.data for p in module.parameters()]:
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + H
            up = loss()
            arr[idx] = old - H
            down = loss()
            arr[idx] = old
            num[idx] = (up - down) / (2 * H)
        out.append(num)
    return out


def check_gradients(module, x, rng, rtol=1e-5, atol=1e-7):
    y = module.forward(x)
    g = rng.standard_normal(y.shape)
    dx = module.backward(g)
    analytic = [dx] + [p.grad.copy() for p in module.parameters()]
    numeric = numeric_grads(module, x, g)
    for a, n in zip(analytic, numeric):
        assert a.shape == n.shape
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol)


def randomize(module, rng):
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.data.shape)


def test_linear_gradients(rng):
    check_gradients(nn.Linear(5, 4, rng=1, dtype=np.float64), rng.standard_normal((3, 5)), rng)


def test_relu_gradients(rng):
    x = rng.standard_normal((4, 6))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    check_gradients(nn.ReLU(), x, rng)


@pytest.mark.parametrize("cls", [nn.L1LayerNorm, nn.LayerNorm])
def test_feature_norm_gradients(cls, rng):
    m = cls(7, dtype=np.float64)
    randomize(m, rng)
    check_gradients(m, rng.standard_normal((3, 7)) * 2 + 1, rng)


def test_l1_batch_norm_gradients(rng):
    m = nn.L1BatchNorm(4, dtype=np.float64)
    randomize(m, rng)
    check_gradients(m, rng.standard_normal((6, 4)) * 3 - 1, rng)


def test_softmax_cross_entropy_gradient(rng):
    logits = rng.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    loss = nn.SoftmaxCrossEntropy()
    value = loss.forward(logits, labels)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert value == pytest.approx(-np.log(p[np.arange(5), labels]).mean(), rel=1e-12)
    grad = loss.backward()
    num = np.zeros_like(logits)
    for idx in np.ndindex(logits.shape):
        lp, lm = logits.copy(), logits.copy()
        lp[idx] += H
        lm[idx] -= H
        num[idx] = (loss.forward(lp, labels) - loss.forward(lm, labels)) / (2 * H)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("norm", [nn.L1LayerNorm, nn.LayerNorm])
def test_sequential_mlp_gradients(norm, rng):
    model = nn.Sequential(
        nn.Linear(6, 8, rng=2, dtype=np.float64),
        norm(8, dtype=np.float64),
        nn.ReLU(),
        nn.Linear(8, 3, rng=3, dtype=np.float64),
    )
    x = rng.standard_normal((4, 6))
    check_gradients(model, x, rng, atol=1e-6)
    assert len(model.parameters()) == 6


def test_l1_batch_norm_running_statistics_and_eval(rng):
    m = nn.L1BatchNorm(3, momentum=1.0, dtype=np.float64)
    x = rng.standard_normal((10, 3)) * [1, 2, 3] + [0, 5, -5]
    y_train = m.forward(x)
    np.testing.assert_allclose(m.running_mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m.running_mad, np.abs(x - x.mean(0)).mean(0), rtol=1e-12)
    m.eval()
    np.testing.assert_allclose(m.forward(x), y_train, rtol=1e-9, atol=1e-9)
    with pytest.raises(RuntimeError):
        m.backward(np.ones((10, 3)))
    half = nn.L1BatchNorm(3, momentum=0.5, dtype=np.float64)
    half.forward(x)
    np.testing.assert_allclose(half.running_mean, 0.5 * x.mean(0), rtol=1e-12)


def test_sgd_momentum_matches_formula():
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = nn.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.array([0.5, 1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.05, -2.0 - 0.1])
    p.grad = np.array([0.5, 1.0])
    opt.step()  # v = 0.9 * g + g
    np.testing.assert_allclose(p.data, [0.95 - 0.1 * 0.95, -2.1 - 0.1 * 1.9])


def test_adam_first_steps_match_formula():
    p = nn.Parameter(np.array([1.0, -1.0]))
    opt = nn.Adam([p], lr=0.01)
    p.grad = np.array([2.0, -0.5])
    opt.step()  # bias-corrected first step moves each weight by lr * sign(g)
    np.testing.assert_allclose(p.data, [0.99, -0.99], rtol=1e-6)
    opt.zero_grad()
    assert np.all(p.grad == 0)


@pytest.mark.isa_independent
@pytest.mark.parametrize("opt_cls,kw", [(nn.SGD, {"lr": 0.1, "momentum": 0.9}), (nn.Adam, {"lr": 0.05})])
def test_optimizers_minimize_a_quadratic(opt_cls, kw):
    p = nn.Parameter(np.array([3.0, -4.0]))
    opt = opt_cls([p], **kw)
    for _ in range(300):
        p.grad = 2 * p.data
        opt.step()
    assert np.abs(p.data).max() < 1e-2


@pytest.mark.parametrize("bits", [8, 6, 4])
def test_quantized_linear_forward_is_close_to_float(bits, rng):
    fl = nn.Linear(32, 16, rng=5)
    q = nn.Linear(32, 16, bits=bits, rng=5)
    np.testing.assert_array_equal(fl.weight.data, q.weight.data)
    x = rng.standard_normal((64, 32)).astype(np.float32)
    yf, yq = fl.forward(x), q.forward(x)
    rel = np.linalg.norm(yq - yf) / np.linalg.norm(yf)
    assert rel < {8: 0.02, 6: 0.08, 4: 0.35}[bits]
    assert rel > 0  # it really quantizes


def test_quantized_linear_gradients_are_unbiased_estimates(rng):
    q = nn.Linear(16, 8, bits=8, rng=7)
    fl = nn.Linear(16, 8, rng=7)
    x = rng.standard_normal((32, 16)).astype(np.float32)
    g = rng.standard_normal((32, 8)).astype(np.float32)
    fl.forward(x)
    dx_f = fl.backward(g)
    dw_f = fl.weight.grad
    q.forward(x)
    dxs, dws = [], []
    for _ in range(40):
        dxs.append(q.backward(g))
        dws.append(q.weight.grad)
    for est, ref in ((np.mean(dxs, 0), dx_f), (np.mean(dws, 0), dw_f)):
        assert np.linalg.norm(est - ref) / np.linalg.norm(ref) < 0.02
    np.testing.assert_array_equal(q.bias.grad, fl.bias.grad)


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_quantized_linear_in_inference_serves_a_prepacked_weight_with_the_same_output(bits, rng):
    layer = nn.Linear(48, 20, bits=bits, rng=3)
    x = rng.standard_normal((9, 48)).astype(np.float32)
    y_train = layer.forward(x)
    assert layer._packed is None
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), y_train)
    pw = layer._packed[0]
    assert pw.bits == bits and pw.shape == (48, 20)
    np.testing.assert_array_equal(layer.forward(x[:1]), unpacked_forward(layer, x[:1]))
    assert layer._packed[0] is pw  # packed once
    layer.train()
    assert layer._packed is None and layer.weight.data.flags.writeable
    always = nn.Linear(48, 20, bits=bits, rng=3, prepack=True)
    np.testing.assert_array_equal(always.forward(x), y_train)
    assert always._packed is not None
    never = nn.Linear(48, 20, bits=bits, rng=3, prepack=False).eval()
    np.testing.assert_array_equal(never.forward(x), y_train)
    assert never._packed is None


def unpacked_forward(layer, x):
    """The output of a layer like `layer` that quantizes its current weight at this call."""
    ref = nn.Linear(layer.in_features, layer.out_features, bits=layer.bits, rng=0, prepack=False)
    ref.weight.data, ref.bias.data = layer.weight._data.copy(), layer.bias._data.copy()
    return ref.forward(x)


def test_prepacked_linear_never_serves_a_stale_weight(rng):
    x = rng.standard_normal((6, 16)).astype(np.float32)

    def fresh(layer):
        return unpacked_forward(layer, x)

    layer = nn.Linear(16, 8, bits=4, rng=0).eval()
    y0 = layer.forward(x)
    layer.weight.data = layer.weight.data * 2  # assignment
    assert np.array_equal(layer.forward(x), fresh(layer)) and not np.array_equal(layer.forward(x), y0)
    layer.weight.data[0] = 0.5  # an in-place write through the attribute
    np.testing.assert_array_equal(layer.forward(x), fresh(layer))
    y1 = layer.forward(x)
    opt = nn.SGD(layer.parameters(), lr=0.1)  # an optimizer step while the layer is in inference
    layer.weight.grad = np.ones_like(layer.weight.grad)
    opt.step()
    y2 = layer.forward(x)
    np.testing.assert_array_equal(y2, fresh(layer))
    assert not np.array_equal(y2, y1)
    held = layer.weight.data  # a reference taken before packing cannot change the weight unseen
    layer.forward(x)
    with pytest.raises(ValueError, match="read-only"):
        held[0, 0] = 1.0
    old = layer.weight
    layer.weight = nn.Parameter(rng.standard_normal((8, 16)).astype(np.float32))  # a new Parameter
    np.testing.assert_array_equal(layer.forward(x), fresh(layer))
    assert old.data.flags.writeable  # the replaced one is writeable again

    trained = nn.Linear(16, 8, bits=6, rng=1, prepack=True)  # packed while training
    adam = nn.Adam(trained.parameters(), lr=0.05)
    for _ in range(3):
        y = trained.forward(x)
        trained.backward(np.ones_like(y))
        adam.step()
        np.testing.assert_array_equal(trained.forward(x), fresh(trained))


@pytest.mark.isa_independent
def test_layers_reject_bad_arguments():
    with pytest.raises(ValueError, match="bits"):
        nn.Linear(3, 4, bits=5)
    with pytest.raises(ValueError, match="prepack"):
        nn.Linear(3, 4, prepack=True)
    with pytest.raises(TypeError, match="prepack"):
        nn.Linear(3, 4, bits=4, prepack=1)
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 4)
    with pytest.raises(TypeError, match="dtype"):
        nn.Linear(3, 4, dtype=np.int32)
    with pytest.raises(ValueError, match="shape"):
        nn.Linear(3, 4).forward(np.ones((2, 5)))
    with pytest.raises(ValueError, match="momentum"):
        nn.L1BatchNorm(3, momentum=2.0)
    with pytest.raises(ValueError, match="labels"):
        nn.SoftmaxCrossEntropy().forward(np.ones((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="lr"):
        nn.SGD([], lr=0)


@pytest.mark.parametrize("bits", [32, 4])
def test_train_command_learns_digits(bits, tmp_path):
    pytest.importorskip("sklearn")
    from numkern.__main__ import main

    out = tmp_path / "r.json"
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--bits",
                str(bits),
                "--epochs",
                "2",
                "--seed",
                "1",
                "--no-progress",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    import json

    r = json.loads(out.read_text())
    assert r["bits"] == bits and len(r["history"]) == 2
    assert r["final_test_acc"] > 0.8  # chance is 0.1
