// Portable softmax kernels (baseline x86-64, no FMA): the same algorithms one lane wide. Without
// FMA the range reduction is done in double (f32) or with a Cody-Waite split (f64).
#include <cstddef>

#include "softmax/softmax.h"

namespace numkern::softmax {
namespace {

#include "softmax/softmax_kernels.inl"

template <class T>
struct ScalarBase {
  using V = T;
  using W = double;
  static constexpr std::size_t L = 1, kWideLanes = 1, kStreamAlign = sizeof(T);
  static V load(const T* p) { return *p; }
  static void store(T* p, V v) { *p = v; }
  static V set1(T a) { return a; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V max(V a, V b) { return a > b ? a : b; }  // returns b if either is NaN, as maxps does
  static V min(V a, V b) { return a < b ? a : b; }
  static W wzero() { return 0.0; }
  static W wset1(double a) { return a; }
  static W widen(V v) { return v; }
  static W wadd(W a, W b) { return a + b; }
  static W wsub(W a, W b) { return a - b; }
  static W wmax(W a, W b) { return a > b ? a : b; }
  // p * 2^k built in the exponent field; k below the normal range flushes to 0 (allowed: such
  // terms are below the accuracy floor), NaN k propagates.
  static W wscale2(W p, W k) {
    if (k != k) return k;
    if (k < -1022.0) return 0.0 * p;
    // Past the exponent range the shift below would be undefined (UBSan caught k = +inf from the
    // fuzz tests); ldexp overflows to +-inf as the true product does.
    if (k > 1023.0) return __builtin_ldexp(p, k > 4096.0 ? 4096 : static_cast<int>(k));
    const long long bits = (static_cast<long long>(k) + 1023) << 52;
    return p * __builtin_bit_cast(double, bits);
  }
  static void wstore(double* p, W w) { *p = w; }
  static T hmax(V v) { return v; }
  static double whsum(W w) { return w; }
  static void stream(T* p, V v) { *p = v; }
  static void fence() {}
};

struct F32 : ScalarBase<float> {
  using T = float;
  static constexpr double kLog2e = 1.4426950408889634, kClampExt = 2097152.0, kClampExp = 110.0;
  static V round(V v) {
    const float magic = 12582912.0f;  // 1.5 * 2^23: exact for |v| < 2^22
    return (v + magic) - magic;
  }
  static V scale2(V p, V k) {
    if (k != k) return k;
    if (k < -126.0f) return 0.0f * p;
    if (k > 127.0f) return __builtin_ldexpf(p, k > 512.0f ? 512 : static_cast<int>(k));  // as wscale2
    const int bits = (static_cast<int>(k) + 127) << 23;
    return p * __builtin_bit_cast(float, bits);
  }
  static V reduce(V x, V n) { return static_cast<float>(static_cast<double>(x) - static_cast<double>(n) * 0x1.62e42fefa39efp-1); }
  static V exp_poly(V r) {
    float p = float(kExpF32[6]);
    for (int k = 5; k >= 0; --k) p = p * r + float(kExpF32[k]);
    return p;
  }
};

struct F64 : ScalarBase<double> {
  using T = double;
  static constexpr double kLog2e = 1.4426950408889634, kClampExt = 2097152.0, kClampExp = 760.0;
  static V round(V v) {
    const double magic = 6755399441055744.0;  // 1.5 * 2^52: exact for |v| < 2^51
    return (v + magic) - magic;
  }
  static V scale2(V p, V k) { return wscale2(p, k); }
  // ln2 = C1 + C2 with C1 of 32 significant bits, so n * C1 is exact for |n| < 2^21.
  static V reduce(V x, V n) { return (x - n * 0x1.62e42fee00000p-1) - n * 0x1.a39ef35793c76p-33; }
  static V exp_poly(V r) {
    double p = kExpF64[11];
    for (int k = 10; k >= 0; --k) p = p * r + kExpF64[k];
    return p;
  }
};

}  // namespace

const Kernels kernels_scalar = {"scalar", SoftmaxImpl<F32>::table(), SoftmaxImpl<F64>::table()};

}  // namespace numkern::softmax
