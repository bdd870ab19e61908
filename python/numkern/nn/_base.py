"""Parameter, Module and Sequential: the whole of the layer protocol."""

from __future__ import annotations

import numpy as np


class Parameter:
    """A trainable array and the gradient the last backward pass left for it.

    ``version`` counts the changes a layer's packed copy of ``data`` must follow (a quantized
    :class:`Linear` in inference keeps its weight prepacked): assigning ``data``, which the
    optimizers' in-place updates ``p.data -= ...`` do too, and reading ``data`` while such a copy
    exists, since the caller may write through the array it gets. Meanwhile the array is
    read-only, so an older reference cannot change it unseen; reading or assigning ``data`` gives
    it back writeable.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> p = nn.Parameter(np.zeros(3, dtype=np.float32))
    >>> print(p.data, p.grad, p.version)
    [0. 0. 0.] [0. 0. 0.] 0
    >>> p.data = np.ones(3, dtype=np.float32)
    >>> p.version
    1
    """

    def __init__(self, data: np.ndarray, name: str = "") -> None:
        self._data = data
        self._version = 0
        self._pinned = False  # a layer holds a packed copy of this version of the data
        self._made_read_only = False  # ... and made the array read-only for it
        self.grad = np.zeros_like(data)
        self.name = name

    @property
    def data(self) -> np.ndarray:
        self._unpin()
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        self._unpin()
        self._data = value
        self._version += 1

    @property
    def version(self) -> int:
        return self._version

    def _pin(self) -> tuple[np.ndarray, int]:
        """For a layer that packs a copy: the array, read-only until the copy may be stale, and
        the version the copy is of."""
        if not self._pinned:
            self._pinned = True
            self._made_read_only = isinstance(self._data, np.ndarray) and self._data.flags.writeable
            if self._made_read_only:
                self._data.flags.writeable = False
        return self._data, self._version

    def _unpin(self) -> None:
        """Packed copies of the data may go stale from here on: a new version."""
        if self._pinned:
            if self._made_read_only:
                self._data.flags.writeable = True
            self._pinned = self._made_read_only = False
            self._version += 1

    def __repr__(self):
        return f"Parameter({self.name or '?'}, shape={self._data.shape}, dtype={self._data.dtype})"


class Module:
    """Base layer: ``forward`` caches what ``backward`` needs; ``training`` selects batch
    statistics (True) or running statistics (False) where a layer has them.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> layer = nn.Linear(4, 2, rng=0)
    >>> isinstance(layer, nn.Module), [p.data.shape for p in layer.parameters()]
    (True, [(2, 4), (2,)])
    >>> _ = layer.eval()
    >>> layer.training
    False
    """

    training = True

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return []

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)


class Sequential(Module):
    """Layers applied in order; backward runs them in reverse.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 2, rng=1))
    >>> y = model.forward(np.ones((3, 4), dtype=np.float32))
    >>> y.shape
    (3, 2)
    >>> model.backward(np.ones_like(y)).shape
    (3, 4)
    """

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def train(self, mode: bool = True) -> Sequential:
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self
