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

const Kernels kernels_neon = {simd::kLevel,
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
