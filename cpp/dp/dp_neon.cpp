// dp kernels for AArch64 Advanced SIMD: two float64 lanes; 2^n is built in the exponent field in two
// factors (the layer's mul_pow2_subnormal) so that results down to the smallest subnormal are not
// flushed.
#include <cstddef>
#include <cstdint>

#include "common/simd_neon.h"
#include "dp/dp.h"

namespace numkern::dp {
namespace {

#include "dp/dp_chacha.inl"
#include "dp/dp_kernels.inl"

using Impl = DpImpl<simd::F64, simd::I64>;

}  // namespace

const Kernels kernels_neon = {
    "neon", Impl::G, &Impl::pair_sum, &Impl::rff_sum, &Impl::rff_features, &ChaCha<simd::I32>::blocks};

}  // namespace numkern::dp
