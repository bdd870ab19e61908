// Portable norm kernels (baseline x86-64): the float algorithms one lane wide, no FMA, and the
// integer-only int8 kernels in plain int64 arithmetic.
#include <cstddef>
#include <cstdint>

#include "norm/norm.h"

namespace numkern::norm {
namespace {

#include "norm/norm_kernels.inl"

template <class TT>
struct Scalar {
  using T = TT;
  using V = T;
  static constexpr std::size_t L = 1;
  static V load(const T* p) { return *p; }
  static void store(T* p, V v) { *p = v; }
  static V set1(T a) { return a; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V acc(V a, V v) { return a + v; }
  static V abs(V a) { return a < T(0) ? -a : (a == T(0) ? T(0) : a); }
  static V sign(V a) { return T((a > T(0)) - (a < T(0))); }
  static double hsum(V v) { return static_cast<double>(v); }
  static constexpr std::size_t kAlign = sizeof(T);
  static void stream(T* p, V v) { *p = v; }
};

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

const Kernels kernels_scalar = {"scalar", NormImpl<Scalar<float>>::table(), NormImpl<Scalar<double>>::table(),
                                {&i8_rsum, &i8_rsumabove, &i8_vrequant, nullptr}};

}  // namespace numkern::norm
