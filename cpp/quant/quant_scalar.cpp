// Baseline level of the quant family (any architecture): a plain int8 GEMM (int32 accumulators) and
// the quantizer's generic kernels over the one-lane ops.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "common/simd_scalar.h"
#include "quant/quant.h"

namespace numkern::quant {
namespace {

#include "quant/quant_kernels.inl"

constexpr int MR = 4, NR = 8, KU = 1;

void pack_a(const std::int8_t* a, std::int64_t lda, std::int64_t m, std::int64_t k, void* out_) {
  auto* out = static_cast<std::int8_t*>(out_);
  for (std::int64_t p = 0; p < k; ++p)
    for (int r = 0; r < MR; ++r) out[p * MR + r] = r < m ? a[r * lda + p] : std::int8_t{0};
}

void pack_b(const std::int8_t* b, std::int64_t ldb, std::int64_t n, std::int64_t k, void* out_, std::int64_t stride) {
  for (std::int64_t j0 = 0; j0 < n; j0 += NR) {
    auto* out = static_cast<std::int8_t*>(out_) + (j0 / NR) * stride;
    for (std::int64_t p = 0; p < k; ++p)
      for (int j = 0; j < NR; ++j) out[p * NR + j] = j0 + j < n ? b[p * ldb + j0 + j] : std::int8_t{0};
  }
}

// |sum| <= k * 2^14 < 2^31 for the K-blocks the driver passes (kc < 2^17).
void ukernel(std::int64_t k, const void* ap_, const void* bp_, std::int32_t* c, std::int64_t ldc, int accumulate) {
  const auto* ap = static_cast<const std::int8_t*>(ap_);
  const auto* bp = static_cast<const std::int8_t*>(bp_);
  std::int32_t acc[MR][NR] = {};
  for (std::int64_t p = 0; p < k; ++p)
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) acc[r][j] += std::int32_t{ap[p * MR + r]} * std::int32_t{bp[p * NR + j]};
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) c[r * ldc + j] = (accumulate ? c[r * ldc + j] : 0) + acc[r][j];
}

}  // namespace

extern const GemmKernels kernels_scalar_gemm = {
    "s8gemm_scalar_4x8", MR, NR, KU, 1, 1, false, 1024, pack_a, pack_b, ukernel};
extern const QuantKernels kernels_scalar_quant = quant_table("shiftquant_scalar");

}  // namespace numkern::quant
