"""numkern: hand-written AVX2/AVX-512 kernels for ML numerics from recent papers, NumPy-first.

The public API is re-exported here; see the submodules for details.
"""

from ._runtime import cpu_info, get_isa, get_num_threads, set_isa, set_num_threads, use_isa
from . import sketch
from .linalg import LstsqResult, lstsq
from .sketch import fwht
from .softmax import log_softmax, softmax

__version__ = "0.1.0"

__all__ = [
    "LstsqResult",
    "cpu_info",
    "fwht",
    "get_isa",
    "get_num_threads",
    "log_softmax",
    "lstsq",
    "set_isa",
    "set_num_threads",
    "sketch",
    "softmax",
    "use_isa",
]
