// dp kernels for AVX-512 (F/DQ): eight float64 lanes; scalef applies 2^n with gradual underflow.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "dp/dp.h"

namespace numkern::dp {
namespace {

struct D {
  using V = __m512d;
  using I = __m512i;
  static constexpr std::size_t L = 8;
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V set1(double a) { return _mm512_set1_pd(a); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V div(V a, V b) { return _mm512_div_pd(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_pd(a, b, c); }
  static V abs(V a) { return _mm512_abs_pd(a); }
  static V sqrt(V a) { return _mm512_sqrt_pd(a); }
  static V max(V a, V b) { return _mm512_max_pd(a, b); }
  static V min(V a, V b) { return _mm512_min_pd(a, b); }
  static V round(V v) { return _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V scale2(V p, V n) { return _mm512_scalef_pd(p, n); }
  static I bits(V v) { return _mm512_castpd_si512(v); }
  static V from_bits(I i) { return _mm512_castsi512_pd(i); }
  static I iadd(I a, I b) { return _mm512_add_epi64(a, b); }
  static I isub(I a, I b) { return _mm512_sub_epi64(a, b); }
  static I iand(I a, I b) { return _mm512_and_si512(a, b); }
  static I ixor(I a, I b) { return _mm512_xor_si512(a, b); }
  template <int K>
  static I slli(I a) { return _mm512_slli_epi64(a, K); }
  static I iset1(std::int64_t a) { return _mm512_set1_epi64(a); }
  static I iload(const std::int64_t* p) { return _mm512_loadu_si512(p); }
  static void istore(std::int64_t* p, I v) { _mm512_storeu_si512(p, v); }
  static V select_bit0(I k, V a, V b) { return _mm512_mask_blend_pd(_mm512_test_epi64_mask(k, iset1(1)), a, b); }
};

#include "dp/dp_kernels.inl"

}  // namespace

const Kernels kernels_avx512 = {"avx512", DpImpl<D>::G, &DpImpl<D>::pair_sum, &DpImpl<D>::rff_sum,
                                &DpImpl<D>::rff_features};

}  // namespace numkern::dp
