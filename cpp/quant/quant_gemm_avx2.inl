// AVX2 GEMM over sign-extended int16 pairs (vpmaddwd), included inside the anonymous namespace of
// quant_avx2.cpp. Why int16 and not vpmaddubsw: vpmaddubsw saturates its pair sums to int16, and
// with a = b = -128 a pair is 2 * 128 * 128 = 32768 > 32767, so it is not exact on the full s8
// range. vpmaddwd on sign-extended bytes forms a0*b0 + a1*b1 in int32 with |.| <= 2^15: it cannot
// saturate (that needs both pairs at -32768), and has the same MACs per instruction pair as
// vpmaddubsw + vpmaddwd. The K-block sum |.| <= kc * 2^14 < 2^31 for kc < 2^17.
//
// Raw intrinsics throughout: packing and the micro-kernel work on byte and int16 lanes (vpmovsxbw,
// vpmaddwd, 32-bit broadcasts of int16 pairs), which the SIMD ops layer deliberately does not wrap
// (it has float lanes and 32/64-bit integer lanes only); the kernel is specific to this packing.

constexpr int MR = 6, NR = 16, KU = 2;

// out: [k/2][MR][2] int16; rows >= m and the K tail are 0. Eight pairs of a row at a time are
// sign-extended in one register and scattered as 32-bit words.
void pack_a(const std::int8_t* a, std::int64_t lda, std::int64_t m, std::int64_t k, void* out_) {
  auto* out = static_cast<std::int32_t*>(out_);
  const std::int64_t kp = (k + 1) / 2, kfull = k / 16;  // kfull: runs of 8 whole pairs
  for (int r = 0; r < MR; ++r) {
    std::int32_t* o = out + r;
    const std::int8_t* row = a + r * lda;
    std::int64_t p = 0;
    if (r < m) {
      for (std::int64_t c = 0; c < kfull; ++c, p += 8) {
        alignas(32) std::int32_t w[8];
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * p));
        _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_cvtepi8_epi16(bytes));
        for (int i = 0; i < 8; ++i) o[(p + i) * MR] = w[i];
      }
    }
    for (; p < kp; ++p) {
      const std::int16_t lo = r < m ? row[2 * p] : 0;
      const std::int16_t hi = (r < m && 2 * p + 1 < k) ? row[2 * p + 1] : 0;
      o[p * MR] = static_cast<std::int32_t>(static_cast<std::uint16_t>(lo) |
                                            (static_cast<std::uint32_t>(static_cast<std::uint16_t>(hi)) << 16));
    }
  }
}

// Each panel: [k/2][NR][2] int16 (zero padded). Row pairs outer, panels inner, so B is read
// sequentially whatever its width.
void pack_b(const std::int8_t* b, std::int64_t ldb, std::int64_t n, std::int64_t k, void* out_, std::int64_t stride) {
  const std::int64_t kp = (k + 1) / 2;
  for (std::int64_t p = 0; p < kp; ++p)
    for (std::int64_t j0 = 0; j0 < n; j0 += NR) {
      auto* out = reinterpret_cast<std::int16_t*>(static_cast<char*>(out_) + (j0 / NR) * stride);
      __m128i r[2];
      load_rows<2>(b, ldb, 2 * p, k, j0, n, r);
      const __m128i lo = _mm_unpacklo_epi8(r[0], r[1]), hi = _mm_unpackhi_epi8(r[0], r[1]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + p * NR * 2), _mm256_cvtepi8_epi16(lo));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + p * NR * 2 + 16), _mm256_cvtepi8_epi16(hi));
    }
}

void ukernel(std::int64_t k, const void* ap_, const void* bp_, std::int32_t* c, std::int64_t ldc, int accumulate) {
  const auto* ap = static_cast<const std::int32_t*>(ap_);
  const auto* bp = static_cast<const std::int16_t*>(bp_);
  const std::int64_t kp = k / 2;
  __m256i c0[MR], c1[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) c0[r] = c1[r] = _mm256_setzero_si256();
  for (std::int64_t p = 0; p < kp; ++p) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + p * NR * 2));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + p * NR * 2 + 16));
    const std::int32_t* a = ap + p * MR;
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(a[r]);
      c0[r] = _mm256_add_epi32(c0[r], _mm256_madd_epi16(av, b0));
      c1[r] = _mm256_add_epi32(c1[r], _mm256_madd_epi16(av, b1));
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    auto* cr = reinterpret_cast<__m256i*>(c + r * ldc);
    if (accumulate) {
      c0[r] = _mm256_add_epi32(c0[r], _mm256_loadu_si256(cr));
      c1[r] = _mm256_add_epi32(c1[r], _mm256_loadu_si256(cr + 1));
    }
    _mm256_storeu_si256(cr, c0[r]);
    _mm256_storeu_si256(cr + 1, c1[r]);
  }
}
