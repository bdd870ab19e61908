// s8 x s8 -> s32 GEMM with the Armv8.2 dot-product instructions (sdot by element): each sdot adds
// the dot products of four byte quads of B (four columns, four K) with one quad of A (one row) to
// four int32 lanes. Signed by signed, so no offset correction (unlike x86's u8 x s8 vpdpbusd), and
// every step is exact modulo 2^32: a K-block sum is exact for kc < 2^17.
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "quant/quant.h"

namespace numkern::quant {
namespace {

constexpr int MR = 8, NR = 12, KU = 4, KQ = 4, GROUP = 1;

#include "quant/quant_gemm_neon_pack.inl"

// Rows R (of the 4 in a) against the NR / 4 column quads b: the lane index must be a constant.
template <int R>
inline void dot_row(int32x4_t (&c)[NR / 4], int8x16_t a, const int8x16_t (&b)[NR / 4]) {
#pragma GCC unroll 4
  for (int v = 0; v < NR / 4; ++v) c[v] = vdotq_laneq_s32(c[v], b[v], a, R);
}

void ukernel(std::int64_t k, const void* ap_, const void* bp_, std::int32_t* c, std::int64_t ldc, int accumulate) {
  const auto* ap = static_cast<const std::int8_t*>(ap_);
  const auto* bp = static_cast<const std::int8_t*>(bp_);
  // Fully unrolled loops keep the 24 accumulators, 3 B and 2 A vectors in the 32 registers (rolled,
  // GCC keeps acc in memory and stores it back every K step).
  int32x4_t acc[MR][NR / 4];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NR / 4; ++v) acc[r][v] = vdupq_n_s32(0);
  for (std::int64_t q = 0; q < k / KU; ++q) {
    int8x16_t b[NR / 4];
#pragma GCC unroll 4
    for (int v = 0; v < NR / 4; ++v) b[v] = vld1q_s8(bp + q * NR * KU + 16 * v);
    const int8x16_t a0 = vld1q_s8(ap + q * MR * KU), a1 = vld1q_s8(ap + q * MR * KU + 16);
    dot_row<0>(acc[0], a0, b);
    dot_row<1>(acc[1], a0, b);
    dot_row<2>(acc[2], a0, b);
    dot_row<3>(acc[3], a0, b);
    dot_row<0>(acc[4], a1, b);
    dot_row<1>(acc[5], a1, b);
    dot_row<2>(acc[6], a1, b);
    dot_row<3>(acc[7], a1, b);
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NR / 4; ++v) {
      std::int32_t* cr = c + r * ldc + 4 * v;
      vst1q_s32(cr, accumulate ? vaddq_s32(acc[r][v], vld1q_s32(cr)) : acc[r][v]);
    }
}

}  // namespace

extern const GemmKernels kernels_neon_dotprod_gemm = {
    "s8gemm_neon_dotprod_8x12", MR, NR, KU, 1, 1, false, 1024, pack_a, pack_b, ukernel};

}  // namespace numkern::quant
