// Softmax kernels for AVX-512 (F/BW/DQ/VL): scalef applies 2^n exactly, including underflow.
#include <immintrin.h>

#include <cstddef>

#include "softmax/softmax.h"

namespace numkern::softmax {
namespace {

#include "softmax/softmax_kernels.inl"

struct F32 {
  using T = float;
  using V = __m512;
  struct W {
    __m512d lo, hi;
  };
  static constexpr std::size_t L = 16, kWideLanes = 16, kStreamAlign = 64;
  static constexpr double kLog2e = 1.4426950408889634, kClampExt = 2097152.0, kClampExp = 110.0;
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(T a) { return _mm512_set1_ps(a); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V round(V v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale2(V p, V k) { return _mm512_scalef_ps(p, k); }
  static V reduce(V x, V n) {
    const V r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e430p-1f), x);
    return _mm512_fnmadd_ps(n, _mm512_set1_ps(-0x1.05c610p-29f), r);
  }
  static V exp_poly(V r) {
    V p = _mm512_set1_ps(float(kExpF32[6]));
    for (int k = 5; k >= 0; --k) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(float(kExpF32[k])));
    return p;
  }
  static W wzero() { return {_mm512_setzero_pd(), _mm512_setzero_pd()}; }
  static W wset1(double a) { return {_mm512_set1_pd(a), _mm512_set1_pd(a)}; }
  static W widen(V v) {
    return {_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))};
  }
  static W wadd(W a, W b) { return {_mm512_add_pd(a.lo, b.lo), _mm512_add_pd(a.hi, b.hi)}; }
  static W wsub(W a, W b) { return {_mm512_sub_pd(a.lo, b.lo), _mm512_sub_pd(a.hi, b.hi)}; }
  static W wmax(W a, W b) { return {_mm512_max_pd(a.lo, b.lo), _mm512_max_pd(a.hi, b.hi)}; }
  static W wscale2(W p, W k) { return {_mm512_scalef_pd(p.lo, k.lo), _mm512_scalef_pd(p.hi, k.hi)}; }
  static void wstore(double* p, W w) {
    _mm512_storeu_pd(p, w.lo);
    _mm512_storeu_pd(p + 8, w.hi);
  }
  static T hmax(V v) { return _mm512_reduce_max_ps(v); }
  static double whsum(W w) { return _mm512_reduce_add_pd(_mm512_add_pd(w.lo, w.hi)); }
  static void stream(T* p, V v) { _mm512_stream_ps(p, v); }
  static void fence() { _mm_sfence(); }
};

struct F64 {
  using T = double;
  using V = __m512d;
  using W = __m512d;
  static constexpr std::size_t L = 8, kWideLanes = 8, kStreamAlign = 64;
  static constexpr double kLog2e = 1.4426950408889634, kClampExt = 2097152.0, kClampExp = 760.0;
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static V set1(T a) { return _mm512_set1_pd(a); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V max(V a, V b) { return _mm512_max_pd(a, b); }
  static V min(V a, V b) { return _mm512_min_pd(a, b); }
  static V round(V v) { return _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale2(V p, V k) { return _mm512_scalef_pd(p, k); }
  static V reduce(V x, V n) {
    const V r = _mm512_fnmadd_pd(n, _mm512_set1_pd(0x1.62e42fefa39efp-1), x);
    return _mm512_fnmadd_pd(n, _mm512_set1_pd(0x1.abc9e3b39803fp-56), r);
  }
  static V exp_poly(V r) {
    V p = _mm512_set1_pd(kExpF64[11]);
    for (int k = 10; k >= 0; --k) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(kExpF64[k]));
    return p;
  }
  static W wzero() { return _mm512_setzero_pd(); }
  static W wset1(double a) { return _mm512_set1_pd(a); }
  static W widen(V v) { return v; }
  static W wadd(W a, W b) { return _mm512_add_pd(a, b); }
  static W wsub(W a, W b) { return _mm512_sub_pd(a, b); }
  static W wmax(W a, W b) { return _mm512_max_pd(a, b); }
  static W wscale2(W p, W k) { return _mm512_scalef_pd(p, k); }
  static void wstore(double* p, W w) { _mm512_storeu_pd(p, w); }
  static T hmax(V v) { return _mm512_reduce_max_pd(v); }
  static double whsum(W w) { return _mm512_reduce_add_pd(w); }
  static void stream(T* p, V v) { _mm512_stream_pd(p, v); }
  static void fence() { _mm_sfence(); }
};

}  // namespace

const Kernels kernels_avx512 = {"avx512", SoftmaxImpl<F32>::table(), SoftmaxImpl<F64>::table()};

}  // namespace numkern::softmax
