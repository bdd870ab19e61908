// Softmax kernels for AVX2 + FMA: 2^n is built in the exponent field, clamped so that it
// underflows to exactly 0 instead of wrapping.
#include <immintrin.h>

#include <cstddef>

#include "softmax/softmax.h"

namespace numkern::softmax {
namespace {

#include "softmax/softmax_kernels.inl"

// p * 2^k for integer-valued double k <= 1023; k below -1022 gives 0 (NaN k gives 0 too, which is
// harmless: a NaN k only arises where p is already NaN).
__m256d scale2_pd(__m256d p, __m256d k) {
  const __m256d magic = _mm256_set1_pd(6755399441055744.0);  // 2^52 + 2^51: k lands in the low bits
  k = _mm256_max_pd(k, _mm256_set1_pd(-1023.0));
  const __m256i ki = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(k, magic)), _mm256_castpd_si256(magic));
  const __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(ki, _mm256_set1_epi64x(1023)), 52);
  return _mm256_mul_pd(p, _mm256_castsi256_pd(bits));
}

double hsum_pd(__m256d v) {
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

struct F32 {
  using T = float;
  using V = __m256;
  struct W {
    __m256d lo, hi;
  };
  static constexpr std::size_t L = 8, kWideLanes = 8, kStreamAlign = 32;
  static constexpr double kLog2e = 1.4426950408889634, kClampExt = 2097152.0, kClampExp = 110.0;
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(T a) { return _mm256_set1_ps(a); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V round(V v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale2(V p, V k) {
    k = _mm256_max_ps(k, _mm256_set1_ps(-127.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  }
  static V reduce(V x, V n) {
    const V r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e430p-1f), x);
    return _mm256_fnmadd_ps(n, _mm256_set1_ps(-0x1.05c610p-29f), r);
  }
  static V exp_poly(V r) {
    V p = _mm256_set1_ps(float(kExpF32[6]));
    for (int k = 5; k >= 0; --k) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(float(kExpF32[k])));
    return p;
  }
  static W wzero() { return {_mm256_setzero_pd(), _mm256_setzero_pd()}; }
  static W wset1(double a) { return {_mm256_set1_pd(a), _mm256_set1_pd(a)}; }
  static W widen(V v) {
    return {_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))};
  }
  static W wadd(W a, W b) { return {_mm256_add_pd(a.lo, b.lo), _mm256_add_pd(a.hi, b.hi)}; }
  static W wsub(W a, W b) { return {_mm256_sub_pd(a.lo, b.lo), _mm256_sub_pd(a.hi, b.hi)}; }
  static W wmax(W a, W b) { return {_mm256_max_pd(a.lo, b.lo), _mm256_max_pd(a.hi, b.hi)}; }
  static W wscale2(W p, W k) { return {scale2_pd(p.lo, k.lo), scale2_pd(p.hi, k.hi)}; }
  static void wstore(double* p, W w) {
    _mm256_storeu_pd(p, w.lo);
    _mm256_storeu_pd(p + 4, w.hi);
  }
  static T hmax(V v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
  static double whsum(W w) { return hsum_pd(_mm256_add_pd(w.lo, w.hi)); }
  static void stream(T* p, V v) { _mm256_stream_ps(p, v); }
  static void fence() { _mm_sfence(); }
};

struct F64 {
  using T = double;
  using V = __m256d;
  using W = __m256d;
  static constexpr std::size_t L = 4, kWideLanes = 4, kStreamAlign = 32;
  static constexpr double kLog2e = 1.4426950408889634, kClampExt = 2097152.0, kClampExp = 760.0;
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(T a) { return _mm256_set1_pd(a); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static V min(V a, V b) { return _mm256_min_pd(a, b); }
  static V round(V v) { return _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale2(V p, V k) { return scale2_pd(p, k); }
  static V reduce(V x, V n) {
    const V r = _mm256_fnmadd_pd(n, _mm256_set1_pd(0x1.62e42fefa39efp-1), x);
    return _mm256_fnmadd_pd(n, _mm256_set1_pd(0x1.abc9e3b39803fp-56), r);
  }
  static V exp_poly(V r) {
    V p = _mm256_set1_pd(kExpF64[11]);
    for (int k = 10; k >= 0; --k) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(kExpF64[k]));
    return p;
  }
  static W wzero() { return _mm256_setzero_pd(); }
  static W wset1(double a) { return _mm256_set1_pd(a); }
  static W widen(V v) { return v; }
  static W wadd(W a, W b) { return _mm256_add_pd(a, b); }
  static W wsub(W a, W b) { return _mm256_sub_pd(a, b); }
  static W wmax(W a, W b) { return _mm256_max_pd(a, b); }
  static W wscale2(W p, W k) { return scale2_pd(p, k); }
  static void wstore(double* p, W w) { _mm256_storeu_pd(p, w); }
  static T hmax(V v) {
    const __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
  }
  static double whsum(W w) { return hsum_pd(w); }
  static void stream(T* p, V v) { _mm256_stream_pd(p, v); }
  static void fence() { _mm_sfence(); }
};

}  // namespace

const Kernels kernels_avx2 = {"avx2", SoftmaxImpl<F32>::table(), SoftmaxImpl<F64>::table()};

}  // namespace numkern::softmax
