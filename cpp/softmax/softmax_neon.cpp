// Softmax kernels for AArch64 Advanced SIMD: the generic kernels of softmax_kernels.inl on 4 float /
// 2 double lanes; 2^n is built in the exponent field (the layer's mul_pow2), as on x86.
#include <cstddef>

#include "common/simd_neon.h"
#include "softmax/softmax.h"

namespace numkern::softmax {
namespace {

#include "softmax/softmax_kernels.inl"

}  // namespace

const Kernels kernels_neon = {simd::kLevel, SoftmaxImpl<simd::F32>::table(), SoftmaxImpl<simd::F64>::table()};

}  // namespace numkern::softmax
