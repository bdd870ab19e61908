// The ops layer for the baseline level: one lane, plain C++ (no FMA, no SSE4.1), so it compiles for
// any target. This file also states the vocabulary that every level provides (simd_avx2.h,
// simd_avx512.h, simd_neon.h), so that a family's generic kernels are written once.
//
// Included only by *_scalar.cpp translation units. Every name has internal linkage (see simd_base.h).
//
// Ops types, each with T (lane type), V (vector), L (lanes) and static functions:
//   F32, F64 (float lanes), also M (the mask a compare gives), kBytes (vector size: the alignment a
//   stream store needs) and Wide (the ops type of L doubles: X2<F64> for F32 on SIMD levels, F64 here):
//     zero, set1, load, store (unaligned), loadn(p, k) / storen(p, v, k) (the first k < L lanes; others
//     read as 0 / left alone, never touched in memory), stream (non-temporal store to a kBytes-aligned
//     p; stream_fence() orders them), add, sub, mul, div, sqrt (correctly rounded), fma(a, b, c) =
//     a*b + c, fnma = c - a*b (one rounding where the level has FMA, two here),
//     mul_error(a, b, p) = a*b - p exactly when p = fl(a*b) (TwoProd: FMA, or Dekker's split here),
//     min / max (x86 rule: the second operand when either is NaN), abs, sign (-1, 0 or +1; 0 for NaN),
//     round (to nearest, ties to even), floor, lt / gt (ordered compares), select(m, a, b) = m ? a : b,
//     nonzero_bytes(p) (the M of the lanes j whose byte p[j] is not 0; reads exactly L bytes),
//     zero_unless(m, a) = m ? a : 0, reduce_add (in T; the lane order is the level's), reduce_max (a
//     NaN lane may be dropped), widen (to Wide), reduce_ln2(x, n) = x - n*ln2 for integer-valued n to
//     within a few ulp of the result (|n| < 2^21), mul_pow2(p, k) = p * 2^k for integer-valued
//     k <= 127 / 1023 (results below the normal range may flush to 0), butterfly<D> (lane i gets
//     v[i] + v[i^D] where bit D of i is clear, else v[i^D] - v[i]; D = 1, 2, .., L/2 make the L-point
//     Walsh-Hadamard transform), bits / from_bits (reinterpretation as I32 / I64 lanes).
//   F32 only: from_i32 (exact conversion of int32 lanes), store_i8 (the L lanes, which
//     must hold integers that fit int8, as bytes).
//   F64 only: mul_pow2_subnormal(p, k) = p * 2^k for integer-valued k in [-2044, 0] with gradual
//     underflow, load_i32 (L int32, converted), load_f32 (L floats, converted exactly; F64 only),
//     store_f32 (L lanes rounded to float).
//   I32 (32-bit lanes, as many as F32 has; unsigned arithmetic modulo 2^32): zero, set1, iota (lane j
//     holds j), load, store, add, sub, mul (low 32 bits), band, bor, bxor, shr<k> (logical), max_u,
//     select(F32::M, a, b).
//   I64 (64-bit lanes, as many as F64 has): zero, set1, load, store, add, sub, band, bxor, shl<k>,
//     odd (F64::M of the lanes whose lowest bit is set), reduce_add.
// simd_base.h adds what is written once over these: lowbias32, load_partial / store_partial, X2, and
// the constants of the exp and cos range reductions.
#pragma once

#include "common/simd_base.h"

namespace numkern::simd {
namespace {

constexpr const char* kLevel = "scalar";

template <class TT>
struct ScalarFloat {
  using T = TT;
  using V = T;
  using M = bool;
  static constexpr std::size_t L = 1, kBytes = sizeof(T);
  static V zero() { return T(0); }
  static V set1(T a) { return a; }
  static V load(const T* p) { return *p; }
  static void store(T* p, V v) { *p = v; }
  static V loadn(const T* p, std::size_t k) { return k ? *p : T(0); }
  static void storen(T* p, V v, std::size_t k) {
    if (k) *p = v;
  }
  static void stream(T* p, V v) { *p = v; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V div(V a, V b) { return a / b; }
  // Two roundings: the kernels are compiled with -ffp-contract=off, so these never fuse.
  static V fma(V a, V b, V c) { return a * b + c; }
  static V fnma(V a, V b, V c) { return c - a * b; }
  // Dekker's product of Veltkamp halves: exact without FMA.
  static V mul_error(V a, V b, V p) {
    constexpr T split = sizeof(T) == 8 ? T(134217729.0) : T(4097.0);
    const T ca = split * a, cb = split * b;
    const T ah = ca - (ca - a), al = a - ah, bh = cb - (cb - b), bl = b - bh;
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  }
  static V min(V a, V b) { return a < b ? a : b; }
  static V max(V a, V b) { return a > b ? a : b; }
  static V abs(V a) {
    if constexpr (sizeof(T) == 8) {
      return __builtin_fabs(a);
    } else {
      return __builtin_fabsf(a);
    }
  }
  static V sign(V a) { return T((a > T(0)) - (a < T(0))); }
  static V round(V v) { return round_even(v); }
  static V floor(V v) {
    const T r = round_even(v);
    return r > v ? r - T(1) : r;
  }
  static M lt(V a, V b) { return a < b; }
  static M gt(V a, V b) { return a > b; }
  static V select(M m, V a, V b) { return m ? a : b; }
  static M nonzero_bytes(const std::uint8_t* p) { return *p != 0; }
  static V zero_unless(M m, V a) { return m ? a : T(0); }
  static T reduce_add(V v) { return v; }
  static T reduce_max(V v) { return v; }
  static V sqrt(V a) {
    if constexpr (sizeof(T) == 8) {
      return __builtin_sqrt(a);
    } else {
      return __builtin_sqrtf(a);
    }
  }
  template <int D>
  static V butterfly(V v) {
    static_assert(D < 0, "one lane: there is no butterfly");
    return v;
  }
};

struct F64 : ScalarFloat<double> {
  using Wide = F64;
  // p * 2^k built in the exponent field; k below the normal range flushes to 0, NaN k propagates,
  // k above it overflows to +-inf through ldexp (a shift there would be undefined).
  static V mul_pow2(V p, V k) {
    if (k != k) return k;
    if (k < -1022.0) return 0.0 * p;
    if (k > 1023.0) return __builtin_ldexp(p, k > 4096.0 ? 4096 : static_cast<int>(k));
    return p * bit_cast<double>((static_cast<long long>(k) + 1023) << 52);
  }
  static V mul_pow2_subnormal(V p, V k) { return __builtin_ldexp(p, static_cast<int>(k)); }
  // Cody-Waite: x - n * kLn2Hi32 is exact, so only the small second product rounds.
  static V reduce_ln2(V x, V n) { return (x - n * kLn2Hi32) - n * kLn2Lo32; }
  static V widen(V v) { return v; }
  static std::int64_t bits(V v) { return bit_cast<std::int64_t>(v); }
  static V from_bits(std::int64_t i) { return bit_cast<double>(i); }
  static V load_i32(const std::int32_t* p) { return static_cast<double>(*p); }
  static V load_f32(const float* p) { return static_cast<V>(*p); }
  static void store_f32(float* p, V v) { *p = static_cast<float>(v); }
};

struct F32 : ScalarFloat<float> {
  using Wide = F64;
  static V mul_pow2(V p, V k) {
    if (k != k) return k;
    if (k < -126.0f) return 0.0f * p;
    if (k > 127.0f) return __builtin_ldexpf(p, k > 512.0f ? 512 : static_cast<int>(k));
    return p * bit_cast<float>((static_cast<int>(k) + 127) << 23);
  }
  // In double: n * ln2 is then exact to far below float's ulp.
  static V reduce_ln2(V x, V n) { return static_cast<float>(static_cast<double>(x) - static_cast<double>(n) * kLn2Hi); }
  static double widen(V v) { return v; }
  static std::uint32_t bits(V v) { return bit_cast<std::uint32_t>(v); }
  static V from_bits(std::uint32_t i) { return bit_cast<float>(i); }
  static V from_i32(std::uint32_t i) { return static_cast<float>(static_cast<std::int32_t>(i)); }
  static void store_i8(std::int8_t* q, V v) { *q = static_cast<std::int8_t>(static_cast<int>(v)); }
};

struct I32 {
  using T = std::uint32_t;
  using V = std::uint32_t;
  static constexpr std::size_t L = 1;
  static V zero() { return 0; }
  static V set1(T a) { return a; }
  static V iota() { return 0; }
  static V load(const T* p) { return *p; }
  static void store(T* p, V v) { *p = v; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V band(V a, V b) { return a & b; }
  static V bor(V a, V b) { return a | b; }
  static V bxor(V a, V b) { return a ^ b; }
  template <int K>
  static V shr(V a) {
    return a >> K;
  }
  template <int K>
  static V shl(V a) {
    return a << K;
  }
  // Rotate left by 0 < K < 32.
  template <int K>
  static V rotl(V a) {
    return (a << K) | (a >> (32 - K));
  }
  static V max_u(V a, V b) { return a > b ? a : b; }
  static V select(bool m, V a, V b) { return m ? a : b; }
};

struct I64 {
  using T = std::int64_t;
  using V = std::int64_t;
  static constexpr std::size_t L = 1;
  static V zero() { return 0; }
  static V set1(T a) { return a; }
  static V load(const T* p) { return *p; }
  static void store(T* p, V v) { *p = v; }
  // Modulo 2^64, as the vector lanes (no signed overflow).
  static V add(V a, V b) { return static_cast<V>(static_cast<std::uint64_t>(a) + static_cast<std::uint64_t>(b)); }
  static V sub(V a, V b) { return static_cast<V>(static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b)); }
  static V band(V a, V b) { return a & b; }
  static V bxor(V a, V b) { return a ^ b; }
  template <int K>
  static V shl(V a) {
    return static_cast<V>(static_cast<std::uint64_t>(a) << K);
  }
  static bool odd(V a) { return (a & 1) != 0; }
  static T reduce_add(V v) { return v; }
};

inline void stream_fence() {}

}  // namespace
}  // namespace numkern::simd
