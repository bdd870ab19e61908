"""Small, explicit training layers over numkern kernels (no autograd engine).

Every layer has ``forward(x)``, ``backward(grad) -> grad_input`` and ``parameters()`` (a list of
:class:`Parameter` whose ``grad`` the last ``backward`` filled). The integer-training pieces follow
Guo et al., "Towards Accurate and Efficient Sub-8-Bit Integer Training" (2024): ShiftQuant GEMMs in
:class:`Linear` (``bits=4|6|8``) and L1 normalization (:class:`L1LayerNorm`, :class:`L1BatchNorm`), beside
the float :class:`LayerNorm` and :class:`RMSNorm`. :class:`MultiHeadAttention` and
:class:`TransformerBlock` quantize the attention products as well (a small character-level
Transformer trains with them in ``python -m numkern train --model transformer``).
"""

from ._base import Module, Parameter, Sequential
from .layers import L1BatchNorm, L1LayerNorm, LayerNorm, Linear, ReLU, RMSNorm
from .loss import SoftmaxCrossEntropy
from .optim import SGD, Adam
from .transformer import GELU, Embedding, MultiHeadAttention, PositionalEmbedding, TransformerBlock

__all__ = [
    "Adam",
    "Embedding",
    "GELU",
    "L1BatchNorm",
    "L1LayerNorm",
    "LayerNorm",
    "RMSNorm",
    "Linear",
    "Module",
    "MultiHeadAttention",
    "Parameter",
    "PositionalEmbedding",
    "ReLU",
    "SGD",
    "Sequential",
    "SoftmaxCrossEntropy",
    "TransformerBlock",
]
