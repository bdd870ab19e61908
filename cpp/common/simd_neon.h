// The ops layer for AArch64 Advanced SIMD (NEON): 4 float / 2 double / 4 int32 / 2 int64 lanes.
//
// Included only by *_neon*.cpp translation units (compiled with their -march=armv8...-a flags); see
// simd_scalar.h for the vocabulary every level provides and what each op guarantees. Where NEON's
// own instruction differs from the x86 rule the vocabulary states, the op follows the vocabulary:
//   * min / max return the second operand when either is NaN (and for -0 vs +0), as x86's
//     vminps / vmaxps do: fmin / fmax would propagate the NaN, fminnm / fmaxnm drop it. A compare
//     and a bit select keep the softmax / norm results identical to the x86 levels on NaN input.
//   * fma / fnma / mul_error are the fused fmla / fmls: one rounding, as on AVX2.
//   * stream is a plain store: AArch64 has no non-temporal vector store a compiler exposes as an
//     intrinsic (STNP is only a hint); stream_fence is then a no-op.
#pragma once

#include <arm_neon.h>

#include "common/simd_base.h"

namespace numkern::simd {
namespace {

constexpr const char* kLevel = "neon";

struct F64 {
  using T = double;
  using V = float64x2_t;
  using M = uint64x2_t;  // all-ones / all-zeros lanes
  using Wide = F64;
  static constexpr std::size_t L = 2, kBytes = 16;
  static V zero() { return vdupq_n_f64(0.0); }
  static V set1(T a) { return vdupq_n_f64(a); }
  static V load(const T* p) { return vld1q_f64(p); }
  static void store(T* p, V v) { vst1q_f64(p, v); }
  static V loadn(const T* p, std::size_t k) { return load_partial<F64>(p, k, 0.0); }
  static void storen(T* p, V v, std::size_t k) { store_partial<F64>(p, v, k); }
  static void stream(T* p, V v) { vst1q_f64(p, v); }
  static V add(V a, V b) { return vaddq_f64(a, b); }
  static V sub(V a, V b) { return vsubq_f64(a, b); }
  static V mul(V a, V b) { return vmulq_f64(a, b); }
  static V div(V a, V b) { return vdivq_f64(a, b); }
  static V fma(V a, V b, V c) { return vfmaq_f64(c, a, b); }
  static V fnma(V a, V b, V c) { return vfmsq_f64(c, a, b); }
  // fl(p - a*b) = -fl(a*b - p): round to nearest is symmetric.
  static V mul_error(V a, V b, V p) { return vnegq_f64(vfmsq_f64(p, a, b)); }
  static V min(V a, V b) { return vbslq_f64(vcltq_f64(a, b), a, b); }
  static V max(V a, V b) { return vbslq_f64(vcgtq_f64(a, b), a, b); }
  static V abs(V a) { return vabsq_f64(a); }
  static V sqrt(V a) { return vsqrtq_f64(a); }
  static V round(V v) { return vrndnq_f64(v); }
  static V floor(V v) { return vrndmq_f64(v); }
  static V sign(V a) {
    const uint64x2_t one = vreinterpretq_u64_f64(vdupq_n_f64(1.0));
    const V z = zero();
    return vsubq_f64(vreinterpretq_f64_u64(vandq_u64(vcgtq_f64(a, z), one)),
                     vreinterpretq_f64_u64(vandq_u64(vcltq_f64(a, z), one)));
  }
  static M lt(V a, V b) { return vcltq_f64(a, b); }
  static M gt(V a, V b) { return vcgtq_f64(a, b); }
  static V select(M m, V a, V b) { return vbslq_f64(m, a, b); }
  static M nonzero_bytes(const std::uint8_t* p) {
    const uint64x2_t w = vmovl_u32(vget_low_u32(vmovl_u16(vget_low_u16(vmovl_u8(vcreate_u8(p[0] | (p[1] << 8)))))));
    return vcgtq_u64(w, vdupq_n_u64(0));
  }
  static V zero_unless(M m, V a) { return vreinterpretq_f64_u64(vandq_u64(m, vreinterpretq_u64_f64(a))); }
  // p * 2^k for integer-valued k <= 1023, built in the exponent field; k < -1022 gives 0 (so does a
  // NaN k, through max's x86 rule). The integer comes from the same magic-number addition as on
  // AVX2, so every k gives the AVX2 bits.
  static V mul_pow2(V p, V k) { return vmulq_f64(p, pow2(max(k, vdupq_n_f64(-1023.0)))); }
  // p * 2^k for integer-valued k in [-2044, 0] with gradual underflow: k = k1 + k2 with both factors
  // normal, so p * 2^k2 stays normal and the product rounds once into the subnormal range.
  static V mul_pow2_subnormal(V p, V k) {
    const V k1 = max(k, vdupq_n_f64(-1022.0));
    const V k2 = max(vsubq_f64(k, k1), vdupq_n_f64(-1022.0));
    return vmulq_f64(vmulq_f64(p, pow2(k2)), pow2(k1));
  }
  static V reduce_ln2(V x, V n) { return vfmsq_f64(vfmsq_f64(x, n, vdupq_n_f64(kLn2Hi)), n, vdupq_n_f64(kLn2Lo)); }
  static T reduce_add(V v) { return vaddvq_f64(v); }
  static T reduce_max(V v) { return vgetq_lane_f64(max(v, vextq_f64(v, v, 1)), 0); }
  static V widen(V v) { return v; }
  template <int D>
  static V butterfly(V v);
  // Integer lanes.
  static int64x2_t bits(V v) { return vreinterpretq_s64_f64(v); }
  static V from_bits(int64x2_t i) { return vreinterpretq_f64_s64(i); }
  // Loads L int32 and converts them exactly.
  static V load_i32(const std::int32_t* p) { return vcvtq_f64_s64(vmovl_s32(vld1_s32(p))); }
  // Rounds to float and stores L floats.
  static V load_f32(const float* p) { return vcvt_f64_f32(vld1_f32(p)); }
  static void store_f32(float* p, V v) { vst1_f32(p, vcvt_f32_f64(v)); }

 private:
  // 2^k for integer-valued k in [-1023, 1023] (-1023 gives 0).
  static V pow2(V k) {
    const V magic = vdupq_n_f64(kRoundMagic);
    const int64x2_t ki = vsubq_s64(vreinterpretq_s64_f64(vaddq_f64(k, magic)), vreinterpretq_s64_f64(magic));
    return vreinterpretq_f64_s64(vshlq_n_s64(vaddq_s64(ki, vdupq_n_s64(1023)), 52));
  }
};

struct F32 {
  using T = float;
  using V = float32x4_t;
  using M = uint32x4_t;  // all-ones / all-zeros lanes
  using Wide = X2<F64>;
  static constexpr std::size_t L = 4, kBytes = 16;
  static V zero() { return vdupq_n_f32(0.0f); }
  static V set1(T a) { return vdupq_n_f32(a); }
  static V load(const T* p) { return vld1q_f32(p); }
  static void store(T* p, V v) { vst1q_f32(p, v); }
  static V loadn(const T* p, std::size_t k) { return load_partial<F32>(p, k, 0.0f); }
  static void storen(T* p, V v, std::size_t k) { store_partial<F32>(p, v, k); }
  static void stream(T* p, V v) { vst1q_f32(p, v); }
  static V add(V a, V b) { return vaddq_f32(a, b); }
  static V sub(V a, V b) { return vsubq_f32(a, b); }
  static V mul(V a, V b) { return vmulq_f32(a, b); }
  static V div(V a, V b) { return vdivq_f32(a, b); }
  static V fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
  static V fnma(V a, V b, V c) { return vfmsq_f32(c, a, b); }
  static V mul_error(V a, V b, V p) { return vnegq_f32(vfmsq_f32(p, a, b)); }
  static V min(V a, V b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
  static V max(V a, V b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
  static V abs(V a) { return vabsq_f32(a); }
  static V sqrt(V a) { return vsqrtq_f32(a); }
  static V round(V v) { return vrndnq_f32(v); }
  static V floor(V v) { return vrndmq_f32(v); }
  static V sign(V a) {
    const uint32x4_t one = vreinterpretq_u32_f32(vdupq_n_f32(1.0f));
    const V z = zero();
    return vsubq_f32(vreinterpretq_f32_u32(vandq_u32(vcgtq_f32(a, z), one)),
                     vreinterpretq_f32_u32(vandq_u32(vcltq_f32(a, z), one)));
  }
  static M lt(V a, V b) { return vcltq_f32(a, b); }
  static M gt(V a, V b) { return vcgtq_f32(a, b); }
  static V select(M m, V a, V b) { return vbslq_f32(m, a, b); }
  static M nonzero_bytes(const std::uint8_t* p) {
    std::uint32_t four;
    __builtin_memcpy(&four, p, 4);
    const uint32x4_t w = vmovl_u16(vget_low_u16(vmovl_u8(vcreate_u8(four))));
    return vcgtq_u32(w, vdupq_n_u32(0));
  }
  static V zero_unless(M m, V a) { return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(a))); }
  // p * 2^k for integer-valued k <= 127, built in the exponent field; k < -126 gives 0.
  static V mul_pow2(V p, V k) {
    k = max(k, vdupq_n_f32(-127.0f));
    const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(k), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(bits));
  }
  static V reduce_ln2(V x, V n) {
    return vfmsq_f32(vfmsq_f32(x, n, vdupq_n_f32(kLn2HiF32)), n, vdupq_n_f32(kLn2LoF32));
  }
  static T reduce_add(V v) { return vaddvq_f32(v); }
  static T reduce_max(V v) {
    const V m = max(v, vextq_f32(v, v, 2));
    return vgetq_lane_f32(max(m, vextq_f32(m, m, 1)), 0);
  }
  static Wide::V widen(V v) { return {vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)}; }
  template <int D>
  static V butterfly(V v);
  // Integer lanes.
  static uint32x4_t bits(V v) { return vreinterpretq_u32_f32(v); }
  static V from_bits(uint32x4_t i) { return vreinterpretq_f32_u32(i); }
  static V from_i32(uint32x4_t i) { return vcvtq_f32_s32(vreinterpretq_s32_u32(i)); }
  // Rounds to int32 (to nearest, ties to even, as cvtps2dq) and stores the L low bytes: the values
  // must fit int8.
  static void store_i8(std::int8_t* q, V v) {
    const int16x4_t h = vmovn_s32(vcvtnq_s32_f32(v));
    const int8x8_t b = vmovn_s16(vcombine_s16(h, h));
    vst1_lane_s32(reinterpret_cast<std::int32_t*>(q), vreinterpret_s32_s8(b), 0);
  }
};

// The butterfly of lanes D apart: lane i gets v[i] + v[i^D] where bit D of i is clear, else
// v[i^D] - v[i] (the same two operations per lane as on x86, so the same roundings).
template <>
inline F32::V F32::butterfly<1>(V v) {
  const V t = vrev64q_f32(v);
  const uint32x4_t odd = {0u, ~0u, 0u, ~0u};
  return vbslq_f32(odd, vsubq_f32(t, v), vaddq_f32(v, t));
}
template <>
inline F32::V F32::butterfly<2>(V v) {
  const V t = vextq_f32(v, v, 2);
  return vcombine_f32(vget_low_f32(vaddq_f32(v, t)), vget_high_f32(vsubq_f32(t, v)));
}
template <>
inline F64::V F64::butterfly<1>(V v) {
  const V t = vextq_f64(v, v, 1);
  return vcombine_f64(vget_low_f64(vaddq_f64(v, t)), vget_high_f64(vsubq_f64(t, v)));
}

struct I32 {
  using T = std::uint32_t;
  using V = uint32x4_t;
  static constexpr std::size_t L = 4;
  static V zero() { return vdupq_n_u32(0); }
  static V set1(T a) { return vdupq_n_u32(a); }
  static V iota() { return V{0, 1, 2, 3}; }  // lane j holds j
  static V load(const T* p) { return vld1q_u32(p); }
  static void store(T* p, V v) { vst1q_u32(p, v); }
  static V add(V a, V b) { return vaddq_u32(a, b); }
  static V sub(V a, V b) { return vsubq_u32(a, b); }
  static V mul(V a, V b) { return vmulq_u32(a, b); }  // low 32 bits
  static V band(V a, V b) { return vandq_u32(a, b); }
  static V bor(V a, V b) { return vorrq_u32(a, b); }
  static V bxor(V a, V b) { return veorq_u32(a, b); }
  template <int K>
  static V shr(V a) {
    return vshrq_n_u32(a, K);
  }  // logical
  template <int K>
  static V shl(V a) {
    return vshlq_n_u32(a, K);
  }
  // Rotate left by 0 < K < 32 (shift-left-and-insert: one instruction after the right shift).
  template <int K>
  static V rotl(V a) {
    return vsliq_n_u32(vshrq_n_u32(a, 32 - K), a, K);
  }
  static V max_u(V a, V b) { return vmaxq_u32(a, b); }
  static V select(F32::M m, V a, V b) { return vbslq_u32(m, a, b); }
};

struct I64 {
  using T = std::int64_t;
  using V = int64x2_t;
  static constexpr std::size_t L = 2;
  static V zero() { return vdupq_n_s64(0); }
  static V set1(T a) { return vdupq_n_s64(a); }
  static V load(const T* p) { return vld1q_s64(p); }
  static void store(T* p, V v) { vst1q_s64(p, v); }
  static V add(V a, V b) { return vaddq_s64(a, b); }  // modulo 2^64
  static V sub(V a, V b) { return vsubq_s64(a, b); }
  static V band(V a, V b) { return vandq_s64(a, b); }
  static V bxor(V a, V b) { return veorq_s64(a, b); }
  template <int K>
  static V shl(V a) {
    return vshlq_n_s64(a, K);
  }
  // Lanes whose lowest bit is set, as a mask of the double lanes (all-ones / all-zeros).
  static F64::M odd(V a) { return vtstq_s64(a, vdupq_n_s64(1)); }
  static T reduce_add(V v) { return vaddvq_s64(v); }
};

inline void stream_fence() {}

}  // namespace
}  // namespace numkern::simd
