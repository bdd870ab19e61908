// What every level of the SIMD ops layer shares: numeric constants, scalar functions and the generic
// templates written over an ops type. Included by simd_<isa>.h and, for the scalar functions, by drivers.
//
// Everything here has internal linkage (an unnamed namespace): an ISA translation unit's copy is
// compiled with that unit's flags and can never be picked by the linker for another unit (the ODR
// hazard tools/isa_guard.py checks for). Constants are constexpr, so nothing runs at load time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(_MSC_VER) && !defined(__clang__)
#include "common/msvc_builtins.h"
#endif

namespace numkern::simd {
namespace {

// ---- constants ---------------------------------------------------------------------------------

constexpr double kLog2e = 1.4426950408889634;
// ln2 split for the FMA range reduction r = (x - n*kLn2Hi) - n*kLn2Lo: each step is one FMA, so
// r carries ln2's error well below the result's ulp.
constexpr float kLn2HiF32 = 0x1.62e430p-1f, kLn2LoF32 = -0x1.05c610p-29f;
constexpr double kLn2Hi = 0x1.62e42fefa39efp-1, kLn2Lo = 0x1.abc9e3b39803fp-56;
// Cody-Waite split for levels without FMA: kLn2Hi32 has 32 significant bits, so n * kLn2Hi32 is
// exact for |n| < 2^21 and x - n * kLn2Hi32 is exact by Sterbenz.
constexpr double kLn2Hi32 = 0x1.62e42fee00000p-1, kLn2Lo32 = 0x1.a39ef35793c76p-33;
constexpr double kTwoOverPi = 0.63661977236758134308;
// pi/2 in three parts: each FMA step of a cos/sin reduction is exact while |k| < 2^30.
constexpr double kPio2A = 0x1.921fb54442d18p+0, kPio2B = 0x1.1a62633145c07p-54, kPio2C = -0x1.f1976b7ed8fbcp-110;
// 1.5 * 2^52 (1.5 * 2^23): adding it to |v| < 2^51 (2^22) leaves v rounded to an integer (to nearest,
// ties to even) in the low mantissa bits, so (v + M) - M rounds and bits(v + M) - bits(M) converts.
constexpr double kRoundMagic = 6755399441055744.0;
constexpr float kRoundMagicF32 = 12582912.0f;

// ---- scalar functions ---------------------------------------------------------------------------

template <class To, class From>
inline To bit_cast(From v) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs equal sizes");
  To r;
  std::memcpy(&r, &v, sizeof r);
  return r;
}

// Round to nearest, ties to even, without SSE4.1 or a libm call: exact for |v| < 2^22 (float) or
// 2^51 (double); larger values are integers already and come back unchanged, as do inf and NaN.
// (The sign of a zero result is not kept: round_even(-0.3f) is +0.)
inline float round_even(float v) { return (v + kRoundMagicF32) - kRoundMagicF32; }
inline double round_even(double v) { return (v + kRoundMagic) - kRoundMagic; }

// round_even(v) as an integer, for |v| < 2^51: the integer lands in the low bits of v + M.
inline std::int64_t round_to_i64(double v) {
  return static_cast<std::int64_t>(bit_cast<std::uint64_t>(v + kRoundMagic) - bit_cast<std::uint64_t>(kRoundMagic));
}

// lowbias32 (C. Wellons' hash prospector): a bijection of 32-bit words with low avalanche bias. The
// counter-based random numbers of quant (stochastic rounding) and sketch (Gaussian entries, sparse
// signs) are this hash of (index, key), identical on every level.
inline std::uint32_t lowbias32(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// ---- generic templates over an ops type --------------------------------------------------------

// lowbias32 lane-wise, over a 32-bit integer ops type U (I32 of any level).
template <class U>
inline typename U::V lowbias32(typename U::V x) {
  x = U::bxor(x, U::template shr<16>(x));
  x = U::mul(x, U::set1(0x7feb352du));
  x = U::bxor(x, U::template shr<15>(x));
  x = U::mul(x, U::set1(0x846ca68bu));
  return U::bxor(x, U::template shr<16>(x));
}

// The first k < D::L lanes from p, the others `fill` (through a buffer: never reads past p + k).
template <class D>
inline typename D::V load_partial(const typename D::T* p, std::size_t k, typename D::T fill) {
  typename D::T buf[D::L];
  for (std::size_t j = 0; j < D::L; ++j) buf[j] = j < k ? p[j] : fill;
  return D::load(buf);
}

// Stores the first k < D::L lanes of v to p (through a buffer: never writes past p + k).
template <class D>
inline void store_partial(typename D::T* p, typename D::V v, std::size_t k) {
  typename D::T buf[D::L];
  D::store(buf, v);
  for (std::size_t j = 0; j < k; ++j) p[j] = buf[j];
}

// Two vectors of an ops type D used as one of 2 * D::L lanes: a float vector widened to double.
template <class D>
struct X2 {
  using T = typename D::T;
  struct V {
    typename D::V lo, hi;
  };
  static constexpr std::size_t L = 2 * D::L;
  static V zero() { return {D::zero(), D::zero()}; }
  static V set1(T a) { return {D::set1(a), D::set1(a)}; }
  static V add(V a, V b) { return {D::add(a.lo, b.lo), D::add(a.hi, b.hi)}; }
  static V sub(V a, V b) { return {D::sub(a.lo, b.lo), D::sub(a.hi, b.hi)}; }
  static V max(V a, V b) { return {D::max(a.lo, b.lo), D::max(a.hi, b.hi)}; }
  static V mul_pow2(V p, V k) { return {D::mul_pow2(p.lo, k.lo), D::mul_pow2(p.hi, k.hi)}; }
  static void store(T* p, V v) {
    D::store(p, v.lo);
    D::store(p + D::L, v.hi);
  }
  // (lo + hi) summed across lanes.
  static T reduce_add(V v) { return D::reduce_add(D::add(v.lo, v.hi)); }
};

}  // namespace
}  // namespace numkern::simd
