// Sketch kernels for AArch64 Advanced SIMD: 4 float / 2 double lanes, lane permutes (rev64 / ext)
// for the Hadamard stages inside one vector, fused multiply-add for the refinement's TwoProd.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "common/simd_neon.h"
#include "sketch/sketch.h"

namespace numkern::sketch {
namespace {

#include "sketch/sketch_kernels.inl"

}  // namespace

const Kernels kernels_neon = kernel_table();

}  // namespace numkern::sketch
