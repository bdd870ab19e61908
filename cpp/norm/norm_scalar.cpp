// Portable norm kernels (the baseline of any target): the float algorithms one lane wide, no FMA,
// and the integer-only int8 kernels in plain int64 arithmetic.
#include <cstddef>
#include <cstdint>

#include "common/simd_scalar.h"
#include "norm/norm.h"

namespace numkern::norm {
namespace {

#include "norm/norm_kernels.inl"

std::int64_t i8_rsum(const std::int8_t* x, std::size_t n) {
  std::int64_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += x[i];
  return s;
}

void i8_rsumabove(const std::int8_t* x, std::size_t n, std::int32_t t, std::int64_t* sum, std::int64_t* count) {
  std::int64_t s = 0, c = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (x[i] > t) {
      s += x[i];
      ++c;
    }
  *sum = s;
  *count = c;
}

void i8_vrequant(const std::int8_t* x, std::int8_t* y, std::size_t n, std::int32_t t, std::int32_t u_max,
                 std::int32_t g, std::int32_t c, int k, bool) {
  for (std::size_t i = 0; i < n; ++i) {
    std::int32_t u = x[i] - t;
    u = u > u_max ? u_max : (u < -u_max ? -u_max : u);
    // >> of a negative int32 is an arithmetic shift on every compiler numkern supports (C++20 rule).
    const std::int32_t v = (u * g - c) >> k;
    y[i] = static_cast<std::int8_t>(v > 127 ? 127 : (v < -128 ? -128 : v));
  }
}

}  // namespace

const Kernels kernels_scalar = {"scalar",
                                NormImpl<simd::F32>::table(),
                                NormImpl<simd::F64>::table(),
                                {&i8_rsum, &i8_rsumabove, &i8_vrequant, nullptr}};

}  // namespace numkern::norm
