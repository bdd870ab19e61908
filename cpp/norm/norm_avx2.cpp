// Norm kernels for AVX2+FMA: 8 float / 4 double lanes; int8 kernels on 32-byte vectors.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "norm/norm.h"

namespace numkern::norm {
namespace {

#include "norm/norm_kernels.inl"

struct F32 {
  using T = float;
  using V = __m256;
  static constexpr std::size_t L = 8;
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(T a) { return _mm256_set1_ps(a); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V acc(V a, V v) { return _mm256_fmadd_ps(v, _mm256_set1_ps(1.0f), a); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static V sign(V a) {
    const V z = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    return _mm256_sub_ps(_mm256_and_ps(_mm256_cmp_ps(a, z, _CMP_GT_OQ), one),
                         _mm256_and_ps(_mm256_cmp_ps(a, z, _CMP_LT_OQ), one));
  }
  static double hsum(V v) {
    __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static constexpr std::size_t kAlign = 32;
  static void stream(T* p, V v) { _mm256_stream_ps(p, v); }
};

struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr std::size_t L = 4;
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(T a) { return _mm256_set1_pd(a); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V acc(V a, V v) { return _mm256_fmadd_pd(v, _mm256_set1_pd(1.0), a); }
  static V abs(V a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
  static V sign(V a) {
    const V z = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    return _mm256_sub_pd(_mm256_and_pd(_mm256_cmp_pd(a, z, _CMP_GT_OQ), one),
                         _mm256_and_pd(_mm256_cmp_pd(a, z, _CMP_LT_OQ), one));
  }
  static double hsum(V v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
  }
  static constexpr std::size_t kAlign = 32;
  static void stream(T* p, V v) { _mm256_stream_pd(p, v); }
};

std::int64_t hsum_epi64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// sum(x) = sum(x + 128) - 128 n; psadbw sums the biased (unsigned) bytes into 64-bit lanes exactly.
std::int64_t i8_rsum(const std::int8_t* x, std::size_t n) {
  const __m256i bias = _mm256_set1_epi8(-128), zero = _mm256_setzero_si256();
  __m256i acc = zero;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), bias);
    acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, zero));
  }
  std::int64_t s = hsum_epi64(acc) - 128 * static_cast<std::int64_t>(i);
  for (; i < n; ++i) s += x[i];
  return s;
}

void i8_rsumabove(const std::int8_t* x, std::size_t n, std::int32_t t, std::int64_t* sum, std::int64_t* count) {
  const __m256i bias = _mm256_set1_epi8(-128), zero = _mm256_setzero_si256();
  const __m256i vt = _mm256_set1_epi8(static_cast<char>(t));
  __m256i acc = zero;
  std::int64_t c = 0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i m = _mm256_cmpgt_epi8(v, vt);
    c += __builtin_popcount(static_cast<unsigned>(_mm256_movemask_epi8(m)));
    acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_and_si256(m, _mm256_xor_si256(v, bias)), zero));
  }
  std::int64_t s = hsum_epi64(acc) - 128 * c;
  for (; i < n; ++i)
    if (x[i] > t) {
      s += x[i];
      ++c;
    }
  *sum = s;
  *count = c;
}

// Eight outputs: u = clamp(x - t), (u*g - c) >> k in int32, clamped to int8 and packed.
__m128i requant8(__m256i xi, __m256i vt, __m256i vu, __m256i vnu, __m256i vg, __m256i vc, __m128i vk) {
  const __m256i u = _mm256_max_epi32(_mm256_min_epi32(_mm256_sub_epi32(xi, vt), vu), vnu);
  __m256i r = _mm256_sra_epi32(_mm256_sub_epi32(_mm256_mullo_epi32(u, vg), vc), vk);
  r = _mm256_max_epi32(_mm256_min_epi32(r, _mm256_set1_epi32(127)), _mm256_set1_epi32(-128));
  const __m256i bytes = _mm256_shuffle_epi8(
      r, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1,
                          -1, -1, -1, -1, -1, -1, -1, -1));
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1)));
}

void i8_vrequant(const std::int8_t* x, std::int8_t* y, std::size_t n, std::int32_t t, std::int32_t u_max,
                 std::int32_t g, std::int32_t c, int k, bool stream) {
  const __m256i vt = _mm256_set1_epi32(t), vu = _mm256_set1_epi32(u_max), vnu = _mm256_set1_epi32(-u_max),
                vg = _mm256_set1_epi32(g), vc = _mm256_set1_epi32(c);
  const __m128i vk = _mm_cvtsi32_si128(k);
  auto two = [&](std::size_t i) {
    const __m128i a = requant8(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i))), vt, vu,
                               vnu, vg, vc, vk);
    const __m128i b = requant8(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i + 8))), vt,
                               vu, vnu, vg, vc, vk);
    return _mm_unpacklo_epi64(a, b);
  };
  std::size_t i = 0;
  if (stream) {
    const std::size_t mis = reinterpret_cast<std::uintptr_t>(y) % 16;
    const std::size_t head = mis ? (16 - mis < n ? 16 - mis : n) : 0;
    for (; i < head; ++i) {
      std::int32_t u = x[i] - t;
      u = u > u_max ? u_max : (u < -u_max ? -u_max : u);
      const std::int32_t v = (u * g - c) >> k;
      y[i] = static_cast<std::int8_t>(v > 127 ? 127 : (v < -128 ? -128 : v));
    }
    for (; i + 16 <= n; i += 16) _mm_stream_si128(reinterpret_cast<__m128i*>(y + i), two(i));
  }
  for (; i + 16 <= n; i += 16) _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), two(i));
  if (i < n) {
    std::int8_t in[16] = {0}, out[16];
    for (std::size_t j = 0; j < n - i; ++j) in[j] = x[i + j];
    const __m128i a = requant8(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(in))), vt, vu,
                               vnu, vg, vc, vk);
    const __m128i b = requant8(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + 8))), vt,
                               vu, vnu, vg, vc, vk);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi64(a, b));
    for (std::size_t j = 0; j < n - i; ++j) y[i + j] = out[j];
  }
}

}  // namespace

const Kernels kernels_avx2 = {"avx2", NormImpl<F32>::table(), NormImpl<F64>::table(),
                              {&i8_rsum, &i8_rsumabove, &i8_vrequant, nullptr}};

}  // namespace numkern::norm
