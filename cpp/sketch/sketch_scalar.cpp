// Portable sketch kernels (baseline): the shared kernels one lane wide, no FMA.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "common/simd_scalar.h"
#include "sketch/sketch.h"

namespace numkern::sketch {
namespace {

#include "sketch/sketch_kernels.inl"

}  // namespace

const Kernels kernels_scalar = kernel_table();

}  // namespace numkern::sketch
