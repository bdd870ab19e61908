"""numkern: hand-written AVX2/AVX-512 kernels for ML numerics from recent papers, NumPy-first.

The public API is re-exported here; see the submodules for details.
"""

from ._runtime import cpu_info, get_isa, get_num_threads, set_isa, set_num_threads, use_isa
from .norm import l1_norm, l1_norm_backward, l1_norm_int8, layer_norm, layer_norm_backward
from . import quant
from .quant import ShiftQuantTensor, int8_matmul, shiftquant
from .softmax import log_softmax, softmax
from .dp import distance_sum, kernel_sum
from . import dp

__version__ = "0.1.0"

__all__ = [
    "ShiftQuantTensor",
    "cpu_info",
    "distance_sum",
    "dp",
    "get_isa",
    "get_num_threads",
    "l1_norm",
    "l1_norm_backward",
    "l1_norm_int8",
    "layer_norm",
    "layer_norm_backward",
    "int8_matmul",
    "kernel_sum",
    "log_softmax",
    "set_isa",
    "quant",
    "set_num_threads",
    "shiftquant",
    "softmax",
    "use_isa",
]
