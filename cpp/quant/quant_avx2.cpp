// AVX2 level of the quant family: the int16-pair GEMM (quant_gemm_avx2.inl) and the quantizer.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "quant/quant.h"

namespace numkern::quant {
namespace {

#include "quant/quant_gemm_pack.inl"
#include "quant/quant_gemm_avx2.inl"

#define NUMKERN_QUANT_VECTOR 1
#include "quant/quant_kernels.inl"

struct VT {
  using V = __m256;
  using I = __m256i;
  static constexpr int L = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V set1(float a) { return _mm256_set1_ps(a); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V floor(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V rne(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I absbits(const float* p) {
    return _mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(p)), _mm256_set1_epi32(0x7fffffff));
  }
  static I loadi(const std::uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void storei(std::uint32_t* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static I zeroi() { return _mm256_setzero_si256(); }
  static I set1i(std::uint32_t a) { return _mm256_set1_epi32(static_cast<int>(a)); }
  static I lanes() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
  static I maxi(I a, I b) { return _mm256_max_epu32(a, b); }
  static I addi(I a, I b) { return _mm256_add_epi32(a, b); }
  static I xori(I a, I b) { return _mm256_xor_si256(a, b); }
  static I mix(I x) {
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32(static_cast<int>(0x846ca68bu)));
    return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
  }
  static V uniform(I h) { return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(h, 8)), _mm256_set1_ps(0x1p-24f)); }
  static V add_one_if_less(V fl, V u, V fr) {
    return _mm256_add_ps(fl, _mm256_and_ps(_mm256_cmp_ps(u, fr, _CMP_LT_OQ), _mm256_set1_ps(1.0f)));
  }
  static void store_s8(std::int8_t* q, V r) {
    const __m256i v = _mm256_cvtps_epi32(r);
    const __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q), _mm_packs_epi16(p16, p16));
  }
};

void absmax_acc(const float* x, std::uint32_t* acc, std::int64_t n) { v_absmax_acc<VT>(x, acc, n); }
std::uint32_t absmax(const float* x, std::int64_t n) { return v_absmax<VT>(x, n); }
void quantize(const float* x, std::int8_t* q, std::int64_t n, const float* f, const float* g, bool vec_f, float base,
              int Q, bool stochastic, std::uint64_t index0, std::uint64_t key) {
  v_quantize<VT>(x, q, n, f, g, vec_f, base, Q, stochastic, index0, key);
}

void epilogue_f32(const std::int32_t* c, float* out, std::int64_t n, double s, const double* col) {
  const __m256d vs = _mm256_set1_pd(s);
  std::int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    __m256d v = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + j))), vs);
    if (col) v = _mm256_mul_pd(v, _mm256_loadu_pd(col + j));
    _mm_storeu_ps(out + j, _mm256_cvtpd_ps(v));
  }
  s_epilogue_f32(c + j, out + j, n - j, s, col ? col + j : nullptr);
}

}  // namespace

extern const GemmKernels gemm_avx2 = {"s8gemm_avx2_6x16", MR, NR, KU, 2, 2, false, 1024, pack_a, pack_b, ukernel};
extern const QuantKernels qk_avx2 = {"shiftquant_avx2", absmax_acc, absmax, quantize, epilogue_f32};

}  // namespace numkern::quant
