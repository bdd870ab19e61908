// Norm kernels for AVX-512 (F/BW/DQ/VL): 16 float / 8 double lanes; int8 kernels on 64-byte
// vectors with mask compares, and a saturating down-convert (vpmovsdb) for the int8 output.
#include <cstddef>
#include <cstdint>

#include "common/simd_avx512.h"
#include "common/portable.h"
#include "norm/norm.h"

namespace numkern::norm {
namespace {

#include "norm/norm_kernels.inl"

using simd::I32;
using simd::I64;

// The int8 kernels go through the layer for whole-vector loads and stores and 32/64-bit lane
// arithmetic. The byte-lane instructions (vpsadbw, byte compares and masked byte moves, vpmovsxbd
// widening, vpmovsdb narrowing, vpackssdw / vpacksswb + vpermd packing, the VBMI byte permutes,
// 16-byte and streaming integer stores) stay intrinsics: the layer deliberately has no 8-bit lanes.
I64::V load_bytes(const std::int8_t* p) { return I64::load(reinterpret_cast<const std::int64_t*>(p)); }
void store_bytes(std::int8_t* p, I64::V v) { I64::store(reinterpret_cast<std::int64_t*>(p), v); }
I32::V splat(std::int32_t v) { return I32::set1(static_cast<std::uint32_t>(v)); }

// sum(x) = sum(x + 128) - 128 n; vpsadbw sums the biased (unsigned) bytes into 64-bit lanes.
std::int64_t i8_rsum(const std::int8_t* x, std::size_t n) {
  const I64::V bias = _mm512_set1_epi8(-128), zero = I64::zero();  // a byte broadcast
  I64::V a0 = zero, a1 = zero;
  std::size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    a0 = I64::add(a0, _mm512_sad_epu8(I64::bxor(load_bytes(x + i), bias), zero));
    a1 = I64::add(a1, _mm512_sad_epu8(I64::bxor(load_bytes(x + i + 64), bias), zero));
  }
  for (; i + 64 <= n; i += 64) a0 = I64::add(a0, _mm512_sad_epu8(I64::bxor(load_bytes(x + i), bias), zero));
  std::int64_t s = I64::reduce_add(I64::add(a0, a1)) - 128 * static_cast<std::int64_t>(i);
  if (i < n) {
    const __mmask64 m = _cvtu64_mask64((~0ULL) >> (64 - (n - i)));
    const I64::V v = _mm512_maskz_mov_epi8(m, I64::bxor(_mm512_maskz_loadu_epi8(m, x + i), bias));
    s += I64::reduce_add(_mm512_sad_epu8(v, zero)) - 128 * static_cast<std::int64_t>(n - i);
  }
  return s;
}

void i8_rsumabove(const std::int8_t* x, std::size_t n, std::int32_t t, std::int64_t* sum, std::int64_t* count) {
  const I64::V bias = _mm512_set1_epi8(-128), zero = I64::zero();
  const I64::V vt = _mm512_set1_epi8(static_cast<char>(t));
  I64::V acc = zero;
  std::int64_t c = 0;
  std::size_t i = 0;
  auto step = [&](I64::V v, __mmask64 valid) {
    const __mmask64 m = _mm512_mask_cmpgt_epi8_mask(valid, v, vt);
    c += popcount64(_cvtmask64_u64(m));
    acc = I64::add(acc, _mm512_sad_epu8(_mm512_maskz_mov_epi8(m, I64::bxor(v, bias)), zero));
  };
  for (; i + 64 <= n; i += 64) step(load_bytes(x + i), _cvtu64_mask64(~0ULL));
  if (i < n) {
    const __mmask64 m = _cvtu64_mask64((~0ULL) >> (64 - (n - i)));
    step(_mm512_maskz_loadu_epi8(m, x + i), m);
  }
  *sum = I64::reduce_add(acc) - 128 * c;
  *count = c;
}

// u = clamp(x - t, -u_max, u_max) and (u*g - c) >> k for sixteen int32 lanes. The signed int32
// min / max (vpminsd / vpmaxsd) and the arithmetic shift by a run-time count (vpsrad) are
// intrinsics: the layer's I32 lanes are unsigned, and this requantization is their only user.
I32::V requant_i32(I32::V xi, I32::V vt, I32::V vu, I32::V vnu, I32::V vg, I32::V vc, __m128i vk) {
  const I32::V u = _mm512_max_epi32(_mm512_min_epi32(I32::sub(xi, vt), vu), vnu);
  return _mm512_sra_epi32(I32::sub(I32::mul(u, vg), vc), vk);
}

// Sixteen outputs: requant_i32, then a signed-saturating int32 -> int8 convert (vpmovsdb).
__m128i requant16(__m128i x8, I32::V vt, I32::V vu, I32::V vnu, I32::V vg, I32::V vc, __m128i vk) {
  return _mm512_cvtsepi32_epi8(requant_i32(_mm512_cvtepi8_epi32(x8), vt, vu, vnu, vg, vc, vk));
}

void i8_vrequant(const std::int8_t* x, std::int8_t* y, std::size_t n, std::int32_t t, std::int32_t u_max,
                 std::int32_t g, std::int32_t c, int k, bool stream) {
  const I32::V vt = splat(t), vu = splat(u_max), vnu = splat(-u_max), vg = splat(g), vc = splat(c);
  const __m128i vk = _mm_cvtsi32_si128(k);
  auto masked = [&](std::size_t i, std::size_t len) {
    const __mmask16 m = static_cast<__mmask16>((1u << len) - 1u);
    const __m128i r = requant16(_mm_maskz_loadu_epi8(m, x + i), vt, vu, vnu, vg, vc, vk);
    _mm_mask_storeu_epi8(y + i, m, r);
  };
  // 64 outputs: int32 results packed with signed saturation (in-lane packs, one permute).
  auto calc = [&](const std::int8_t* p) {
    return requant_i32(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), vt, vu, vnu, vg, vc,
                       vk);
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
  for (; i + 64 <= n; i += 64) store_bytes(y + i, block(i));
  for (; i < n; i += 16) masked(i, n - i < 16 ? n - i : 16);
}

// A 256-entry byte table applied with two 128-entry VBMI permutes and a select on the sign bit.
// This one function is compiled for AVX512-VBMI on top of the file's level; the driver calls it only
// when the CPU has VBMI (every AVX-512 CPU since Ice Lake / Zen 4).
struct ByteTable {
  __m512i t0, t1, t2, t3;
};

// (A function, not a lambda: a lambda does not inherit the enclosing function's target attribute.)
NUMKERN_TARGET("avx512vbmi") inline __m512i lut_apply(const ByteTable& t, __m512i v) {
  const __m512i lo = _mm512_permutex2var_epi8(t.t0, v, t.t1), hi = _mm512_permutex2var_epi8(t.t2, v, t.t3);
  return _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi);
}

NUMKERN_TARGET("avx512vbmi")
void i8_vlut(const std::int8_t* x, std::int8_t* y, std::size_t n, const std::int8_t* lut, bool stream) {
  const ByteTable t{load_bytes(lut), load_bytes(lut + 64), load_bytes(lut + 128), load_bytes(lut + 192)};
  std::size_t i = 0;
  if (stream) {
    const std::size_t mis = reinterpret_cast<std::uintptr_t>(y) % 64;
    const std::size_t head = mis ? (64 - mis < n ? 64 - mis : n) : 0;
    if (head) {
      const __mmask64 m = _cvtu64_mask64((~0ULL) >> (64 - head));
      _mm512_mask_storeu_epi8(y, m, lut_apply(t, _mm512_maskz_loadu_epi8(m, x)));
    }
    for (i = head; i + 64 <= n; i += 64)
      _mm512_stream_si512(reinterpret_cast<__m512i*>(y + i), lut_apply(t, load_bytes(x + i)));
  }
  for (; i + 128 <= n; i += 128) {
    store_bytes(y + i, lut_apply(t, load_bytes(x + i)));
    store_bytes(y + i + 64, lut_apply(t, load_bytes(x + i + 64)));
  }
  for (; i + 64 <= n; i += 64) store_bytes(y + i, lut_apply(t, load_bytes(x + i)));
  if (i < n) {
    const __mmask64 m = _cvtu64_mask64((~0ULL) >> (64 - (n - i)));
    _mm512_mask_storeu_epi8(y + i, m, lut_apply(t, _mm512_maskz_loadu_epi8(m, x + i)));
  }
}

}  // namespace

const Kernels kernels_avx512 = {"avx512",
                                NormImpl<simd::F32>::table(),
                                NormImpl<simd::F64>::table(),
                                {&i8_rsum, &i8_rsumabove, &i8_vrequant, &i8_vlut}};

}  // namespace numkern::norm
