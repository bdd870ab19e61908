"""ShiftQuant: power-of-two group quantization and an exact int8 GEMM.

Source: Guo et al., "Towards Accurate and Efficient Sub-8-Bit Integer Training", arXiv 2411.10948.
The paper's code is not public; the definition implemented here is numkern's reading of it:

* symmetric values, no zero point: ``q`` in ``[-Q, Q]`` with ``Q = 2**(bits-1) - 1``;
* groups over the channels of one axis: with ``r_c`` the max-abs of channel ``c`` and ``R`` the
  maximum over channels, ``e_c = min(n_groups - 1, floor(log2(R / r_c)))`` (``n_groups - 1`` for an
  all-zero channel) and the channel's scale is ``s_c = (R / Q) * 2**-e_c``. The base scale ``R / Q``
  is rounded to float32; channels are labelled by their exponent ("shift"), never moved;
* ``granularity="block"``: fixed blocks of ``block_size`` elements along ``axis`` take the place of
  channels (one exponent per block, same formula, one base scale for the tensor), in the style of
  OCP MX / GGML Q8_0, so the two can be compared;
* rounding ``"nearest"`` (ties to even) or ``"stochastic"`` (``floor(t) + [u < t - floor(t)]`` with
  ``u`` uniform, so ``E[q * s] = x`` up to the 2**-24 resolution of ``u``).

Because scales differ by powers of two only, groups along the contracted axis of a matmul are
combined by shifting the integers (``q << (n_groups - 1 - e)`` still fits int8 with the default
``n_groups``: ``7 * 2**4 = 112`` and ``31 * 2**2 = 124``), and groups along an output axis by scaling
rows or columns of the int32 product; so :func:`matmul` runs one integer GEMM.
"""

from ._gemm import MAX_K_INT32, int8_matmul
from ._int4 import pack_int4, unpack_int4
from ._matmul import matmul
from ._prepack import PackedWeight, prepack
from ._tensor import DEFAULT_N_GROUPS, ShiftQuantTensor, shiftquant

__all__ = [
    "ShiftQuantTensor",
    "shiftquant",
    "matmul",
    "prepack",
    "PackedWeight",
    "int8_matmul",
    "pack_int4",
    "unpack_int4",
    "DEFAULT_N_GROUPS",
    "MAX_K_INT32",
]

# The public objects report the package as their module (documentation, repr, pickling by name).
for _obj in (ShiftQuantTensor, shiftquant, matmul, prepack, PackedWeight, int8_matmul, pack_int4, unpack_int4):
    _obj.__module__ = __name__
del _obj
