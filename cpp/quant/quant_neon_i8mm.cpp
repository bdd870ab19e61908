// s8 x s8 -> s32 GEMM with the Armv8.6 int8 matrix multiply (smmla): one smmla multiplies a 2 x 8
// block of A (two rows, eight K) by an 8 x 2 block of B (eight K, two columns) into a 2 x 2 int32
// tile, 32 multiply-adds per instruction against sdot's 16. Exact modulo 2^32 like sdot, so a
// K-block sum is exact for kc < 2^17.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "quant/quant.h"

namespace numkern::quant {
namespace {

constexpr int MR = 8, NR = 8, KU = 8, KQ = 8, GROUP = 2;

#include "quant/quant_gemm_neon_pack.inl"

// acc[i][j] is the 2 x 2 tile of rows 2i, 2i+1 and columns 2j, 2j+1, row-major in its four lanes.
void ukernel(std::int64_t k, const void* ap_, const void* bp_, std::int32_t* c, std::int64_t ldc, int accumulate) {
  const auto* ap = static_cast<const std::int8_t*>(ap_);
  const auto* bp = static_cast<const std::int8_t*>(bp_);
  // Fully unrolled loops keep the 16 accumulators and 8 operands in registers (rolled, GCC keeps
  // acc in memory: a load and a store around every smmla).
  int32x4_t acc[MR / 2][NR / 2];
#pragma GCC unroll 4
  for (int i = 0; i < MR / 2; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NR / 2; ++j) acc[i][j] = vdupq_n_s32(0);
  for (std::int64_t q = 0; q < k / KU; ++q) {
    int8x16_t a[MR / 2], b[NR / 2];
#pragma GCC unroll 4
    for (int i = 0; i < MR / 2; ++i) a[i] = vld1q_s8(ap + q * MR * KU + 16 * i);
#pragma GCC unroll 4
    for (int j = 0; j < NR / 2; ++j) b[j] = vld1q_s8(bp + q * NR * KU + 16 * j);
#pragma GCC unroll 4
    for (int i = 0; i < MR / 2; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NR / 2; ++j) acc[i][j] = vmmlaq_s32(acc[i][j], a[i], b[j]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR / 2; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < NR / 2; j += 2) {
      std::int32_t* c0 = c + (2 * i) * ldc + 2 * j;
      std::int32_t* c1 = c0 + ldc;
      int32x4_t r0 = vcombine_s32(vget_low_s32(acc[i][j]), vget_low_s32(acc[i][j + 1]));
      int32x4_t r1 = vcombine_s32(vget_high_s32(acc[i][j]), vget_high_s32(acc[i][j + 1]));
      if (accumulate) {
        r0 = vaddq_s32(r0, vld1q_s32(c0));
        r1 = vaddq_s32(r1, vld1q_s32(c1));
      }
      vst1q_s32(c0, r0);
      vst1q_s32(c1, r1);
    }
}

}  // namespace

extern const GemmKernels kernels_neon_i8mm_gemm = {
    "s8gemm_neon_i8mm_8x8", MR, NR, KU, 1, 1, false, 1024, pack_a, pack_b, ukernel};

}  // namespace numkern::quant
