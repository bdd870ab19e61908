// s8 x s8 -> s32 GEMM with AVX-512 VNNI (vpdpbusd). vpdpbusd multiplies unsigned by signed bytes, so
// A is packed as a + 128 (u8) and each K-block of B carries -128 * colsum(B) (the offset
// correction), which the micro-kernel takes as its starting value:
//   sum_k (a_k + 128) b_k - 128 sum_k b_k = sum_k a_k b_k.
// Every step is exact modulo 2^32 (vpdpbusd wraps, never saturates), so the block result is exact
// whenever the true block sum fits int32: |sum| <= kc * 128 * 128 < 2^31 for kc < 2^17.
//
// Raw intrinsics throughout: vpdpbusd (u8 x s8 dot products of byte quads), the byte and word
// unpacks of the packing and the 32-bit broadcasts of packed byte quads are byte-lane integer work
// that the SIMD ops layer deliberately does not wrap, and the int32 adds, shifts and stores around
// them belong to the same packed layout (the offset correction), so they stay with it.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "common/simd_avx512.h"
#include "quant/quant.h"

namespace numkern::quant {
namespace {

#include "quant/quant_gemm_pack.inl"

constexpr int MR = 12, NR = 32, KU = 4;

// out: [k/4][MR] words of 4 bytes (a + 128); rows >= m and k beyond the end hold 0x80 (a = 0).
void pack_a(const std::int8_t* a, std::int64_t lda, std::int64_t m, std::int64_t k, void* out_) {
  auto* out = static_cast<std::uint32_t*>(out_);
  const std::int64_t kq = (k + 3) / 4, kfull = k / 4;
  for (int r = 0; r < MR; ++r) {
    std::uint32_t* o = out + r;
    if (r >= m) {
      for (std::int64_t q = 0; q < kq; ++q) o[q * MR] = 0x80808080u;
      continue;
    }
    const std::int8_t* row = a + r * lda;
    for (std::int64_t q = 0; q < kfull; ++q) {
      std::uint32_t w;
      __builtin_memcpy(&w, row + 4 * q, 4);
      o[q * MR] = w ^ 0x80808080u;
    }
    if (kfull < kq) {
      std::uint32_t w = 0;
      __builtin_memcpy(&w, row + 4 * kfull, static_cast<std::size_t>(k - 4 * kfull));
      o[kfull * MR] = w ^ 0x80808080u;
    }
  }
}

// Each panel: [k/4][NR][4] bytes of B (zero padded), then NR int32 corrections -128 * colsum.
// Row quads outer, panels inner: B is read row by row (each cache line once), each panel receives
// 128 contiguous bytes per quad, and the column sums (vpdpbusd against ones) live in the panels'
// correction slots meanwhile. Full quads go 64 columns at a time: one 512-bit load per row, the byte
// and word unpacks within 128-bit lanes, then a 4 x 4 transpose of the lanes (16 columns each).
void pack_b(const std::int8_t* b, std::int64_t ldb, std::int64_t n, std::int64_t k, void* out_, std::int64_t stride) {
  auto* out = static_cast<std::int8_t*>(out_);
  const std::int64_t kq = (k + 3) / 4, np = (n + NR - 1) / NR;
  const __m512i ones = _mm512_set1_epi8(1);
  constexpr std::int64_t kAhead = 8;  // quads: about a DRAM latency of packing work
  auto corr = [&](std::int64_t p) { return reinterpret_cast<std::int32_t*>(out + p * stride + kq * NR * 4); };
  // Quads of columns [c, c + 16) of row quad q, as the 64 bytes of their panel's group.
  auto put = [&](std::int64_t q, std::int64_t c, __m512i v) {
    const std::int64_t p = c / NR, g = (c % NR) / 16;
    _mm512_storeu_si512(out + p * stride + q * NR * 4 + 64 * g, v);
    std::int32_t* cs = corr(p) + 16 * g;
    _mm512_storeu_si512(cs, _mm512_dpbusd_epi32(_mm512_loadu_si512(cs), ones, v));
  };
  for (std::int64_t p = 0; p < np; ++p)
    for (int g = 0; g < NR / 16; ++g) _mm512_storeu_si512(corr(p) + 16 * g, _mm512_setzero_si512());
  for (std::int64_t q = 0; q < kq; ++q) {
    // The rows of a strip are short runs at a large stride, which the hardware prefetchers miss.
    if (4 * q + 4 * kAhead + 3 < k)
      for (std::int64_t r = 4 * kAhead; r < 4 * kAhead + 4; ++r)
        for (std::int64_t j = 0; j < n; j += 64)
          _mm_prefetch(reinterpret_cast<const char*>(b + (4 * q + r) * ldb + j), _MM_HINT_T0);
    std::int64_t c = 0;
    if (4 * q + 4 <= k) {
      const std::int8_t* src = b + 4 * q * ldb;
      for (; c + 64 <= n; c += 64) {
        const __m512i r0 = _mm512_loadu_si512(src + c), r1 = _mm512_loadu_si512(src + ldb + c);
        const __m512i r2 = _mm512_loadu_si512(src + 2 * ldb + c), r3 = _mm512_loadu_si512(src + 3 * ldb + c);
        const __m512i t01l = _mm512_unpacklo_epi8(r0, r1), t01h = _mm512_unpackhi_epi8(r0, r1);
        const __m512i t23l = _mm512_unpacklo_epi8(r2, r3), t23h = _mm512_unpackhi_epi8(r2, r3);
        // Lane l of w0..w3: the quads of columns 16 l + [0, 4), [4, 8), [8, 12), [12, 16).
        const __m512i w0 = _mm512_unpacklo_epi16(t01l, t23l), w1 = _mm512_unpackhi_epi16(t01l, t23l);
        const __m512i w2 = _mm512_unpacklo_epi16(t01h, t23h), w3 = _mm512_unpackhi_epi16(t01h, t23h);
        const __m512i lo01 = _mm512_shuffle_i64x2(w0, w1, 0x44), lo23 = _mm512_shuffle_i64x2(w2, w3, 0x44);
        const __m512i hi01 = _mm512_shuffle_i64x2(w0, w1, 0xEE), hi23 = _mm512_shuffle_i64x2(w2, w3, 0xEE);
        put(q, c, _mm512_shuffle_i64x2(lo01, lo23, 0x88));
        put(q, c + 16, _mm512_shuffle_i64x2(lo01, lo23, 0xDD));
        put(q, c + 32, _mm512_shuffle_i64x2(hi01, hi23, 0x88));
        put(q, c + 48, _mm512_shuffle_i64x2(hi01, hi23, 0xDD));
      }
    }
    for (; c < np * NR; c += 16) {  // the last quad (k ragged) and the last columns, zero padded
      __m128i r[4];
      load_rows<4>(b, ldb, 4 * q, k, c, n, r);
      const __m128i t01l = _mm_unpacklo_epi8(r[0], r[1]), t01h = _mm_unpackhi_epi8(r[0], r[1]);
      const __m128i t23l = _mm_unpacklo_epi8(r[2], r[3]), t23h = _mm_unpackhi_epi8(r[2], r[3]);
      __m512i v = _mm512_castsi128_si512(_mm_unpacklo_epi16(t01l, t23l));
      v = _mm512_inserti32x4(v, _mm_unpackhi_epi16(t01l, t23l), 1);
      v = _mm512_inserti32x4(v, _mm_unpacklo_epi16(t01h, t23h), 2);
      v = _mm512_inserti32x4(v, _mm_unpackhi_epi16(t01h, t23h), 3);
      put(q, c, v);
    }
  }
  for (std::int64_t p = 0; p < np; ++p)
    for (int g = 0; g < NR / 16; ++g) {
      std::int32_t* cs = corr(p) + 16 * g;
      _mm512_storeu_si512(cs, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(_mm512_loadu_si512(cs), 7)));
    }
}

void ukernel(std::int64_t k, const void* ap_, const void* bp_, std::int32_t* c, std::int64_t ldc, int accumulate) {
  const auto* ap = static_cast<const std::int32_t*>(ap_);
  const auto* bp = static_cast<const std::int8_t*>(bp_);
  const std::int64_t kq = k / 4;
  const auto* corr = reinterpret_cast<const std::int32_t*>(bp + kq * NR * 4);
  const __m512i z0 = _mm512_loadu_si512(corr), z1 = _mm512_loadu_si512(corr + 16);
  __m512i c0[MR], c1[MR];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    c0[r] = z0;
    c1[r] = z1;
  }
  for (std::int64_t q = 0; q < kq; ++q) {
    const __m512i b0 = _mm512_loadu_si512(bp + q * NR * 4), b1 = _mm512_loadu_si512(bp + q * NR * 4 + 64);
    const std::int32_t* a = ap + q * MR;
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512i av = _mm512_set1_epi32(a[r]);
      c0[r] = _mm512_dpbusd_epi32(c0[r], av, b0);
      c1[r] = _mm512_dpbusd_epi32(c1[r], av, b1);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    std::int32_t* cr = c + r * ldc;
    if (accumulate) {
      c0[r] = _mm512_add_epi32(c0[r], _mm512_loadu_si512(cr));
      c1[r] = _mm512_add_epi32(c1[r], _mm512_loadu_si512(cr + 16));
    }
    _mm512_storeu_si512(cr, c0[r]);
    _mm512_storeu_si512(cr + 16, c1[r]);
  }
}

}  // namespace

extern const GemmKernels kernels_avx512vnni_gemm = {
    "s8gemm_avx512vnni_12x32", MR, NR, KU, 1, 1, true, 2048, pack_a, pack_b, ukernel};

}  // namespace numkern::quant
