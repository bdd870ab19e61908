"""Softmax cross-entropy on numkern.log_softmax."""

from __future__ import annotations

import numpy as np

from ..softmax import log_softmax


class SoftmaxCrossEntropy:
    """Mean cross-entropy of integer labels under ``softmax(logits)``.

    ``forward(logits, labels) -> float`` computes ``-mean(log_softmax(logits)[i, labels[i]])``
    with :func:`numkern.log_softmax`; ``backward(grad=1.0)`` returns
    ``grad * (softmax(logits) - onehot(labels)) / batch``.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import nn
    >>> loss_fn = nn.SoftmaxCrossEntropy()
    >>> logits = np.array([[2.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    >>> print(round(float(loss_fn.forward(logits, np.array([0, 1]))), 4))
    0.1269
    >>> print(loss_fn.backward().round(4))
    [[-0.0596  0.0596]
     [ 0.0596 -0.0596]]
    """

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        logits = np.asarray(logits)
        labels = np.asarray(labels)
        if logits.ndim != 2 or labels.shape != (logits.shape[0],):
            raise ValueError(
                f"expected logits (batch, classes) and labels (batch,), got {logits.shape} and {labels.shape}"
            )
        if labels.dtype.kind not in "iu" or (labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1])):
            raise ValueError(f"labels must be integers in [0, {logits.shape[1]})")
        self._logp = log_softmax(logits, axis=-1)
        self._labels = labels
        return float(-self._logp[np.arange(labels.size), labels].mean())

    __call__ = forward

    def backward(self, grad: float = 1.0) -> np.ndarray:
        p = np.exp(self._logp)
        p[np.arange(self._labels.size), self._labels] -= 1.0
        return p * (grad / self._labels.size)
