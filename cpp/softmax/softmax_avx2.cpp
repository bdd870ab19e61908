// Softmax kernels for AVX2 + FMA: 2^n is built in the exponent field (the layer's mul_pow2), clamped
// so that it underflows to exactly 0 instead of wrapping.
#include <cstddef>

#include "common/simd_avx2.h"
#include "softmax/softmax.h"

namespace numkern::softmax {
namespace {

#include "softmax/softmax_kernels.inl"

}  // namespace

const Kernels kernels_avx2 = {simd::kLevel, SoftmaxImpl<simd::F32>::table(), SoftmaxImpl<simd::F64>::table()};

}  // namespace numkern::softmax
