// AVX2 level of the quant family: the int16-pair GEMM (quant_gemm_avx2.inl) and the quantizer.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "common/simd_avx2.h"
#include "quant/quant.h"

namespace numkern::quant {
namespace {

#include "quant/quant_gemm_pack.inl"
#include "quant/quant_gemm_avx2.inl"
#include "quant/quant_kernels.inl"

}  // namespace

extern const GemmKernels kernels_avx2_gemm = {
    "s8gemm_avx2_6x16", MR, NR, KU, 2, 2, false, 1024, pack_a, pack_b, ukernel};
extern const QuantKernels kernels_avx2_quant = quant_table("shiftquant_avx2");

}  // namespace numkern::quant
