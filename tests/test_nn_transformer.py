"""numkern.nn Transformer layers: float64 finite-difference gradient checks (embedding, positional
embedding, GELU, multi-head attention, the pre-norm block), the causal mask, the quantized attention
products against numkern.quant.matmul, and argument errors."""

import numpy as np
import pytest
from test_nn import check_gradients, randomize

import numkern.nn as nn
from numkern import quant
from numkern.nn.transformer import _bmm, _quantize


def test_embedding_gradients(rng):
    emb = nn.Embedding(6, 4, rng=0, dtype=np.float64)
    ids = np.array([[0, 5, 5, 2], [2, 2, 1, 0]])
    y = emb.forward(ids)
    g = rng.standard_normal(y.shape)
    dx = emb.backward(g)
    assert dx.shape == ids.shape and not dx.any()  # integer ids have no gradient
    num = np.zeros_like(emb.weight.data)
    w = emb.weight.data
    for idx in np.ndindex(w.shape):
        old = w[idx]
        w[idx] = old + 1e-6
        up = (emb.forward(ids) * g).sum()
        w[idx] = old - 1e-6
        down = (emb.forward(ids) * g).sum()
        w[idx] = old
        num[idx] = (up - down) / 2e-6
    np.testing.assert_allclose(emb.weight.grad, num, rtol=1e-6, atol=1e-8)


def test_positional_embedding_gradients(rng):
    pos = nn.PositionalEmbedding(7, 3, rng=0, dtype=np.float64)
    randomize(pos, rng)
    check_gradients(pos, rng.standard_normal((2, 5, 3)), rng)
    assert not pos.weight.grad[5:].any()


def test_gelu_gradients(rng):
    check_gradients(nn.GELU(), rng.standard_normal((4, 5)) * 2, rng)


@pytest.mark.parametrize("causal", [True, False])
def test_multi_head_attention_gradients(causal, rng):
    attn = nn.MultiHeadAttention(8, 2, causal=causal, rng=1, dtype=np.float64)
    check_gradients(attn, rng.standard_normal((2, 5, 8)), rng, atol=1e-6)
    assert len(attn.parameters()) == 8


@pytest.mark.parametrize("norm", ["l1", "l2"])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_block_gradients(norm, activation, rng):
    block = nn.TransformerBlock(8, 2, norm=norm, activation=activation, mlp_ratio=2, rng=2, dtype=np.float64)
    for m in (block.norm1, block.norm2):
        randomize(m, rng)
    x = rng.standard_normal((2, 4, 8))
    if activation == "relu":  # keep the MLP's pre-activations away from the kink
        block.forward(x)
        h = block.norm2._x
        assert np.abs(block.fc1.forward(block.norm2.forward(h).reshape(-1, 8))).min() > 1e-4
    check_gradients(block, x, rng, rtol=1e-5, atol=1e-6)


def test_causal_attention_ignores_the_future(rng):
    attn = nn.MultiHeadAttention(8, 4, rng=0, dtype=np.float64)
    x = rng.standard_normal((3, 6, 8))
    y = attn.forward(x)
    x2 = x.copy()
    x2[:, 4:] = rng.standard_normal((3, 2, 8))
    np.testing.assert_allclose(attn.forward(x2)[:, :4], y[:, :4], rtol=1e-12, atol=1e-12)
    attn.forward(x)
    g = np.zeros_like(y)
    g[:, :4] = rng.standard_normal((3, 4, 8))
    assert not attn.backward(g)[:, 4:].any()  # no gradient flows to later positions


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_quantized_attention_product_is_quant_matmul(bits, rng):
    q = rng.standard_normal((1, 1, 12, 8)).astype(np.float32)  # one sequence, one head
    k = rng.standard_normal((1, 1, 12, 8)).astype(np.float32) * [1, 1, 4, 1, 0.1, 1, 1, 1]
    qv, qs = _quantize(q, bits, "nearest", np.random.default_rng(0))
    kv, ks = _quantize(k, bits, "nearest", np.random.default_rng(0))
    got = _bmm(qv, qs, kv.swapaxes(-1, -2), ks, 1.0)[0, 0]
    # the same operands for numkern.quant.matmul: groups along the features (K) of both
    ref = quant.matmul(quant.shiftquant(q[0, 0], bits, axis=-1), quant.shiftquant(k[0, 0].T, bits, axis=0))
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("bits", [8, 6, 4])
def test_quantized_block_is_close_to_float_and_trains(bits, rng):
    x = rng.standard_normal((4, 16, 32)).astype(np.float32)
    fl = nn.TransformerBlock(32, 4, rng=3)
    qb = nn.TransformerBlock(32, 4, bits=bits, rng=3)
    yf, yq = fl.forward(x), qb.forward(x)
    rel = np.linalg.norm(yq - yf) / np.linalg.norm(yf - x)
    assert 0 < rel < {8: 0.05, 6: 0.15, 4: 0.6}[bits]
    g = rng.standard_normal(yf.shape).astype(np.float32)
    fl.backward(g)
    dxs = [qb.backward(g) for _ in range(8)]
    dx_f = fl.backward(g)
    err = np.linalg.norm(np.mean(dxs, 0) - dx_f) / np.linalg.norm(dx_f)
    assert err < {8: 0.05, 6: 0.15, 4: 0.6}[bits]
    assert all(p.grad.dtype == np.float32 for p in qb.parameters())


def test_train_and_eval_reach_every_layer():
    block = nn.TransformerBlock(8, 2, bits=4, rng=0)
    block.eval()
    assert not block.attn.q_proj.training and not block.fc2.training
    block.train()
    assert block.attn.out_proj.training


def test_transformer_layers_reject_bad_arguments():
    with pytest.raises(ValueError, match="multiple"):
        nn.MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="bits"):
        nn.MultiHeadAttention(8, 2, bits=5)
    with pytest.raises(TypeError, match="causal"):
        nn.MultiHeadAttention(8, 2, causal=1)
    with pytest.raises(ValueError, match="batch, T"):
        nn.MultiHeadAttention(8, 2).forward(np.ones((4, 8)))
    with pytest.raises(ValueError, match="norm"):
        nn.TransformerBlock(8, 2, norm="rms")
    with pytest.raises(ValueError, match="activation"):
        nn.TransformerBlock(8, 2, activation="tanh")
    with pytest.raises(TypeError, match="integer ids"):
        nn.Embedding(4, 2).forward(np.ones(3))
    with pytest.raises(ValueError, match="ids"):
        nn.Embedding(4, 2).forward(np.array([4]))
    with pytest.raises(ValueError, match="T <="):
        nn.PositionalEmbedding(3, 2).forward(np.ones((4, 2)))
    with pytest.raises(TypeError, match="dim"):
        nn.Embedding(4, 2.0)
