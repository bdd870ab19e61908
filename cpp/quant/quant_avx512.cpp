// Quantizer kernels for AVX-512 (F/BW/DQ/VL). The AVX-512 GEMM lives in quant_avx512vnni.cpp.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "common/simd_avx512.h"
#include "quant/quant.h"

namespace numkern::quant {
namespace {

#include "quant/quant_kernels.inl"

}  // namespace

extern const QuantKernels kernels_avx512_quant = quant_table("shiftquant_avx512");

}  // namespace numkern::quant
