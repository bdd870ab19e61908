// Compiler-specific helpers with a portable spelling: GCC and Clang (Linux, Apple clang) use their
// builtins; MSVC its intrinsics or plain C++. Results are the same on every compiler; only
// prefetch is a hint that may do nothing.
#pragma once

#include <cstdint>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define NUMKERN_MSVC 1
#endif

// GCC / Clang spelling of a per-function ISA (the x86 units that use an extension beyond their
// file's level); MSVC needs none: it accepts every intrinsic whatever /arch says.
#if defined(NUMKERN_MSVC)
#define NUMKERN_TARGET(isa)
#else
#define NUMKERN_TARGET(isa) __attribute__((target(isa)))
#endif

// Unsigned 128-bit integers: the compiler's where it has them; elsewhere (MSVC) a two-word struct
// with the few operations the norm family's exact constants use. NUMKERN_PORTABLE_U128 forces the
// struct, so that it is tested on compilers with __int128 too.
#if defined(__SIZEOF_INT128__) && !defined(NUMKERN_PORTABLE_U128)
#define NUMKERN_NATIVE_U128 1
#endif

namespace numkern {
namespace {

inline int popcount64(std::uint64_t v) {
#if defined(NUMKERN_MSVC)
  v = v - ((v >> 1) & 0x5555555555555555ull);
  v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
  v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<int>((v * 0x0101010101010101ull) >> 56);
#else
  return __builtin_popcountll(v);
#endif
}

inline int popcount32(std::uint32_t v) {
#if defined(NUMKERN_MSVC)
  return popcount64(v);
#else
  return __builtin_popcount(v);
#endif
}

// Leading zeros of a non-zero v.
inline int clz64(std::uint64_t v) {
#if defined(NUMKERN_MSVC)
  int n = 0;
  for (std::uint64_t bit = std::uint64_t{1} << 63; !(v & bit); bit >>= 1) ++n;
  return n;
#else
  return __builtin_clzll(v);
#endif
}

// A read prefetch hint (locality 0..3 as GCC's); nothing where the compiler has no portable one.
template <int Locality>
inline void prefetch_read(const void* p) {
#if defined(NUMKERN_MSVC)
  (void)p;
#else
  __builtin_prefetch(p, 0, Locality);
#endif
}

template <int Locality>
inline void prefetch_write(const void* p) {
#if defined(NUMKERN_MSVC)
  (void)p;
#else
  __builtin_prefetch(p, 1, Locality);
#endif
}

#if defined(NUMKERN_NATIVE_U128)
using u128 = unsigned __int128;
inline std::uint64_t high64(u128 v) { return static_cast<std::uint64_t>(v >> 64); }
inline std::uint64_t low64(u128 v) { return static_cast<std::uint64_t>(v); }
#else
// Modulo 2^128, as unsigned __int128. Built from non-negative integers only.
struct u128 {
  std::uint64_t hi = 0, lo = 0;
  constexpr u128() = default;
  template <class I>
  constexpr u128(I v) : lo(static_cast<std::uint64_t>(v)) {}  // NOLINT: converts like the builtin
  constexpr u128(std::uint64_t h, std::uint64_t l, int) : hi(h), lo(l) {}
  explicit operator std::uint64_t() const { return lo; }
  explicit operator std::int64_t() const { return static_cast<std::int64_t>(lo); }
  friend u128 operator+(u128 a, u128 b) { return {a.hi + b.hi + (a.lo + b.lo < a.lo), a.lo + b.lo, 0}; }
  friend u128 operator-(u128 a, u128 b) { return {a.hi - b.hi - (a.lo < b.lo), a.lo - b.lo, 0}; }
  friend u128 operator<<(u128 a, int s) {
    if (s == 0) return a;
    if (s >= 64) return {a.lo << (s - 64), 0, 0};
    return {(a.hi << s) | (a.lo >> (64 - s)), a.lo << s, 0};
  }
  friend u128 operator>>(u128 a, int s) {
    if (s == 0) return a;
    if (s >= 64) return {0, a.hi >> (s - 64), 0};
    return {a.hi >> s, (a.lo >> s) | (a.hi << (64 - s)), 0};
  }
  friend bool operator<(u128 a, u128 b) { return a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo; }
  friend u128 operator*(u128 a, u128 b) {
    // The full 64 x 64 product of the low words from 32-bit halves, plus the cross terms' low words.
    const std::uint64_t a0 = a.lo & 0xffffffffu, a1 = a.lo >> 32, b0 = b.lo & 0xffffffffu, b1 = b.lo >> 32;
    const std::uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const std::uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    const std::uint64_t lo = (mid << 32) | (p00 & 0xffffffffu);
    const std::uint64_t hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32) + a.hi * b.lo + a.lo * b.hi;
    return {hi, lo, 0};
  }
  // Restoring long division, one quotient bit per step (b != 0).
  friend u128 operator/(u128 a, u128 b) {
    u128 q, r;
    for (int i = 127; i >= 0; --i) {
      r = r << 1;
      r.lo |= ((a >> i).lo & 1u);
      q = q << 1;
      if (!(r < b)) {
        r = r - b;
        q.lo |= 1u;
      }
    }
    return q;
  }
};
inline std::uint64_t high64(u128 v) { return v.hi; }
inline std::uint64_t low64(u128 v) { return v.lo; }
#endif

}  // namespace
}  // namespace numkern
