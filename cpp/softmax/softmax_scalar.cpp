// Portable softmax kernels (any target, no FMA): the same algorithms one lane wide. Without FMA the
// range reduction is done in double (f32) or with a Cody-Waite split (f64), as the layer's
// reduce_ln2 does at this level.
#include <cstddef>

#include "common/simd_scalar.h"
#include "softmax/softmax.h"

namespace numkern::softmax {
namespace {

#include "softmax/softmax_kernels.inl"

}  // namespace

const Kernels kernels_scalar = {simd::kLevel, SoftmaxImpl<simd::F32>::table(), SoftmaxImpl<simd::F64>::table()};

}  // namespace numkern::softmax
