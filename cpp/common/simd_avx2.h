// The ops layer for AVX2 + FMA (+ F16C, BMI1/2): 8 float / 4 double / 8 int32 / 4 int64 lanes.
//
// Included only by *_avx2.cpp translation units (compiled with the AVX2 flags); see simd_scalar.h for
// the vocabulary every level provides and what each op guarantees.
#pragma once

#include <immintrin.h>

#include "common/simd_base.h"

namespace numkern::simd {
namespace {

constexpr const char* kLevel = "avx2";

struct F64 {
  using T = double;
  using V = __m256d;
  using M = __m256d;
  using Wide = F64;
  static constexpr std::size_t L = 4, kBytes = 32;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(T a) { return _mm256_set1_pd(a); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static __m256i first(std::size_t k) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(k)), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V loadn(const T* p, std::size_t k) { return _mm256_maskload_pd(p, first(k)); }
  static void storen(T* p, V v, std::size_t k) { _mm256_maskstore_pd(p, first(k), v); }
  static void stream(T* p, V v) { _mm256_stream_pd(p, v); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V fnma(V a, V b, V c) { return _mm256_fnmadd_pd(a, b, c); }
  static V mul_error(V a, V b, V p) { return _mm256_fmsub_pd(a, b, p); }
  static V min(V a, V b) { return _mm256_min_pd(a, b); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static V abs(V a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
  static V sqrt(V a) { return _mm256_sqrt_pd(a); }
  static V round(V v) { return _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V floor(V v) { return _mm256_round_pd(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V sign(V a) {
    const V z = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    return _mm256_sub_pd(_mm256_and_pd(_mm256_cmp_pd(a, z, _CMP_GT_OQ), one),
                         _mm256_and_pd(_mm256_cmp_pd(a, z, _CMP_LT_OQ), one));
  }
  static M lt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static V select(M m, V a, V b) { return _mm256_blendv_pd(b, a, m); }
  static M nonzero_bytes(const std::uint8_t* p) {
    std::int32_t four;
    __builtin_memcpy(&four, p, 4);
    const __m256i w = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(four));
    return _mm256_castsi256_pd(_mm256_cmpgt_epi64(w, _mm256_setzero_si256()));
  }
  static V zero_unless(M m, V a) { return _mm256_and_pd(m, a); }
  // p * 2^k for integer-valued k <= 1023, built in the exponent field; k < -1022 gives 0 (a NaN k
  // gives 0 too: callers only form one where p is NaN already).
  static V mul_pow2(V p, V k) {
    k = _mm256_max_pd(k, _mm256_set1_pd(-1023.0));
    const __m256i ki = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(kRoundMagic))),
                                        _mm256_castpd_si256(_mm256_set1_pd(kRoundMagic)));
    const __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(ki, _mm256_set1_epi64x(1023)), 52);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(bits));
  }
  // p * 2^k for integer-valued k in [-2044, 0] with gradual underflow: k = k1 + k2 with both factors
  // normal, so p * 2^k2 stays normal and the product rounds once into the subnormal range.
  static V mul_pow2_subnormal(V p, V k) {
    const V k1 = _mm256_max_pd(k, _mm256_set1_pd(-1022.0));
    const V k2 = _mm256_max_pd(_mm256_sub_pd(k, k1), _mm256_set1_pd(-1022.0));
    return _mm256_mul_pd(_mm256_mul_pd(p, pow2(k2)), pow2(k1));
  }
  static V reduce_ln2(V x, V n) {
    return _mm256_fnmadd_pd(n, _mm256_set1_pd(kLn2Lo), _mm256_fnmadd_pd(n, _mm256_set1_pd(kLn2Hi), x));
  }
  static T reduce_add(V v) {
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static T reduce_max(V v) {
    const __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
  }
  static V widen(V v) { return v; }
  template <int D>
  static V butterfly(V v);
  // Integer lanes.
  static __m256i bits(V v) { return _mm256_castpd_si256(v); }
  static V from_bits(__m256i i) { return _mm256_castsi256_pd(i); }
  // Loads L int32 and converts them exactly.
  static V load_i32(const std::int32_t* p) {
    return _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  // Rounds to float and stores L floats.
  // Loads L floats and converts them (exactly).
  static V load_f32(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
  static void store_f32(float* p, V v) { _mm_storeu_ps(p, _mm256_cvtpd_ps(v)); }

 private:
  // 2^k for integer-valued k in [-1022, 1023].
  static V pow2(V k) {
    const __m256i ki = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(kRoundMagic))),
                                        _mm256_castpd_si256(_mm256_set1_pd(kRoundMagic)));
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(ki, _mm256_set1_epi64x(1023)), 52));
  }
};

struct F32 {
  using T = float;
  using V = __m256;
  using M = __m256;  // all-ones / all-zeros lanes
  using Wide = X2<F64>;
  static constexpr std::size_t L = 8, kBytes = 32;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(T a) { return _mm256_set1_ps(a); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static __m256i first(std::size_t k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V loadn(const T* p, std::size_t k) { return _mm256_maskload_ps(p, first(k)); }
  static void storen(T* p, V v, std::size_t k) { _mm256_maskstore_ps(p, first(k), v); }
  static void stream(T* p, V v) { _mm256_stream_ps(p, v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V fnma(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
  static V mul_error(V a, V b, V p) { return _mm256_fmsub_ps(a, b, p); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static V sqrt(V a) { return _mm256_sqrt_ps(a); }
  static V round(V v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V floor(V v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V sign(V a) {
    const V z = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    return _mm256_sub_ps(_mm256_and_ps(_mm256_cmp_ps(a, z, _CMP_GT_OQ), one),
                         _mm256_and_ps(_mm256_cmp_ps(a, z, _CMP_LT_OQ), one));
  }
  static M lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static V select(M m, V a, V b) { return _mm256_blendv_ps(b, a, m); }
  static M nonzero_bytes(const std::uint8_t* p) {
    const __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(w, _mm256_setzero_si256()));
  }
  static V zero_unless(M m, V a) { return _mm256_and_ps(m, a); }
  // p * 2^k for integer-valued k <= 127, built in the exponent field; k < -126 gives 0.
  static V mul_pow2(V p, V k) {
    k = _mm256_max_ps(k, _mm256_set1_ps(-127.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  }
  static V reduce_ln2(V x, V n) {
    return _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2LoF32), _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2HiF32), x));
  }
  static T reduce_add(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static T reduce_max(V v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
  static Wide::V widen(V v);
  template <int D>
  static V butterfly(V v);
  // Integer lanes.
  static __m256i bits(V v) { return _mm256_castps_si256(v); }
  static V from_bits(__m256i i) { return _mm256_castsi256_ps(i); }
  static V from_i32(__m256i i) { return _mm256_cvtepi32_ps(i); }
  // Rounds to int32 and stores the L low bytes: the values must fit int8.
  static void store_i8(std::int8_t* q, V v) {
    const __m256i i = _mm256_cvtps_epi32(v);
    const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q), _mm_packs_epi16(p16, p16));
  }
};

inline F32::Wide::V F32::widen(V v) {
  return {_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))};
}

// The butterfly of lanes D apart: lane i gets v[i] + v[i^D] where bit D of i is clear, else
// v[i^D] - v[i]. Applied for D = 1, 2, ..., L/2 it is the L-point Walsh-Hadamard transform.
template <>
inline F32::V F32::butterfly<1>(V v) {
  const V t = _mm256_permute_ps(v, 0xB1);
  return _mm256_blend_ps(_mm256_add_ps(v, t), _mm256_sub_ps(t, v), 0xAA);
}
template <>
inline F32::V F32::butterfly<2>(V v) {
  const V t = _mm256_permute_ps(v, 0x4E);
  return _mm256_blend_ps(_mm256_add_ps(v, t), _mm256_sub_ps(t, v), 0xCC);
}
template <>
inline F32::V F32::butterfly<4>(V v) {
  const V t = _mm256_permute2f128_ps(v, v, 0x01);
  return _mm256_blend_ps(_mm256_add_ps(v, t), _mm256_sub_ps(t, v), 0xF0);
}
template <>
inline F64::V F64::butterfly<1>(V v) {
  const V t = _mm256_permute_pd(v, 0x5);
  return _mm256_blend_pd(_mm256_add_pd(v, t), _mm256_sub_pd(t, v), 0xA);
}
template <>
inline F64::V F64::butterfly<2>(V v) {
  const V t = _mm256_permute2f128_pd(v, v, 0x01);
  return _mm256_blend_pd(_mm256_add_pd(v, t), _mm256_sub_pd(t, v), 0xC);
}

struct I32 {
  using T = std::uint32_t;
  using V = __m256i;
  static constexpr std::size_t L = 8;
  static V zero() { return _mm256_setzero_si256(); }
  static V set1(T a) { return _mm256_set1_epi32(static_cast<int>(a)); }
  static V iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }  // lane j holds j
  static V load(const T* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(T* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static V add(V a, V b) { return _mm256_add_epi32(a, b); }
  static V sub(V a, V b) { return _mm256_sub_epi32(a, b); }
  static V mul(V a, V b) { return _mm256_mullo_epi32(a, b); }  // low 32 bits
  static V band(V a, V b) { return _mm256_and_si256(a, b); }
  static V bor(V a, V b) { return _mm256_or_si256(a, b); }
  static V bxor(V a, V b) { return _mm256_xor_si256(a, b); }
  template <int K>
  static V shr(V a) {
    return _mm256_srli_epi32(a, K);
  }  // logical
  template <int K>
  static V shl(V a) {
    return _mm256_slli_epi32(a, K);
  }
  // Rotate left by 0 < K < 32.
  template <int K>
  static V rotl(V a) {
    return _mm256_or_si256(_mm256_slli_epi32(a, K), _mm256_srli_epi32(a, 32 - K));
  }
  static V max_u(V a, V b) { return _mm256_max_epu32(a, b); }
  static V select(F32::M m, V a, V b) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
  }
};

struct I64 {
  using T = std::int64_t;
  using V = __m256i;
  static constexpr std::size_t L = 4;
  static V zero() { return _mm256_setzero_si256(); }
  static V set1(T a) { return _mm256_set1_epi64x(a); }
  static V load(const T* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(T* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static V add(V a, V b) { return _mm256_add_epi64(a, b); }
  static V sub(V a, V b) { return _mm256_sub_epi64(a, b); }
  static V band(V a, V b) { return _mm256_and_si256(a, b); }
  static V bxor(V a, V b) { return _mm256_xor_si256(a, b); }
  template <int K>
  static V shl(V a) {
    return _mm256_slli_epi64(a, K);
  }
  // Lanes whose lowest bit is set, as a mask of the double lanes (all-ones / all-zeros).
  static F64::M odd(V a) {
    return _mm256_castsi256_pd(_mm256_sub_epi64(_mm256_setzero_si256(), _mm256_and_si256(a, _mm256_set1_epi64x(1))));
  }
  static T reduce_add(V v) {
    const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
  }
};

inline void stream_fence() { _mm_sfence(); }

}  // namespace
}  // namespace numkern::simd
