"""Linear (float or ShiftQuant), ReLU, and the normalization layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import norm as _norm
from .._validate import check_int, generator
from ..quant import prepack as _prepack
from ._base import Module, Parameter
from ._quant import qmatmul, qmatmul_packed

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from .._validate import RngLike
    from ..quant import PackedWeight

_BITS = (None, 4, 6, 8)


def _float_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _check_2d(x, features, who):
    if x.ndim != 2 or x.shape[1] != features:
        raise ValueError(f"{who} expects input of shape (batch, {features}), got {x.shape}")


class Linear(Module):
    """``y = x @ W.T + b`` with ``W`` of shape (out_features, in_features).

    With ``bits`` in {4, 6, 8} the three GEMMs run through ShiftQuant (``numkern.quant``):
    forward ``Q(x) @ Q(W).T``, input gradient ``Q_s(g) @ Q(W)``, weight gradient
    ``Q_s(g).T @ Q(x)``, where ``Q`` rounds to nearest and ``Q_s`` rounds stochastically
    (unbiased). Channel groups: input features for ``x``, output features for ``W`` and ``g``
    (the paper's choice of the channel axis, as we read it). The bias and its gradient stay in
    float32. With ``bits=None`` everything is plain float (``dtype``, float32 by default;
    float64 for gradient checks; quantized layers compute in float32 whatever ``dtype`` is).
    Initialization: U(-1/sqrt(in), 1/sqrt(in)) for W and b (PyTorch's default).
    ``grad_bits`` (default: ``bits``) sets the width of the quantized output gradient ``g``
    separately, for ablations.

    Prepacked weight: with ``bits`` set, the forward pass of a layer in inference (``eval()``)
    multiplies by ``Q(W).T`` quantized and packed once (:func:`numkern.quant.prepack`) instead of
    quantizing ``W`` at every call; the output is the same, bit for bit. ``prepack=True`` does so in
    training as well (weights that stay fixed for many steps), ``prepack=False`` never. The packed
    copy follows the weight: it is packed again after any change, an assignment to ``weight.data``
    (the optimizers' updates included) or a read of it (which might be a write); meanwhile the weight
    array is read-only, so a write through an older reference to it raises instead of going unseen
    (a view of it taken before cannot be guarded). ``train()`` drops the copy of a default layer.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> x = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    >>> fp = nn.Linear(8, 4, rng=0)
    >>> q4 = nn.Linear(8, 4, bits=4, rng=0)     # same initial weights, 4-bit ShiftQuant GEMMs
    >>> y, y4 = fp.forward(x), q4.forward(x)
    >>> print(y.shape, bool(np.linalg.norm(y4 - y) < 0.3 * np.linalg.norm(y)))
    (16, 4) True
    >>> gx = q4.backward(np.ones_like(y4))
    >>> gx.shape, q4.weight.grad.shape
    ((16, 8), (4, 8))
    >>> _ = q4.eval()                            # inference: the weight is quantized and packed once
    >>> print(np.array_equal(q4.forward(x), y4))
    True
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bits: int | None = None,
        rng: RngLike = None,
        dtype: DTypeLike = np.float32,
        bias: bool = True,
        grad_bits: int | None = None,
        prepack: bool | None = None,
    ) -> None:
        if bits not in _BITS:
            raise ValueError(f"bits must be None, 4, 6 or 8, got {bits!r}")
        if prepack is not None and not isinstance(prepack, bool):
            raise TypeError(f"prepack must be None, True or False, got {prepack!r}")
        if prepack and bits is None:
            raise ValueError("prepack=True needs bits (a float layer has nothing to prepack)")
        self.prepack = prepack
        if grad_bits not in _BITS or (grad_bits is not None and bits is None):
            raise ValueError(f"grad_bits must be None, 4, 6 or 8 (and needs bits), got {grad_bits!r}")
        self.grad_bits = grad_bits if grad_bits is not None else bits
        self.in_features = check_int(in_features, "in_features", 1)
        self.out_features = check_int(out_features, "out_features", 1)
        self.bits = bits
        self.dtype = _float_dtype(dtype)
        self.rng = generator(rng)
        bound = 1.0 / np.sqrt(self.in_features)
        self.weight = Parameter(
            self.rng.uniform(-bound, bound, (self.out_features, self.in_features)).astype(self.dtype), "weight"
        )
        self.bias = (
            Parameter(self.rng.uniform(-bound, bound, self.out_features).astype(self.dtype), "bias") if bias else None
        )
        self._x: np.ndarray | None = None
        # (PackedWeight of Q(W).T, the Parameter, its version) while in use
        self._packed: tuple[PackedWeight, Parameter, int] | None = None

    def _packed_weight(self) -> PackedWeight:
        """Q(W).T prepacked, packed again if the weight changed since (a new Parameter or version)."""
        assert self.bits is not None  # only quantized layers serve a packed weight
        p = self.weight
        if self._packed is None or self._packed[1] is not p or self._packed[2] != p.version:
            if self._packed is not None and self._packed[1] is not p:
                self._packed[1]._unpin()  # a replaced Parameter gets its array back writeable
            w, version = p._pin()
            self._packed = (_prepack(w.T, self.bits), p, version)
        return self._packed[0]

    def _serves_packed(self) -> bool:
        return self.bits is not None and (self.prepack or (self.prepack is None and not self.training))

    def train(self, mode: bool = True) -> Linear:
        super().train(mode)
        if not self._serves_packed() and self._packed is not None:
            self._packed[1]._unpin()  # the weight writeable again, its packed copy gone
            self._packed = None
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        _check_2d(x, self.in_features, "Linear")
        self._x = x
        # Internal reads take the array itself (weight._data): a read of weight.data would count
        # as a change of the packed weight.
        if self.bits is None:
            y = x @ self.weight._data.T
        elif self._serves_packed():
            y = qmatmul_packed(x, self.bits, self._packed_weight()).astype(self.dtype)
        else:
            b = self.bits
            y = qmatmul(x, -1, "nearest", b, self.weight._data.T, -1, "nearest", b, self.rng).astype(self.dtype)
        if self.bias is not None:
            y += self.bias.data
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        g = np.asarray(grad, dtype=self.dtype)
        x, w = self._x, self.weight._data
        if self.bits is None:
            self.weight.grad = g.T @ x
            dx = g @ w
        else:
            gb, b = self.grad_bits, self.bits
            self.weight.grad = qmatmul(g.T, 0, "stochastic", gb, x, -1, "nearest", b, self.rng).astype(self.dtype)
            dx = qmatmul(g, -1, "stochastic", gb, w, 0, "nearest", b, self.rng).astype(self.dtype)
        if self.bias is not None:
            self.bias.grad = g.sum(axis=0)
        return dx

    def parameters(self) -> list[Parameter]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])


class ReLU(Module):
    """``max(x, 0)``; the backward pass lets the gradient through where the input was positive.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> r = nn.ReLU()
    >>> print(r.forward(np.array([[-1.0, 2.0]])), r.backward(np.array([[5.0, 5.0]])))
    [[0. 2.]] [[0. 5.]]
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return np.where(self._mask, x, 0).astype(x.dtype, copy=False)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return np.where(self._mask, grad, 0).astype(grad.dtype, copy=False)


class _FeatureNorm(Module):
    """Normalization of each sample over its features (the last axis), with an affine map."""

    _has_bias = True

    def _forward(self, x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
        return _norm.l1_norm(x, -1, weight=w, bias=b, eps=self.eps)

    def _backward(self, grad: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return _norm.l1_norm_backward(grad, self._x, -1, weight=w, eps=self.eps)

    def __init__(self, features: int, *, eps: float = 1e-5, affine: bool = True, dtype: DTypeLike = np.float32) -> None:
        self.features = check_int(features, "features", 1)
        self.eps = float(eps)
        dt = _float_dtype(dtype)
        self.weight = Parameter(np.ones(self.features, dt), "weight") if affine else None
        self.bias = Parameter(np.zeros(self.features, dt), "bias") if affine and self._has_bias else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[-1:] != (self.features,):
            raise ValueError(f"{type(self).__name__} expects a last axis of {self.features}, got shape {x.shape}")
        self._x = x
        w = self.weight.data if self.weight is not None else None
        b = self.bias.data if self.bias is not None else None
        return self._forward(x, w, b)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        w = self.weight.data if self.weight is not None else None
        dx, dw, db = self._backward(grad, w)
        if self.weight is not None:
            self.weight.grad = dw.astype(self.weight.data.dtype, copy=False)
        if self.bias is not None and db is not None:
            self.bias.grad = db.astype(self.bias.data.dtype, copy=False)
        return dx

    def parameters(self) -> list[Parameter]:
        return [p for p in (self.weight, self.bias) if p is not None]


class L1LayerNorm(_FeatureNorm):
    """``w * (x - mean) / (mean|x - mean| + eps) + b`` over the features of each sample
    (:func:`numkern.l1_norm` and :func:`numkern.l1_norm_backward`).

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> norm = nn.L1LayerNorm(4, eps=0.0)
    >>> print(norm.forward(np.array([[1.0, 3.0, 5.0, 7.0]], dtype=np.float32)))
    [[-1.5 -0.5  0.5  1.5]]
    """


class LayerNorm(_FeatureNorm):
    """The L2 LayerNorm, ``w * (x - mean) / sqrt(var + eps) + b`` (:func:`numkern.layer_norm`).

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> norm = nn.LayerNorm(4, eps=0.0)
    >>> print(norm.forward(np.array([[1.0, 3.0, 5.0, 7.0]], dtype=np.float32)).round(4))
    [[-1.3416 -0.4472  0.4472  1.3416]]
    """

    def _forward(self, x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
        return _norm.layer_norm(x, -1, weight=w, bias=b, eps=self.eps)

    def _backward(self, grad: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        return _norm.layer_norm_backward(grad, self._x, -1, weight=w, eps=self.eps)


class RMSNorm(_FeatureNorm):
    """RMS normalization, ``w * x / sqrt(mean(x**2) + eps)`` (:func:`numkern.rms_norm`): a weight
    and no bias, as :class:`torch.nn.RMSNorm`.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> norm = nn.RMSNorm(2, eps=0.0)
    >>> print(norm.forward(np.array([[3.0, 4.0]], dtype=np.float32)).round(4))
    [[0.8485 1.1314]]
    >>> [p.name for p in norm.parameters()]
    ['weight']
    """

    _has_bias = False

    def __init__(self, features: int, *, eps: float = 1e-6, affine: bool = True, dtype: DTypeLike = np.float32) -> None:
        super().__init__(features, eps=eps, affine=affine, dtype=dtype)

    def _forward(self, x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
        return _norm.rms_norm(x, -1, weight=w, eps=self.eps)

    def _backward(self, grad: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        dx, dw = _norm.rms_norm_backward(grad, self._x, -1, weight=w, eps=self.eps)
        return dx, dw, None


class L1BatchNorm(Module):
    """L1 batch normalization: each feature normalized over the batch by its mean absolute
    deviation, ``gamma * (x - mean_B) / (mean_B|x - mean_B| + eps) + beta``.

    In training the batch statistics are used and the running ones updated,
    ``running = (1 - momentum) * running + momentum * batch`` (mean and mean absolute
    deviation); in ``eval()`` mode the running statistics are used, as BatchNorm does.
    The kernel work (normalize, backward) runs on the transposed batch so each feature is one
    contiguous slice.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> bn = nn.L1BatchNorm(2, eps=0.0)
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]], dtype=np.float32)
    >>> print(bn.forward(x))
    [[-1. -1.]
     [ 1.  1.]]
    >>> _ = bn.eval()
    >>> bn.forward(x).shape
    (2, 2)
    """

    def __init__(
        self,
        features: int,
        *,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        dtype: DTypeLike = np.float32,
    ) -> None:
        self.features = check_int(features, "features", 1)
        self.eps = float(eps)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        dt = _float_dtype(dtype)
        self.weight = Parameter(np.ones(self.features, dt), "weight") if affine else None
        self.bias = Parameter(np.zeros(self.features, dt), "bias") if affine else None
        self.running_mean = np.zeros(self.features, dt)
        self.running_mad = np.ones(self.features, dt)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        _check_2d(x, self.features, "L1BatchNorm")
        if self.training:
            xt = np.ascontiguousarray(x.T)
            self._xt = xt
            xhat = _norm.l1_norm(xt, -1, eps=self.eps).T
            mean = xt.mean(axis=1)
            mad = np.abs(xt - mean[:, None]).mean(axis=1)
            m = self.momentum
            self.running_mean = ((1 - m) * self.running_mean + m * mean).astype(self.running_mean.dtype)
            self.running_mad = ((1 - m) * self.running_mad + m * mad).astype(self.running_mad.dtype)
        else:
            xhat = (x - self.running_mean) / (self.running_mad + self.eps)
        self._xhat = xhat
        if self.weight is None or self.bias is None:
            return xhat
        return xhat * self.weight.data + self.bias.data

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if not self.training:
            raise RuntimeError("L1BatchNorm.backward needs a forward pass in training mode")
        g = np.asarray(grad)
        if self.weight is not None and self.bias is not None:
            self.weight.grad = (g * self._xhat).sum(axis=0).astype(self.weight.data.dtype)
            self.bias.grad = g.sum(axis=0).astype(self.bias.data.dtype)
            g = g * self.weight.data
        dxt, _, _ = _norm.l1_norm_backward(np.ascontiguousarray(g.T), self._xt, -1, eps=self.eps)
        return dxt.T

    def parameters(self) -> list[Parameter]:
        return [p for p in (self.weight, self.bias) if p is not None]
