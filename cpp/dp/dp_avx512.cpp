// dp kernels for AVX-512 (F/DQ): eight float64 lanes; scalef (the layer's mul_pow2_subnormal)
// applies 2^n with gradual underflow.
#include <cstddef>
#include <cstdint>

#include "common/simd_avx512.h"
#include "dp/dp.h"

namespace numkern::dp {
namespace {

#include "dp/dp_chacha.inl"
#include "dp/dp_kernels.inl"

using Impl = DpImpl<simd::F64, simd::I64>;

}  // namespace

const Kernels kernels_avx512 = {
    "avx512", Impl::G, &Impl::pair_sum, &Impl::rff_sum, &Impl::rff_features, &ChaCha<simd::I32>::blocks};

}  // namespace numkern::dp
