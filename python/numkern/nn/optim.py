"""SGD with momentum and Adam over Parameter lists."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._base import Parameter


class _Optimizer:
    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params = list(params)
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.lr = float(lr)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = np.zeros_like(p.data)


class SGD(_Optimizer):
    """``v = momentum * v + (grad + weight_decay * w)``; ``w -= lr * v`` (PyTorch's form).

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> p = nn.Parameter(np.array([1.0, -1.0]))
    >>> opt = nn.SGD([p], lr=0.1)
    >>> p.grad = np.array([1.0, 1.0])
    >>> opt.step()
    >>> print(p.data)
    [ 0.9 -1.1]
    """

    def __init__(
        self, params: Iterable[Parameter], lr: float = 0.01, *, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        super().__init__(params, lr)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self._v = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        for p, v in zip(self.params, self._v):
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                v *= self.momentum
                v += g
                g = v
            p.data -= (self.lr * g).astype(p.data.dtype, copy=False)


class Adam(_Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; ``weight_decay`` is decoupled (AdamW).

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> p = nn.Parameter(np.array([1.0, -1.0]))
    >>> opt = nn.Adam([p], lr=0.1)
    >>> p.grad = np.array([1.0, -1.0])
    >>> opt.step()
    >>> print(p.data.round(4))
    [ 0.9 -0.9]
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.b1, self.b2 = map(float, betas)
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self._m = [np.zeros_like(p.data) for p in self.params]
        self._v = [np.zeros_like(p.data) for p in self.params]
        self._t = 0

    def step(self) -> None:
        self._t += 1
        c1, c2 = 1 - self.b1**self._t, 1 - self.b2**self._t
        for p, m, v in zip(self.params, self._m, self._v):
            g = p.grad
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            upd = self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)
            if self.weight_decay:
                upd = upd + self.lr * self.weight_decay * p.data
            p.data -= upd.astype(p.data.dtype, copy=False)
