// dp kernels for AVX2 + FMA: four float64 lanes; 2^n is built in the exponent field in two
// factors so that results down to the smallest subnormal are not flushed.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "dp/dp.h"

namespace numkern::dp {
namespace {

struct D {
  using V = __m256d;
  using I = __m256i;
  static constexpr std::size_t L = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(double a) { return _mm256_set1_pd(a); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_pd(a, b, c); }
  static V abs(V a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
  static V sqrt(V a) { return _mm256_sqrt_pd(a); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static V min(V a, V b) { return _mm256_min_pd(a, b); }
  static V round(V v) { return _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I bits(V v) { return _mm256_castpd_si256(v); }
  static V from_bits(I i) { return _mm256_castsi256_pd(i); }
  static I iadd(I a, I b) { return _mm256_add_epi64(a, b); }
  static I isub(I a, I b) { return _mm256_sub_epi64(a, b); }
  static I iand(I a, I b) { return _mm256_and_si256(a, b); }
  static I ixor(I a, I b) { return _mm256_xor_si256(a, b); }
  template <int K>
  static I slli(I a) { return _mm256_slli_epi64(a, K); }
  static I iset1(std::int64_t a) { return _mm256_set1_epi64x(a); }
  static I iload(const std::int64_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void istore(std::int64_t* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static V select_bit0(I k, V a, V b) { return _mm256_blendv_pd(a, b, from_bits(_mm256_slli_epi64(k, 63))); }
  // 2^n for integer-valued n in [-1100, 0] (NaN n only where p is NaN): n = n1 + n2 with both
  // factors normal; p * 2^n2 stays normal, so the product rounds once into the subnormal range.
  static V pow2(V n) {
    const V magic = _mm256_set1_pd(6755399441055744.0);
    const I ni = isub(bits(add(n, magic)), bits(magic));
    return from_bits(_mm256_slli_epi64(_mm256_add_epi64(ni, iset1(1023)), 52));
  }
  static V scale2(V p, V n) {
    const V n1 = _mm256_max_pd(n, _mm256_set1_pd(-1022.0));
    const V n2 = _mm256_max_pd(_mm256_sub_pd(n, n1), _mm256_set1_pd(-1022.0));
    return mul(mul(p, pow2(n2)), pow2(n1));
  }
};

#include "dp/dp_kernels.inl"

}  // namespace

const Kernels kernels_avx2 = {"avx2", DpImpl<D>::G, &DpImpl<D>::pair_sum, &DpImpl<D>::rff_sum, &DpImpl<D>::rff_features};

}  // namespace numkern::dp
