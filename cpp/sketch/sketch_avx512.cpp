// Sketch kernels for AVX-512 (F/DQ): mask registers for column tails, in-register permutes for the
// Hadamard stages inside one vector.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "sketch/sketch.h"

namespace numkern::sketch {
namespace {

#include "sketch/sketch_kernels.inl"

struct F64 {
  using T = double;
  using Vec = __m512d;
  static constexpr std::size_t L = 8;
  static __mmask8 mask(std::size_t k) { return static_cast<__mmask8>((1u << k) - 1u); }
  static Vec load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, Vec v) { _mm512_storeu_pd(p, v); }
  static Vec loadn(const T* p, std::size_t k) { return _mm512_maskz_loadu_pd(mask(k), p); }
  static void storen(T* p, Vec v, std::size_t k) { _mm512_mask_storeu_pd(p, mask(k), v); }
  static Vec add(Vec a, Vec b) { return _mm512_add_pd(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_pd(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_pd(a, b); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_pd(a, b, c); }
  // a * b - p exactly when p = fl(a * b) (TwoProd by FMA).
  static Vec prod_err(Vec a, Vec b, Vec p) { return _mm512_fmsub_pd(a, b, p); }
  static Vec set1(T a) { return _mm512_set1_pd(a); }
  static T hsum(Vec v) { return _mm512_reduce_add_pd(v); }
  static Vec inner(Vec v) {
    Vec t = _mm512_permute_pd(v, 0x55);
    v = _mm512_mask_blend_pd(0xAA, _mm512_add_pd(v, t), _mm512_sub_pd(t, v));
    t = _mm512_permutex_pd(v, 0x4E);
    v = _mm512_mask_blend_pd(0xCC, _mm512_add_pd(v, t), _mm512_sub_pd(t, v));
    t = _mm512_shuffle_f64x2(v, v, 0x4E);
    return _mm512_mask_blend_pd(0xF0, _mm512_add_pd(v, t), _mm512_sub_pd(t, v));
  }
};

struct F32 {
  using T = float;
  using Vec = __m512;
  static constexpr std::size_t L = 16;
  static __mmask16 mask(std::size_t k) { return static_cast<__mmask16>((1u << k) - 1u); }
  static Vec load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, Vec v) { _mm512_storeu_ps(p, v); }
  static Vec loadn(const T* p, std::size_t k) { return _mm512_maskz_loadu_ps(mask(k), p); }
  static void storen(T* p, Vec v, std::size_t k) { _mm512_mask_storeu_ps(p, mask(k), v); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec set1(T a) { return _mm512_set1_ps(a); }
  static T hsum(Vec v) { return _mm512_reduce_add_ps(v); }
  static Vec inner(Vec v) {
    Vec t = _mm512_permute_ps(v, 0xB1);
    v = _mm512_mask_blend_ps(0xAAAA, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
    t = _mm512_permute_ps(v, 0x4E);
    v = _mm512_mask_blend_ps(0xCCCC, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
    t = _mm512_shuffle_f32x4(v, v, 0xB1);
    v = _mm512_mask_blend_ps(0xF0F0, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
    t = _mm512_shuffle_f32x4(v, v, 0x4E);
    return _mm512_mask_blend_ps(0xFF00, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
  }
};

struct Gen {
  using U = __m512i;
  using F = __m512;
  static constexpr std::size_t L = 16;
  static U uset1(std::uint32_t a) { return _mm512_set1_epi32(static_cast<int>(a)); }
  static U iota(std::uint32_t j0) {
    return _mm512_add_epi32(uset1(j0), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  }
  static U uxor(U a, U b) { return _mm512_xor_si512(a, b); }
  static U uor(U a, U b) { return _mm512_or_si512(a, b); }
  static U uand(U a, U b) { return _mm512_and_si512(a, b); }
  static U uadd(U a, U b) { return _mm512_add_epi32(a, b); }
  static U usub(U a, U b) { return _mm512_sub_epi32(a, b); }
  static U umul(U a, U b) { return _mm512_mullo_epi32(a, b); }
  static U ushr9(U a) { return _mm512_srli_epi32(a, 9); }
  static U ushr15(U a) { return _mm512_srli_epi32(a, 15); }
  static U ushr16(U a) { return _mm512_srli_epi32(a, 16); }
  static U ushr23(U a) { return _mm512_srli_epi32(a, 23); }
  static F itof(U a) { return _mm512_cvtepi32_ps(a); }
  static U f_as_u(F a) { return _mm512_castps_si512(a); }
  static F u_as_f(U a) { return _mm512_castsi512_ps(a); }
  static F set1(float a) { return _mm512_set1_ps(a); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F sqrt(F a) { return _mm512_sqrt_ps(a); }
  static __mmask16 gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static F blend(__mmask16 m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }
  static U ublend(__mmask16 m, U a, U b) { return _mm512_mask_blend_epi32(m, b, a); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
};

}  // namespace

const Kernels kernels_avx512 = {"avx512", 16, 8, typed_table<F32>(), typed_table<F64>(), &gauss_fill<Gen>, &ls_refine_rows<F64>};

}  // namespace numkern::sketch
