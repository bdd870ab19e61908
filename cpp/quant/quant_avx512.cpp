// Quantizer kernels for AVX-512 (F/BW/DQ/VL). The AVX-512 GEMM lives in quant_avx512vnni.cpp.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "quant/quant.h"

namespace numkern::quant {
namespace {

#define NUMKERN_QUANT_VECTOR 1
#include "quant/quant_kernels.inl"

struct VT {
  using V = __m512;
  using I = __m512i;
  static constexpr int L = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V set1(float a) { return _mm512_set1_ps(a); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V floor(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static V rne(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I absbits(const float* p) {
    return _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(p)), _mm512_set1_epi32(0x7fffffff));
  }
  static I loadi(const std::uint32_t* p) { return _mm512_loadu_si512(p); }
  static void storei(std::uint32_t* p, I v) { _mm512_storeu_si512(p, v); }
  static I zeroi() { return _mm512_setzero_si512(); }
  static I set1i(std::uint32_t a) { return _mm512_set1_epi32(static_cast<int>(a)); }
  static I lanes() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static I maxi(I a, I b) { return _mm512_max_epu32(a, b); }
  static I addi(I a, I b) { return _mm512_add_epi32(a, b); }
  static I xori(I a, I b) { return _mm512_xor_si512(a, b); }
  static I mix(I x) {
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32(static_cast<int>(0x846ca68bu)));
    return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
  }
  static V uniform(I h) { return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(h, 8)), _mm512_set1_ps(0x1p-24f)); }
  static V add_one_if_less(V fl, V u, V fr) {
    return _mm512_mask_add_ps(fl, _mm512_cmp_ps_mask(u, fr, _CMP_LT_OQ), fl, _mm512_set1_ps(1.0f));
  }
  static void store_s8(std::int8_t* q, V r) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
  }
};

void absmax_acc(const float* x, std::uint32_t* acc, std::int64_t n) { v_absmax_acc<VT>(x, acc, n); }
std::uint32_t absmax(const float* x, std::int64_t n) { return v_absmax<VT>(x, n); }
void quantize(const float* x, std::int8_t* q, std::int64_t n, const float* f, const float* g, bool vec_f, float base,
              int Q, bool stochastic, std::uint64_t index0, std::uint64_t key) {
  v_quantize<VT>(x, q, n, f, g, vec_f, base, Q, stochastic, index0, key);
}

void epilogue_f32(const std::int32_t* c, float* out, std::int64_t n, double s, const double* col) {
  const __m512d vs = _mm512_set1_pd(s);
  std::int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m512d v = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + j))), vs);
    if (col) v = _mm512_mul_pd(v, _mm512_loadu_pd(col + j));
    _mm256_storeu_ps(out + j, _mm512_cvtpd_ps(v));
  }
  s_epilogue_f32(c + j, out + j, n - j, s, col ? col + j : nullptr);
}

}  // namespace

extern const QuantKernels qk_avx512 = {"shiftquant_avx512", absmax_acc, absmax, quantize, epilogue_f32};

}  // namespace numkern::quant
