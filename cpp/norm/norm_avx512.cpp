// Norm kernels for AVX-512 (F/BW/DQ/VL): 16 float / 8 double lanes; int8 kernels on 64-byte
// vectors with mask compares, and a saturating down-convert (vpmovsdb) for the int8 output.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "norm/norm.h"

namespace numkern::norm {
namespace {

#include "norm/norm_kernels.inl"

struct F32 {
  using T = float;
  using V = __m512;
  static constexpr std::size_t L = 16;
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(T a) { return _mm512_set1_ps(a); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V acc(V a, V v) { return _mm512_fmadd_ps(v, _mm512_set1_ps(1.0f), a); }
  static V abs(V a) { return _mm512_abs_ps(a); }
  static V sign(V a) {
    const V z = _mm512_setzero_ps();
    const V pos = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, z, _CMP_GT_OQ), _mm512_set1_ps(1.0f));
    return _mm512_mask_mov_ps(pos, _mm512_cmp_ps_mask(a, z, _CMP_LT_OQ), _mm512_set1_ps(-1.0f));
  }
  static double hsum(V v) {
    const __m512d d = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
    return _mm512_reduce_add_pd(d);
  }
  static constexpr std::size_t kAlign = 64;
  static void stream(T* p, V v) { _mm512_stream_ps(p, v); }
};

struct F64 {
  using T = double;
  using V = __m512d;
  static constexpr std::size_t L = 8;
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static V set1(T a) { return _mm512_set1_pd(a); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V acc(V a, V v) { return _mm512_fmadd_pd(v, _mm512_set1_pd(1.0), a); }
  static V abs(V a) { return _mm512_abs_pd(a); }
  static V sign(V a) {
    const V z = _mm512_setzero_pd();
    const V pos = _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(a, z, _CMP_GT_OQ), _mm512_set1_pd(1.0));
    return _mm512_mask_mov_pd(pos, _mm512_cmp_pd_mask(a, z, _CMP_LT_OQ), _mm512_set1_pd(-1.0));
  }
  static double hsum(V v) { return _mm512_reduce_add_pd(v); }
  static constexpr std::size_t kAlign = 64;
  static void stream(T* p, V v) { _mm512_stream_pd(p, v); }
};

// sum(x) = sum(x + 128) - 128 n; vpsadbw sums the biased (unsigned) bytes into 64-bit lanes.
std::int64_t i8_rsum(const std::int8_t* x, std::size_t n) {
  const __m512i bias = _mm512_set1_epi8(-128), zero = _mm512_setzero_si512();
  __m512i a0 = zero, a1 = zero;
  std::size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    a0 = _mm512_add_epi64(a0, _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(x + i), bias), zero));
    a1 = _mm512_add_epi64(a1, _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(x + i + 64), bias), zero));
  }
  for (; i + 64 <= n; i += 64)
    a0 = _mm512_add_epi64(a0, _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(x + i), bias), zero));
  std::int64_t s = _mm512_reduce_add_epi64(_mm512_add_epi64(a0, a1)) - 128 * static_cast<std::int64_t>(i);
  if (i < n) {
    const __mmask64 m = _cvtu64_mask64((~0ULL) >> (64 - (n - i)));
    const __m512i v = _mm512_maskz_mov_epi8(m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + i), bias));
    s += _mm512_reduce_add_epi64(_mm512_sad_epu8(v, zero)) - 128 * static_cast<std::int64_t>(n - i);
  }
  return s;
}

void i8_rsumabove(const std::int8_t* x, std::size_t n, std::int32_t t, std::int64_t* sum, std::int64_t* count) {
  const __m512i bias = _mm512_set1_epi8(-128), zero = _mm512_setzero_si512();
  const __m512i vt = _mm512_set1_epi8(static_cast<char>(t));
  __m512i acc = zero;
  std::int64_t c = 0;
  std::size_t i = 0;
  auto step = [&](__m512i v, __mmask64 valid) {
    const __mmask64 m = _mm512_mask_cmpgt_epi8_mask(valid, v, vt);
    c += __builtin_popcountll(_cvtmask64_u64(m));
    acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_maskz_mov_epi8(m, _mm512_xor_si512(v, bias)), zero));
  };
  for (; i + 64 <= n; i += 64) step(_mm512_loadu_si512(x + i), _cvtu64_mask64(~0ULL));
  if (i < n) {
    const __mmask64 m = _cvtu64_mask64((~0ULL) >> (64 - (n - i)));
    step(_mm512_maskz_loadu_epi8(m, x + i), m);
  }
  *sum = _mm512_reduce_add_epi64(acc) - 128 * c;
  *count = c;
}

// Sixteen outputs: u = clamp(x - t), (u*g - c) >> k in int32, then a signed-saturating
// int32 -> int8 convert (vpmovsdb).
__m128i requant16(__m128i x8, __m512i vt, __m512i vu, __m512i vnu, __m512i vg, __m512i vc, __m128i vk) {
  const __m512i u = _mm512_max_epi32(_mm512_min_epi32(_mm512_sub_epi32(_mm512_cvtepi8_epi32(x8), vt), vu), vnu);
  return _mm512_cvtsepi32_epi8(_mm512_sra_epi32(_mm512_sub_epi32(_mm512_mullo_epi32(u, vg), vc), vk));
}

void i8_vrequant(const std::int8_t* x, std::int8_t* y, std::size_t n, std::int32_t t, std::int32_t u_max,
                 std::int32_t g, std::int32_t c, int k, bool stream) {
  const __m512i vt = _mm512_set1_epi32(t), vu = _mm512_set1_epi32(u_max), vnu = _mm512_set1_epi32(-u_max),
                vg = _mm512_set1_epi32(g), vc = _mm512_set1_epi32(c);
  const __m128i vk = _mm_cvtsi32_si128(k);
  auto masked = [&](std::size_t i, std::size_t len) {
    const __mmask16 m = static_cast<__mmask16>((1u << len) - 1u);
    const __m128i r = requant16(_mm_maskz_loadu_epi8(m, x + i), vt, vu, vnu, vg, vc, vk);
    _mm_mask_storeu_epi8(y + i, m, r);
  };
  // 64 outputs: int32 results packed with signed saturation (in-lane packs, one permute).
  auto calc = [&](const std::int8_t* p) {
    const __m512i u = _mm512_max_epi32(
        _mm512_min_epi32(_mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), vt), vu),
        vnu);
    return _mm512_sra_epi32(_mm512_sub_epi32(_mm512_mullo_epi32(u, vg), vc), vk);
  };
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  auto block = [&](std::size_t i) {
    const __m512i ab = _mm512_packs_epi32(calc(x + i), calc(x + i + 16));
    const __m512i cd = _mm512_packs_epi32(calc(x + i + 32), calc(x + i + 48));
    return _mm512_permutexvar_epi32(order, _mm512_packs_epi16(ab, cd));
  };
  std::size_t i = 0;
  if (stream) {
    const std::size_t mis = reinterpret_cast<std::uintptr_t>(y) % 64;
    std::size_t head = mis ? (64 - mis < n ? 64 - mis : n) : 0;
    for (; i < head; i += 16) masked(i, head - i < 16 ? head - i : 16);
    i = head;
    for (; i + 64 <= n; i += 64) _mm512_stream_si512(reinterpret_cast<__m512i*>(y + i), block(i));
  }
  for (; i + 64 <= n; i += 64) _mm512_storeu_si512(y + i, block(i));
  for (; i < n; i += 16) masked(i, n - i < 16 ? n - i : 16);
}

// A 256-entry byte table applied with two 128-entry VBMI permutes and a select on the sign bit.
// This one function is compiled for AVX512-VBMI on top of the file's level; the driver calls it only
// when the CPU has VBMI (every AVX-512 CPU since Ice Lake / Zen 4).
struct ByteTable {
  __m512i t0, t1, t2, t3;
};

// (A function, not a lambda: a lambda does not inherit the enclosing function's target attribute.)
__attribute__((target("avx512vbmi"))) inline __m512i lut_apply(const ByteTable& t, __m512i v) {
  const __m512i lo = _mm512_permutex2var_epi8(t.t0, v, t.t1), hi = _mm512_permutex2var_epi8(t.t2, v, t.t3);
  return _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi);
}

__attribute__((target("avx512vbmi"))) void i8_vlut(const std::int8_t* x, std::int8_t* y, std::size_t n,
                                                   const std::int8_t* lut, bool stream) {
  const ByteTable t{_mm512_loadu_si512(lut), _mm512_loadu_si512(lut + 64), _mm512_loadu_si512(lut + 128),
                    _mm512_loadu_si512(lut + 192)};
  std::size_t i = 0;
  if (stream) {
    const std::size_t mis = reinterpret_cast<std::uintptr_t>(y) % 64;
    const std::size_t head = mis ? (64 - mis < n ? 64 - mis : n) : 0;
    if (head) {
      const __mmask64 m = _cvtu64_mask64((~0ULL) >> (64 - head));
      _mm512_mask_storeu_epi8(y, m, lut_apply(t, _mm512_maskz_loadu_epi8(m, x)));
    }
    for (i = head; i + 64 <= n; i += 64) _mm512_stream_si512(reinterpret_cast<__m512i*>(y + i), lut_apply(t, _mm512_loadu_si512(x + i)));
  }
  for (; i + 128 <= n; i += 128) {
    _mm512_storeu_si512(y + i, lut_apply(t, _mm512_loadu_si512(x + i)));
    _mm512_storeu_si512(y + i + 64, lut_apply(t, _mm512_loadu_si512(x + i + 64)));
  }
  for (; i + 64 <= n; i += 64) _mm512_storeu_si512(y + i, lut_apply(t, _mm512_loadu_si512(x + i)));
  if (i < n) {
    const __mmask64 m = _cvtu64_mask64((~0ULL) >> (64 - (n - i)));
    _mm512_mask_storeu_epi8(y + i, m, lut_apply(t, _mm512_maskz_loadu_epi8(m, x + i)));
  }
}

}  // namespace

const Kernels kernels_avx512 = {"avx512", NormImpl<F32>::table(), NormImpl<F64>::table(),
                                {&i8_rsum, &i8_rsumabove, &i8_vrequant, &i8_vlut}};

}  // namespace numkern::norm
