// Sketch kernels for AVX2 + FMA: masked loads/stores for column tails, in-register permutes for
// the Hadamard stages inside one vector.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "sketch/sketch.h"

namespace numkern::sketch {
namespace {

#include "sketch/sketch_kernels.inl"

struct F64 {
  using T = double;
  using Vec = __m256d;
  static constexpr std::size_t L = 4;
  static __m256i mask(std::size_t k) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(k)), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static Vec load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, Vec v) { _mm256_storeu_pd(p, v); }
  static Vec loadn(const T* p, std::size_t k) { return _mm256_maskload_pd(p, mask(k)); }
  static void storen(T* p, Vec v, std::size_t k) { _mm256_maskstore_pd(p, mask(k), v); }
  static Vec add(Vec a, Vec b) { return _mm256_add_pd(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_pd(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_pd(a, b); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_pd(a, b, c); }
  // a * b - p exactly when p = fl(a * b) (TwoProd by FMA).
  static Vec prod_err(Vec a, Vec b, Vec p) { return _mm256_fmsub_pd(a, b, p); }
  static Vec set1(T a) { return _mm256_set1_pd(a); }
  static T hsum(Vec v) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static Vec inner(Vec v) {
    Vec t = _mm256_permute_pd(v, 0x5);
    v = _mm256_blend_pd(_mm256_add_pd(v, t), _mm256_sub_pd(t, v), 0xA);
    t = _mm256_permute2f128_pd(v, v, 0x01);
    return _mm256_blend_pd(_mm256_add_pd(v, t), _mm256_sub_pd(t, v), 0xC);
  }
};

struct F32 {
  using T = float;
  using Vec = __m256;
  static constexpr std::size_t L = 8;
  static __m256i mask(std::size_t k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, Vec v) { _mm256_storeu_ps(p, v); }
  static Vec loadn(const T* p, std::size_t k) { return _mm256_maskload_ps(p, mask(k)); }
  static void storen(T* p, Vec v, std::size_t k) { _mm256_maskstore_ps(p, mask(k), v); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec set1(T a) { return _mm256_set1_ps(a); }
  static T hsum(Vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static Vec inner(Vec v) {
    Vec t = _mm256_permute_ps(v, 0xB1);
    v = _mm256_blend_ps(_mm256_add_ps(v, t), _mm256_sub_ps(t, v), 0xAA);
    t = _mm256_permute_ps(v, 0x4E);
    v = _mm256_blend_ps(_mm256_add_ps(v, t), _mm256_sub_ps(t, v), 0xCC);
    t = _mm256_permute2f128_ps(v, v, 0x01);
    return _mm256_blend_ps(_mm256_add_ps(v, t), _mm256_sub_ps(t, v), 0xF0);
  }
};

struct Gen {
  using U = __m256i;
  using F = __m256;
  static constexpr std::size_t L = 8;
  static U uset1(std::uint32_t a) { return _mm256_set1_epi32(static_cast<int>(a)); }
  static U iota(std::uint32_t j0) {
    return _mm256_add_epi32(uset1(j0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static U uxor(U a, U b) { return _mm256_xor_si256(a, b); }
  static U uor(U a, U b) { return _mm256_or_si256(a, b); }
  static U uand(U a, U b) { return _mm256_and_si256(a, b); }
  static U uadd(U a, U b) { return _mm256_add_epi32(a, b); }
  static U usub(U a, U b) { return _mm256_sub_epi32(a, b); }
  static U umul(U a, U b) { return _mm256_mullo_epi32(a, b); }
  static U ushr9(U a) { return _mm256_srli_epi32(a, 9); }
  static U ushr15(U a) { return _mm256_srli_epi32(a, 15); }
  static U ushr16(U a) { return _mm256_srli_epi32(a, 16); }
  static U ushr23(U a) { return _mm256_srli_epi32(a, 23); }
  static F itof(U a) { return _mm256_cvtepi32_ps(a); }
  static U f_as_u(F a) { return _mm256_castps_si256(a); }
  static F u_as_f(U a) { return _mm256_castsi256_ps(a); }
  static F set1(float a) { return _mm256_set1_ps(a); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F sqrt(F a) { return _mm256_sqrt_ps(a); }
  static F gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static F blend(F m, F a, F b) { return _mm256_blendv_ps(b, a, m); }
  static U ublend(F m, U a, U b) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
  }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
};

}  // namespace

const Kernels kernels_avx2 = {"avx2", 8, 4, typed_table<F32>(), typed_table<F64>(), &gauss_fill<Gen>, &ls_refine_rows<F64>};

}  // namespace numkern::sketch
