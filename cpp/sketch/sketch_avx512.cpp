// Sketch kernels for AVX-512 (F/DQ): mask registers for column tails, in-register permutes for the
// Hadamard stages inside one vector.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "common/simd_avx512.h"
#include "sketch/sketch.h"

namespace numkern::sketch {
namespace {

#include "sketch/sketch_kernels.inl"

}  // namespace

const Kernels kernels_avx512 = kernel_table();

}  // namespace numkern::sketch
