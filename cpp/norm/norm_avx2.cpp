// Norm kernels for AVX2+FMA: 8 float / 4 double lanes; int8 kernels on 32-byte vectors.
#include <cstddef>
#include <cstdint>

#include "common/simd_avx2.h"
#include "common/portable.h"
#include "norm/norm.h"

namespace numkern::norm {
namespace {

#include "norm/norm_kernels.inl"

using simd::I32;
using simd::I64;

// The int8 kernels go through the layer for whole-vector loads and 32/64-bit lane arithmetic. The
// byte-lane instructions (vpsadbw, vpcmpgtb + vpmovmskb, vpmovsxbd widening, vpshufb / vpermd
// packing, 8- and 16-byte loads and stores) stay intrinsics: the layer deliberately has no 8-bit lanes.
I64::V load_bytes(const std::int8_t* p) { return I64::load(reinterpret_cast<const std::int64_t*>(p)); }
I32::V splat(std::int32_t v) { return I32::set1(static_cast<std::uint32_t>(v)); }

// sum(x) = sum(x + 128) - 128 n; psadbw sums the biased (unsigned) bytes into 64-bit lanes exactly.
std::int64_t i8_rsum(const std::int8_t* x, std::size_t n) {
  const I64::V bias = _mm256_set1_epi8(-128), zero = I64::zero();  // a byte broadcast
  I64::V acc = zero;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) acc = I64::add(acc, _mm256_sad_epu8(I64::bxor(load_bytes(x + i), bias), zero));
  std::int64_t s = I64::reduce_add(acc) - 128 * static_cast<std::int64_t>(i);
  for (; i < n; ++i) s += x[i];
  return s;
}

void i8_rsumabove(const std::int8_t* x, std::size_t n, std::int32_t t, std::int64_t* sum, std::int64_t* count) {
  const I64::V bias = _mm256_set1_epi8(-128), zero = I64::zero();
  const I64::V vt = _mm256_set1_epi8(static_cast<char>(t));
  I64::V acc = zero;
  std::int64_t c = 0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const I64::V v = load_bytes(x + i);
    const I64::V m = _mm256_cmpgt_epi8(v, vt);
    c += popcount32(static_cast<unsigned>(_mm256_movemask_epi8(m)));
    acc = I64::add(acc, _mm256_sad_epu8(I64::band(m, I64::bxor(v, bias)), zero));
  }
  std::int64_t s = I64::reduce_add(acc) - 128 * c;
  for (; i < n; ++i)
    if (x[i] > t) {
      s += x[i];
      ++c;
    }
  *sum = s;
  *count = c;
}

// Eight outputs: u = clamp(x - t), (u*g - c) >> k in int32, clamped to int8 and packed. The signed
// int32 min / max (vpminsd / vpmaxsd) and the arithmetic shift by a run-time count (vpsrad) are
// intrinsics: the layer's I32 lanes are unsigned, and this requantization is their only user.
__m128i requant8(I32::V xi, I32::V vt, I32::V vu, I32::V vnu, I32::V vg, I32::V vc, __m128i vk) {
  const I32::V u = _mm256_max_epi32(_mm256_min_epi32(I32::sub(xi, vt), vu), vnu);
  I32::V r = _mm256_sra_epi32(I32::sub(I32::mul(u, vg), vc), vk);
  r = _mm256_max_epi32(_mm256_min_epi32(r, splat(127)), splat(-128));
  const __m256i bytes =
      _mm256_shuffle_epi8(r, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                                              -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1)));
}

void i8_vrequant(const std::int8_t* x, std::int8_t* y, std::size_t n, std::int32_t t, std::int32_t u_max,
                 std::int32_t g, std::int32_t c, int k, bool stream) {
  const I32::V vt = splat(t), vu = splat(u_max), vnu = splat(-u_max), vg = splat(g), vc = splat(c);
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
    const __m128i a =
        requant8(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(in))), vt, vu, vnu, vg, vc, vk);
    const __m128i b = requant8(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + 8))), vt, vu,
                               vnu, vg, vc, vk);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi64(a, b));
    for (std::size_t j = 0; j < n - i; ++j) y[i + j] = out[j];
  }
}

}  // namespace

const Kernels kernels_avx2 = {"avx2",
                              NormImpl<simd::F32>::table(),
                              NormImpl<simd::F64>::table(),
                              {&i8_rsum, &i8_rsumabove, &i8_vrequant, nullptr}};

}  // namespace numkern::norm
