// Sketch kernels for AVX2 + FMA: masked loads/stores for column tails, in-register permutes for
// the Hadamard stages inside one vector.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "common/simd_avx2.h"
#include "sketch/sketch.h"

namespace numkern::sketch {
namespace {

#include "sketch/sketch_kernels.inl"

}  // namespace

const Kernels kernels_avx2 = {simd::kLevel,
                              simd::F32::L,
                              simd::F64::L,
                              typed_table<simd::F32>(),
                              typed_table<simd::F64>(),
                              &gauss_fill<simd::F32, simd::I32>,
                              &ls_refine_rows<simd::F64>,
                              &csr_ls_refine_rows<simd::F64>,
                              &row_residual<simd::F64, float>,
                              &ls_refine_rows<simd::F64, float>,
                              &csr_row_residual<simd::F64, float>,
                              &csr_ls_refine_rows<simd::F64, float>,
                              &csr_sketch_strip<simd::F64, float>};

}  // namespace numkern::sketch
