"""numkern: hand-written AVX2/AVX-512 kernels for ML numerics from recent papers, NumPy-first.

The public API is re-exported here; see the submodules for details.
"""

from importlib.metadata import PackageNotFoundError, version

from . import dp, quant, sketch
from ._runtime import ISA_LEVELS as ISA_LEVELS
from ._runtime import cpu_info, get_isa, get_num_threads, set_isa, set_num_threads, thread_limit, use_isa
from .dp import distance_sum, kernel_sum
from .linalg import LstsqResult, lstsq
from .norm import (
    l1_norm,
    l1_norm_backward,
    l1_norm_int8,
    layer_norm,
    layer_norm_backward,
    rms_norm,
    rms_norm_backward,
)
from .quant import ShiftQuantTensor, int8_matmul, shiftquant
from .sketch import fwht
from .softmax import log_softmax, log_softmax_backward, softmax, softmax_backward

try:
    # The one version source is pyproject.toml; the installed distribution's metadata carries it.
    __version__: str = version("numkern")
except PackageNotFoundError:  # a source tree on sys.path without an installed distribution
    __version__ = "0+unknown"

__all__ = [
    "cpu_info",
    "distance_sum",
    "dp",
    "fwht",
    "get_isa",
    "get_num_threads",
    "int8_matmul",
    "kernel_sum",
    "l1_norm",
    "l1_norm_backward",
    "l1_norm_int8",
    "layer_norm",
    "layer_norm_backward",
    "log_softmax",
    "log_softmax_backward",
    "lstsq",
    "LstsqResult",
    "quant",
    "rms_norm",
    "rms_norm_backward",
    "set_isa",
    "set_num_threads",
    "shiftquant",
    "ShiftQuantTensor",
    "sketch",
    "softmax",
    "softmax_backward",
    "thread_limit",
    "use_isa",
]
