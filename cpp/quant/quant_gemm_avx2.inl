// AVX2 GEMM over sign-extended int16 pairs (vpmaddwd), included inside the anonymous namespace of
// quant_avx2.cpp. Why int16 and not vpmaddubsw: vpmaddubsw saturates its pair sums to int16, and
// with a = b = -128 a pair is 2 * 128 * 128 = 32768 > 32767, so it is not exact on the full s8
// range. vpmaddwd on sign-extended bytes forms a0*b0 + a1*b1 in int32 with |.| <= 2^15: it cannot
// saturate (that needs both pairs at -32768), and has the same MACs per instruction pair as
// vpmaddubsw + vpmaddwd. The K-block sum |.| <= kc * 2^14 < 2^31 for kc < 2^17.

constexpr int MR = 6, NR = 16, KU = 2;

// out: [k/2][MR][2] int16; rows >= m and the K tail are 0.
void pack_a(const std::int8_t* a, std::int64_t lda, std::int64_t m, std::int64_t k, void* out_) {
  auto* out = static_cast<std::int16_t*>(out_);
  const std::int64_t kp = (k + 1) / 2;
  for (int r = 0; r < MR; ++r) {
    std::int16_t* o = out + 2 * r;
    const std::int8_t* row = a + r * lda;
    for (std::int64_t p = 0; p < kp; ++p) {
      const bool valid = r < m;
      o[p * MR * 2] = valid ? row[2 * p] : 0;
      o[p * MR * 2 + 1] = (valid && 2 * p + 1 < k) ? row[2 * p + 1] : 0;
    }
  }
}

// out: [k/2][NR][2] int16 (zero padded).
void pack_b(const std::int8_t* b, std::int64_t ldb, std::int64_t n, std::int64_t k, void* out_) {
  auto* out = static_cast<std::int16_t*>(out_);
  const std::int64_t kp = (k + 1) / 2;
  for (std::int64_t p = 0; p < kp; ++p) {
    __m128i r[2];
    load_rows<2>(b, ldb, 2 * p, k, 0, n, r);
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
