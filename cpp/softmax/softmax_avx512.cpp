// Softmax kernels for AVX-512 (F/BW/DQ/VL): scalef (the layer's mul_pow2) applies 2^n exactly,
// including underflow.
#include <cstddef>

#include "common/simd_avx512.h"
#include "softmax/softmax.h"

namespace numkern::softmax {
namespace {

#include "softmax/softmax_kernels.inl"

}  // namespace

const Kernels kernels_avx512 = {simd::kLevel, SoftmaxImpl<simd::F32>::table(), SoftmaxImpl<simd::F64>::table()};

}  // namespace numkern::softmax
