// Advanced SIMD (baseline AArch64) level of the quant family: the quantizer's generic kernels over
// the NEON ops layer, and an int8 GEMM over sign-extended int16 (smlal by lane), for CPUs without
// the dot-product instructions (quant_neon_dotprod.cpp, quant_neon_i8mm.cpp).
//
// Exactness: a product of two int8 is at most 2^14 in magnitude and smlal adds it to an int32 lane,
// so a K-block sum is exact for kc < 2^17, as on every level.
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "common/simd_neon.h"
#include "quant/quant.h"

namespace numkern::quant {
namespace {

#include "quant/quant_kernels.inl"

constexpr int MR = 4, NR = 16, KU = 2, KQ = 1, GROUP = 1;

#include "quant/quant_gemm_neon_pack.inl"

// One K pair: a holds rows 0..3 of k and of k + 1 (lanes 0..3, 4..7), b0 / b1 the 16 columns of
// k / k + 1 widened to int16. The lane index of smlal must be a constant, hence the template.
template <int R>
inline void mac_row(int32x4_t (&c)[MR][4], int16x8_t a, int16x8_t b0l, int16x8_t b0h, int16x8_t b1l, int16x8_t b1h) {
  c[R][0] = vmlal_laneq_s16(c[R][0], vget_low_s16(b0l), a, R);
  c[R][1] = vmlal_high_laneq_s16(c[R][1], b0l, a, R);
  c[R][2] = vmlal_laneq_s16(c[R][2], vget_low_s16(b0h), a, R);
  c[R][3] = vmlal_high_laneq_s16(c[R][3], b0h, a, R);
  c[R][0] = vmlal_laneq_s16(c[R][0], vget_low_s16(b1l), a, R + 4);
  c[R][1] = vmlal_high_laneq_s16(c[R][1], b1l, a, R + 4);
  c[R][2] = vmlal_laneq_s16(c[R][2], vget_low_s16(b1h), a, R + 4);
  c[R][3] = vmlal_high_laneq_s16(c[R][3], b1h, a, R + 4);
}

void ukernel(std::int64_t k, const void* ap_, const void* bp_, std::int32_t* c, std::int64_t ldc, int accumulate) {
  const auto* ap = static_cast<const std::int8_t*>(ap_);
  const auto* bp = static_cast<const std::int8_t*>(bp_);
  int32x4_t acc[MR][4];
  for (auto& row : acc)
    for (auto& v : row) v = vdupq_n_s32(0);
  for (std::int64_t p = 0; p < k; p += 2) {
    const int16x8_t a = vmovl_s8(vld1_s8(ap + p * MR));
    const int8x16_t b0 = vld1q_s8(bp + p * NR), b1 = vld1q_s8(bp + (p + 1) * NR);
    const int16x8_t b0l = vmovl_s8(vget_low_s8(b0)), b0h = vmovl_high_s8(b0);
    const int16x8_t b1l = vmovl_s8(vget_low_s8(b1)), b1h = vmovl_high_s8(b1);
    mac_row<0>(acc, a, b0l, b0h, b1l, b1h);
    mac_row<1>(acc, a, b0l, b0h, b1l, b1h);
    mac_row<2>(acc, a, b0l, b0h, b1l, b1h);
    mac_row<3>(acc, a, b0l, b0h, b1l, b1h);
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 4; ++v) {
      std::int32_t* cr = c + r * ldc + 4 * v;
      vst1q_s32(cr, accumulate ? vaddq_s32(acc[r][v], vld1q_s32(cr)) : acc[r][v]);
    }
}

}  // namespace

extern const GemmKernels kernels_neon_gemm = {
    "s8gemm_neon_4x16", MR, NR, KU, 1, 1, false, 1024, pack_a, pack_b, ukernel};
extern const QuantKernels kernels_neon_quant = quant_table("shiftquant_neon");

}  // namespace numkern::quant
