"""Embedding, learned positional embedding, GELU, multi-head attention and the pre-norm Transformer
block, with the ShiftQuant GEMMs of :class:`~numkern.nn.Linear` for every product when ``bits`` is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._validate import check_int, generator
from ..quant import shiftquant
from ..softmax import softmax, softmax_backward
from ._base import Module, Parameter
from .layers import _BITS, L1LayerNorm, LayerNorm, Linear, ReLU, _float_dtype

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from .._validate import RngLike


class _Composite(Module):
    """A module made of named sub-modules: parameters and train/eval mode follow the children."""

    def _children(self) -> list[Module]:  # pragma: no cover - interface
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return [p for m in self._children() for p in m.parameters()]

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        for m in self._children():
            m.train(mode)
        return self


class Embedding(Module):
    """A lookup table: ``forward(ids)`` returns ``weight[ids]``, one row of ``dim`` per token id.

    ``ids`` is an integer array of any shape, the output has a last axis of ``dim``. ``backward``
    sums the output gradient into the rows that were read (``weight.grad``) and returns zeros of the
    ids' shape: integer ids have no gradient. Initialization: ``N(0, std**2)`` (``std=1``, PyTorch's
    default).

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> emb = nn.Embedding(5, 3, rng=0)
    >>> ids = np.array([[0, 4, 4]])
    >>> y = emb.forward(ids)
    >>> print(y.shape, np.array_equal(y[0, 1], emb.weight.data[4]))
    (1, 3, 3) True
    >>> _ = emb.backward(np.ones_like(y))
    >>> print(emb.weight.grad[:, 0])                 # row 4 was read twice, rows 1-3 never
    [1. 0. 0. 0. 2.]
    """

    def __init__(
        self, num_embeddings: int, dim: int, *, std: float = 1.0, rng: RngLike = None, dtype: DTypeLike = np.float32
    ) -> None:
        self.num_embeddings = check_int(num_embeddings, "num_embeddings", 1)
        self.dim = check_int(dim, "dim", 1)
        if not std >= 0:
            raise ValueError(f"std must be >= 0, got {std}")
        dt = _float_dtype(dtype)
        self.weight = Parameter(
            (generator(rng).standard_normal((self.num_embeddings, self.dim)) * std).astype(dt), "weight"
        )

    def forward(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding expects integer ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(f"ids must be in [0, {self.num_embeddings})")
        self._ids = ids
        return self.weight._data[ids]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        g = np.asarray(grad, dtype=self.weight._data.dtype).reshape(-1, self.dim)
        dw = np.zeros_like(self.weight._data)
        np.add.at(dw, self._ids.reshape(-1), g)
        self.weight.grad = dw
        return np.zeros(self._ids.shape, dtype=dw.dtype)

    def parameters(self) -> list[Parameter]:
        return [self.weight]


class PositionalEmbedding(Module):
    """A learned positional embedding: ``forward(x)`` adds ``weight[t]`` to position ``t`` of ``x``.

    ``x`` has shape ``(..., T, dim)`` with ``T <= max_len``; the gradient passes through unchanged
    and ``weight.grad[:T]`` is its sum over the leading axes. Initialization ``N(0, std**2)``.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> pos = nn.PositionalEmbedding(8, 4, rng=0)
    >>> x = np.zeros((2, 3, 4), dtype=np.float32)
    >>> y = pos.forward(x)
    >>> print(np.array_equal(y[1], pos.weight.data[:3]))
    True
    >>> _ = pos.backward(np.ones_like(y))
    >>> print(pos.weight.grad[:, 0])                 # two sequences of three positions
    [2. 2. 2. 0. 0. 0. 0. 0.]
    """

    def __init__(
        self, max_len: int, dim: int, *, std: float = 0.02, rng: RngLike = None, dtype: DTypeLike = np.float32
    ) -> None:
        self.max_len = check_int(max_len, "max_len", 1)
        self.dim = check_int(dim, "dim", 1)
        if not std >= 0:
            raise ValueError(f"std must be >= 0, got {std}")
        dt = _float_dtype(dtype)
        self.weight = Parameter((generator(rng).standard_normal((self.max_len, self.dim)) * std).astype(dt), "weight")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 2 or x.shape[-1] != self.dim or x.shape[-2] > self.max_len:
            raise ValueError(f"PositionalEmbedding expects (..., T <= {self.max_len}, {self.dim}), got {x.shape}")
        self._t = x.shape[-2]
        return x + self.weight._data[: self._t]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        g = np.asarray(grad)
        dw = np.zeros_like(self.weight._data)
        dw[: self._t] = g.reshape(-1, self._t, self.dim).sum(axis=0)
        self.weight.grad = dw
        return g

    def parameters(self) -> list[Parameter]:
        return [self.weight]


_GELU_C = np.sqrt(2.0 / np.pi)


class GELU(Module):
    """GELU in its tanh form, ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))`` (GPT-2's; within
    about 1e-3 of the exact ``x Phi(x)``, and NumPy has no ``erf`` for the exact one).

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> act = nn.GELU()
    >>> print(act.forward(np.array([-3.0, 0.0, 1.0, 3.0])).round(4))
    [-0.0036  0.      0.8412  2.9964]
    >>> print(act.backward(np.ones(4)).round(4))
    [-0.0116  0.5     1.083   1.0116]
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self._x = x
        self._t = np.tanh(_GELU_C * (x + 0.044715 * x**3)).astype(x.dtype, copy=False)
        return (0.5 * x * (1 + self._t)).astype(x.dtype, copy=False)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        x, t = self._x, self._t
        d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _GELU_C * (1 + 3 * 0.044715 * x * x)
        return (np.asarray(grad) * d).astype(np.result_type(grad, x), copy=False)


# Attention products with ShiftQuant operands. An operand is kept as (v, s): x ~ v * s with
# v = q * 2**-e (the integers with their channel exponents, in float32) and s the base scale. |q| <<
# (n_groups - 1 - e) <= 127 for every bit width, so every product of two v's is an integer multiple
# of 2**-(2 * (n_groups - 1)) of magnitude <= 127**2, and a sum of K of them is exact in float32
# while K * 127**2 < 2**24: the float GEMM of the v's is then the exact integer GEMM, and scaling by
# s_a * s_b in float64 and rounding once to float32 gives numkern.quant.matmul's result bit for bit
# (its integer GEMM takes 2-D right operands; the per-head products here are batched).
_EXACT_K_FLOAT32 = (1 << 24) // (127 * 127)


def _quantize(x: np.ndarray, bits: int, rounding: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(v, s) of ShiftQuant(x) with channel groups along the last axis."""
    t = shiftquant(x, bits, axis=-1, rounding=rounding, rng=rng)
    pow2 = np.ldexp(np.float32(1.0), -t.shift.astype(np.int32)).astype(np.float32)
    return t.qdata.astype(np.float32) * pow2, float(t.base_scale)


def _bmm(a: np.ndarray, sa: float, b: np.ndarray, sb: float, scale: float) -> np.ndarray:
    """``(a * sa) @ (b * sb) * scale`` for (v, s) operands (float32 out; float64 sums for long K)."""
    if a.shape[-1] > _EXACT_K_FLOAT32:
        a, b = a.astype(np.float64), b.astype(np.float64)
    return (np.matmul(a, b).astype(np.float64) * (sa * sb * scale)).astype(np.float32)


class MultiHeadAttention(_Composite):
    """Multi-head scaled dot-product self-attention on ``(batch, T, dim)``.

    ``Q, K, V = x Wq, x Wk, x Wv`` (each a :class:`Linear`), split into ``heads`` heads of
    ``dim // heads``; per head ``P = softmax(Q K^T / sqrt(dim / heads))`` through
    :func:`numkern.softmax` with ``where=`` the causal mask (position ``i`` attends to ``j <= i``)
    when ``causal``; ``O = P V``, heads concatenated, then the output :class:`Linear`. The backward
    pass uses :func:`numkern.softmax_backward` with the same mask.

    With ``bits`` in {4, 6, 8}, the four projections are ShiftQuant :class:`Linear` layers and the
    two attention products are quantized as the paper quantizes every GEMM: forward ``Q(Q) Q(K)^T``
    and ``Q(P) Q(V)``, backward ``dP = Q_s(dO) Q(V)^T``, ``dV = Q(P)^T Q_s(dO)``,
    ``dQ = Q_s(dS) Q(K)``, ``dK = Q_s(dS)^T Q(Q)`` (``Q`` round-to-nearest, ``Q_s`` stochastic, the
    forward operands quantized once and reused). Channel groups lie along the last axis: features
    for ``Q``, ``K``, ``V`` and ``dO`` (before the split into heads), keys for ``P`` and ``dS``; each
    tensor has one base scale for the whole batch. The products are the exact integer GEMMs, carried
    out in float32 over the integers with their power-of-two channel exponents (exact while the
    contracted length is at most 1040, float64 beyond) and scaled once: equal to
    :func:`numkern.quant.matmul` on each head, bit for bit. The softmax, its backward and the
    ``1 / sqrt(d)`` scaling stay in float.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> attn = nn.MultiHeadAttention(16, 4, rng=0)
    >>> x = np.random.default_rng(1).standard_normal((2, 5, 16)).astype(np.float32)
    >>> y = attn.forward(x)
    >>> y.shape
    (2, 5, 16)
    >>> x2 = x.copy()
    >>> x2[:, 3:] = 0                                  # a causal model: the future does not matter
    >>> print(np.allclose(attn.forward(x2)[:, :3], y[:, :3], atol=1e-6))
    True
    >>> attn.backward(np.ones_like(y)).shape, len(attn.parameters())
    ((2, 5, 16), 8)
    >>> q6 = nn.MultiHeadAttention(16, 4, bits=6, rng=0)   # ShiftQuant projections and products
    >>> print(bool(np.linalg.norm(q6.forward(x) - y) < 0.2 * np.linalg.norm(y)))
    True
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        causal: bool = True,
        bits: int | None = None,
        rng: RngLike = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        self.dim = check_int(dim, "dim", 1)
        self.heads = check_int(heads, "heads", 1)
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        if bits not in _BITS:
            raise ValueError(f"bits must be None, 4, 6 or 8, got {bits!r}")
        if not isinstance(causal, (bool, np.bool_)):
            raise TypeError(f"causal must be True or False, got {causal!r}")
        self.causal = bool(causal)
        self.bits = bits
        self.dtype = _float_dtype(dtype)
        self.rng = generator(rng)
        self.head_dim = self.dim // self.heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            Linear(self.dim, self.dim, bits=bits, rng=self.rng, dtype=self.dtype) for _ in range(4)
        )

    def _children(self) -> list[Module]:
        return [self.q_proj, self.k_proj, self.v_proj, self.out_proj]

    def _heads(self, x: np.ndarray) -> np.ndarray:
        """(B, T, dim) -> (B, heads, T, head_dim), contiguous."""
        b, t, _ = x.shape
        return np.ascontiguousarray(x.reshape(b, t, self.heads, self.head_dim).transpose(0, 2, 1, 3))

    def _merge(self, x: np.ndarray) -> np.ndarray:
        """(B, heads, T, head_dim) -> (B * T, dim)."""
        b, _, t, _ = x.shape
        return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(b * t, self.dim)

    def _operand(self, x: np.ndarray, rounding: str) -> tuple[np.ndarray, float]:
        if self.bits is None:
            return x, 1.0
        return _quantize(x, self.bits, rounding, self.rng)

    def _mm(self, a: tuple[np.ndarray, float], b: tuple[np.ndarray, float], scale: float = 1.0) -> np.ndarray:
        if self.bits is None:
            y = np.matmul(a[0], b[0])
            return y * scale if scale != 1.0 else y
        return _bmm(a[0], a[1], b[0], b[1], scale).astype(self.dtype, copy=False)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"MultiHeadAttention expects (batch, T, {self.dim}), got {x.shape}")
        b, t, _ = x.shape
        x2 = x.reshape(b * t, self.dim)
        q, k, v = (self._operand(p.forward(x2).reshape(b, t, self.dim), "nearest") for p in self._children()[:3])
        q, k, v = ((self._heads(a), s) for a, s in (q, k, v))
        mask = np.tri(t, dtype=bool) if self.causal else None
        scores = self._mm(q, (k[0].swapaxes(-1, -2), k[1]), 1.0 / np.sqrt(self.head_dim))
        p = softmax(scores, axis=-1, where=mask)
        pq = self._operand(p, "nearest")
        o = self._mm(pq, v)
        self._cache = (b, t, mask, q, k, v, p, pq)
        return self.out_proj.forward(self._merge(o)).reshape(b, t, self.dim)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        b, t, mask, q, k, v, p, pq = self._cache
        g = np.asarray(grad, dtype=self.dtype).reshape(b * t, self.dim)
        do = self.out_proj.backward(g).reshape(b, t, self.dim)
        doq = self._operand(do, "stochastic")
        doq = (self._heads(doq[0]), doq[1])
        dp = self._mm(doq, (v[0].swapaxes(-1, -2), v[1]))
        dv = self._mm((pq[0].swapaxes(-1, -2), pq[1]), doq)
        ds = softmax_backward(p, dp, axis=-1, where=mask)
        dsq = self._operand(ds, "stochastic")
        scale = 1.0 / np.sqrt(self.head_dim)
        dq = self._mm(dsq, k, scale)
        dk = self._mm((dsq[0].swapaxes(-1, -2), dsq[1]), q, scale)
        dx = self.q_proj.backward(self._merge(dq))
        dx += self.k_proj.backward(self._merge(dk))
        dx += self.v_proj.backward(self._merge(dv))
        return dx.reshape(b, t, self.dim)


_NORMS = {"l1": L1LayerNorm, "l2": LayerNorm}
_ACTIVATIONS = {"relu": ReLU, "gelu": GELU}


class TransformerBlock(_Composite):
    """A pre-norm Transformer block on ``(batch, T, dim)``:
    ``h = x + attn(norm1(x))``, ``y = h + W2 act(W1 norm2(h))``.

    ``norm`` is ``"l1"`` (:class:`L1LayerNorm`, the paper's L1 normalization) or ``"l2"``
    (:class:`LayerNorm`); ``activation`` is ``"relu"`` or ``"gelu"``; the MLP is
    ``dim -> mlp_ratio * dim -> dim``. ``bits`` quantizes every GEMM of the block (the attention's
    projections and products and both MLP layers, :class:`MultiHeadAttention` and :class:`Linear`);
    the norms, the activation and the residual additions stay in float.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> block = nn.TransformerBlock(16, 2, norm="l1", bits=6, rng=0)
    >>> x = np.random.default_rng(1).standard_normal((3, 8, 16)).astype(np.float32)
    >>> y = block.forward(x)
    >>> y.shape, block.backward(np.ones_like(y)).shape
    ((3, 8, 16), (3, 8, 16))
    >>> len(block.parameters())                  # 2 norms x 2, 4 projections x 2, 2 MLP layers x 2
    16
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        norm: str = "l1",
        activation: str = "relu",
        mlp_ratio: int = 4,
        causal: bool = True,
        bits: int | None = None,
        eps: float = 1e-5,
        rng: RngLike = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        if norm not in _NORMS:
            raise ValueError(f"norm must be 'l1' or 'l2', got {norm!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
        self.dim = check_int(dim, "dim", 1)
        hidden = check_int(mlp_ratio, "mlp_ratio", 1) * self.dim
        rng = generator(rng)
        self.norm1 = _NORMS[norm](self.dim, eps=eps, dtype=dtype)
        self.attn = MultiHeadAttention(self.dim, heads, causal=causal, bits=bits, rng=rng, dtype=dtype)
        self.norm2 = _NORMS[norm](self.dim, eps=eps, dtype=dtype)
        self.fc1 = Linear(self.dim, hidden, bits=bits, rng=rng, dtype=dtype)
        self.act = _ACTIVATIONS[activation]()
        self.fc2 = Linear(hidden, self.dim, bits=bits, rng=rng, dtype=dtype)

    def _children(self) -> list[Module]:
        return [self.norm1, self.attn, self.norm2, self.fc1, self.act, self.fc2]

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"TransformerBlock expects (batch, T, {self.dim}), got {x.shape}")
        h = x + self.attn.forward(self.norm1.forward(x))
        z = self.norm2.forward(h).reshape(-1, self.dim)
        return h + self.fc2.forward(self.act.forward(self.fc1.forward(z))).reshape(h.shape)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        g = np.asarray(grad)
        gz = self.fc1.backward(self.act.backward(self.fc2.backward(g.reshape(-1, self.dim))))
        gh = g + self.norm2.backward(gz.reshape(g.shape))
        return gh + self.norm1.backward(self.attn.backward(gh))
