// The ops layer for AVX-512 (F/BW/DQ/VL/CD, on top of AVX2 + FMA): 16 float / 8 double / 16 int32 /
// 8 int64 lanes, mask registers for compares and partial loads, scalef for exact powers of two.
//
// Included only by *_avx512.cpp and *_avx512vnni.cpp translation units; see simd_scalar.h for the
// vocabulary every level provides and what each op guarantees.
#pragma once

#include <immintrin.h>

#include "common/simd_base.h"

namespace numkern::simd {
namespace {

constexpr const char* kLevel = "avx512";

struct F64 {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  using Wide = F64;
  static constexpr std::size_t L = 8, kBytes = 64;
  static M first(std::size_t k) { return static_cast<M>((1u << k) - 1u); }
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(T a) { return _mm512_set1_pd(a); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static V loadn(const T* p, std::size_t k) { return _mm512_maskz_loadu_pd(first(k), p); }
  static void storen(T* p, V v, std::size_t k) { _mm512_mask_storeu_pd(p, first(k), v); }
  static void stream(T* p, V v) { _mm512_stream_pd(p, v); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V div(V a, V b) { return _mm512_div_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V fnma(V a, V b, V c) { return _mm512_fnmadd_pd(a, b, c); }
  static V mul_error(V a, V b, V p) { return _mm512_fmsub_pd(a, b, p); }
  static V min(V a, V b) { return _mm512_min_pd(a, b); }
  static V max(V a, V b) { return _mm512_max_pd(a, b); }
  static V abs(V a) { return _mm512_abs_pd(a); }
  static V sqrt(V a) { return _mm512_sqrt_pd(a); }
  static V round(V v) { return _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V floor(V v) { return _mm512_roundscale_pd(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V sign(V a) {
    const V z = _mm512_setzero_pd();
    const V pos = _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(a, z, _CMP_GT_OQ), _mm512_set1_pd(1.0));
    return _mm512_mask_mov_pd(pos, _mm512_cmp_pd_mask(a, z, _CMP_LT_OQ), _mm512_set1_pd(-1.0));
  }
  static M lt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  static V select(M m, V a, V b) { return _mm512_mask_blend_pd(m, b, a); }
  static M nonzero_bytes(const std::uint8_t* p) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));  // 8 bytes, the rest 0
    return static_cast<M>(_mm_test_epi8_mask(b, b));
  }
  static V zero_unless(M m, V a) { return _mm512_maskz_mov_pd(m, a); }
  static V mul_pow2(V p, V k) { return _mm512_scalef_pd(p, k); }
  static V mul_pow2_subnormal(V p, V k) { return _mm512_scalef_pd(p, k); }
  static V reduce_ln2(V x, V n) {
    return _mm512_fnmadd_pd(n, _mm512_set1_pd(kLn2Lo), _mm512_fnmadd_pd(n, _mm512_set1_pd(kLn2Hi), x));
  }
  static T reduce_add(V v) { return _mm512_reduce_add_pd(v); }
  static T reduce_max(V v) { return _mm512_reduce_max_pd(v); }
  static V widen(V v) { return v; }
  template <int D>
  static V butterfly(V v);
  // Integer lanes.
  static __m512i bits(V v) { return _mm512_castpd_si512(v); }
  static V from_bits(__m512i i) { return _mm512_castsi512_pd(i); }
  static V load_i32(const std::int32_t* p) {
    return _mm512_cvtepi32_pd(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static V load_f32(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
  static void store_f32(float* p, V v) { _mm256_storeu_ps(p, _mm512_cvtpd_ps(v)); }
};

struct F32 {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  using Wide = X2<F64>;
  static constexpr std::size_t L = 16, kBytes = 64;
  static M first(std::size_t k) { return static_cast<M>((1u << k) - 1u); }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(T a) { return _mm512_set1_ps(a); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static V loadn(const T* p, std::size_t k) { return _mm512_maskz_loadu_ps(first(k), p); }
  static void storen(T* p, V v, std::size_t k) { _mm512_mask_storeu_ps(p, first(k), v); }
  static void stream(T* p, V v) { _mm512_stream_ps(p, v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  static V mul_error(V a, V b, V p) { return _mm512_fmsub_ps(a, b, p); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V abs(V a) { return _mm512_abs_ps(a); }
  static V sqrt(V a) { return _mm512_sqrt_ps(a); }
  static V round(V v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V floor(V v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V sign(V a) {
    const V z = _mm512_setzero_ps();
    const V pos = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, z, _CMP_GT_OQ), _mm512_set1_ps(1.0f));
    return _mm512_mask_mov_ps(pos, _mm512_cmp_ps_mask(a, z, _CMP_LT_OQ), _mm512_set1_ps(-1.0f));
  }
  static M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static V select(M m, V a, V b) { return _mm512_mask_blend_ps(m, b, a); }
  static M nonzero_bytes(const std::uint8_t* p) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm_test_epi8_mask(b, b);
  }
  static V zero_unless(M m, V a) { return _mm512_maskz_mov_ps(m, a); }
  // scalef: exact, with gradual underflow, for any k.
  static V mul_pow2(V p, V k) { return _mm512_scalef_ps(p, k); }
  static V reduce_ln2(V x, V n) {
    return _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2LoF32), _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2HiF32), x));
  }
  static T reduce_add(V v) { return _mm512_reduce_add_ps(v); }
  static T reduce_max(V v) { return _mm512_reduce_max_ps(v); }
  static Wide::V widen(V v);
  template <int D>
  static V butterfly(V v);
  // Integer lanes.
  static __m512i bits(V v) { return _mm512_castps_si512(v); }
  static V from_bits(__m512i i) { return _mm512_castsi512_ps(i); }
  static V from_i32(__m512i i) { return _mm512_cvtepi32_ps(i); }
  // Rounds to int32 and stores the L low bytes: the values must fit int8.
  static void store_i8(std::int8_t* q, V v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  }
};

inline F32::Wide::V F32::widen(V v) {
  return {_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1))};
}

template <>
inline F32::V F32::butterfly<1>(V v) {
  const V t = _mm512_permute_ps(v, 0xB1);
  return _mm512_mask_blend_ps(0xAAAA, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
}
template <>
inline F32::V F32::butterfly<2>(V v) {
  const V t = _mm512_permute_ps(v, 0x4E);
  return _mm512_mask_blend_ps(0xCCCC, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
}
template <>
inline F32::V F32::butterfly<4>(V v) {
  const V t = _mm512_shuffle_f32x4(v, v, 0xB1);
  return _mm512_mask_blend_ps(0xF0F0, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
}
template <>
inline F32::V F32::butterfly<8>(V v) {
  const V t = _mm512_shuffle_f32x4(v, v, 0x4E);
  return _mm512_mask_blend_ps(0xFF00, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
}
template <>
inline F64::V F64::butterfly<1>(V v) {
  const V t = _mm512_permute_pd(v, 0x55);
  return _mm512_mask_blend_pd(0xAA, _mm512_add_pd(v, t), _mm512_sub_pd(t, v));
}
template <>
inline F64::V F64::butterfly<2>(V v) {
  const V t = _mm512_permutex_pd(v, 0x4E);
  return _mm512_mask_blend_pd(0xCC, _mm512_add_pd(v, t), _mm512_sub_pd(t, v));
}
template <>
inline F64::V F64::butterfly<4>(V v) {
  const V t = _mm512_shuffle_f64x2(v, v, 0x4E);
  return _mm512_mask_blend_pd(0xF0, _mm512_add_pd(v, t), _mm512_sub_pd(t, v));
}

struct I32 {
  using T = std::uint32_t;
  using V = __m512i;
  static constexpr std::size_t L = 16;
  static V zero() { return _mm512_setzero_si512(); }
  static V set1(T a) { return _mm512_set1_epi32(static_cast<int>(a)); }
  static V iota() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static V load(const T* p) { return _mm512_loadu_si512(p); }
  static void store(T* p, V v) { _mm512_storeu_si512(p, v); }
  static V add(V a, V b) { return _mm512_add_epi32(a, b); }
  static V sub(V a, V b) { return _mm512_sub_epi32(a, b); }
  static V mul(V a, V b) { return _mm512_mullo_epi32(a, b); }
  static V band(V a, V b) { return _mm512_and_si512(a, b); }
  static V bor(V a, V b) { return _mm512_or_si512(a, b); }
  static V bxor(V a, V b) { return _mm512_xor_si512(a, b); }
  template <int K>
  static V shr(V a) {
    return _mm512_srli_epi32(a, K);
  }
  template <int K>
  static V shl(V a) {
    return _mm512_slli_epi32(a, K);
  }
  // Rotate left by 0 < K < 32.
  template <int K>
  static V rotl(V a) {
    return _mm512_rol_epi32(a, K);
  }
  static V max_u(V a, V b) { return _mm512_max_epu32(a, b); }
  static V select(F32::M m, V a, V b) { return _mm512_mask_blend_epi32(m, b, a); }
};

struct I64 {
  using T = std::int64_t;
  using V = __m512i;
  static constexpr std::size_t L = 8;
  static V zero() { return _mm512_setzero_si512(); }
  static V set1(T a) { return _mm512_set1_epi64(a); }
  static V load(const T* p) { return _mm512_loadu_si512(p); }
  static void store(T* p, V v) { _mm512_storeu_si512(p, v); }
  static V add(V a, V b) { return _mm512_add_epi64(a, b); }
  static V sub(V a, V b) { return _mm512_sub_epi64(a, b); }
  static V band(V a, V b) { return _mm512_and_si512(a, b); }
  static V bxor(V a, V b) { return _mm512_xor_si512(a, b); }
  template <int K>
  static V shl(V a) {
    return _mm512_slli_epi64(a, K);
  }
  static F64::M odd(V a) { return _mm512_test_epi64_mask(a, _mm512_set1_epi64(1)); }
  static T reduce_add(V v) { return _mm512_reduce_add_epi64(v); }
};

inline void stream_fence() { _mm_sfence(); }

}  // namespace
}  // namespace numkern::simd
