#include "common/isa.h"

#include <atomic>
#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64)
#define NUMKERN_X86_64 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace numkern {
namespace {

#ifdef NUMKERN_X86_64

std::uint64_t read_xcr0() {
  std::uint32_t lo = 0, hi = 0;
  // xgetbv is only legal once CPUID reports OSXSAVE; callers check that first.
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

CpuFeatures detect() {
  CpuFeatures f{};
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  __get_cpuid(1, &a, &b, &c, &d);
  f.sse42 = c & (1u << 20);
  f.popcnt = c & (1u << 23);
  f.fma = c & (1u << 12);
  f.f16c = c & (1u << 29);
  f.avx = c & (1u << 28);
  const bool osxsave = c & (1u << 27);
  if (osxsave) {
    const std::uint64_t xcr0 = read_xcr0();
    f.os_saves_ymm = (xcr0 & 0x6) == 0x6;
    f.os_saves_zmm = f.os_saves_ymm && (xcr0 & 0xe0) == 0xe0;
  }
  if (max_leaf >= 7) {
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    f.bmi1 = b & (1u << 3);
    f.avx2 = b & (1u << 5);
    f.bmi2 = b & (1u << 8);
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512cd = b & (1u << 28);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vbmi = c & (1u << 1);
    f.avx512vnni = c & (1u << 11);
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    f.avxvnni = a & (1u << 4);
    f.avx512bf16 = a & (1u << 5);
  }
  if (__get_cpuid(0x80000001, &a, &b, &c, &d)) f.lzcnt = c & (1u << 5);
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

Isa best_isa(const CpuFeatures& f) {
  const bool avx2_ok = f.os_saves_ymm && f.avx && f.avx2 && f.fma && f.f16c && f.bmi1 && f.bmi2 && f.lzcnt && f.popcnt;
  const bool avx512_ok = avx2_ok && f.os_saves_zmm && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx512cd;
  return avx512_ok ? Isa::avx512 : avx2_ok ? Isa::avx2 : Isa::scalar;
}

const CpuFeatures& features_once() {
  static const CpuFeatures f = detect();
  return f;
}

std::atomic<int>& active_level() {
  static std::atomic<int> level{static_cast<int>(best_isa(features_once()))};
  return level;
}

}  // namespace

const CpuFeatures& cpu_features() { return features_once(); }
Isa detected_isa() { return best_isa(features_once()); }
Isa active_isa() { return static_cast<Isa>(active_level().load(std::memory_order_relaxed)); }

Isa set_active_isa(Isa requested) {
  const int level = static_cast<int>(requested) < static_cast<int>(detected_isa()) ? static_cast<int>(requested)
                                                                                   : static_cast<int>(detected_isa());
  active_level().store(level < 0 ? 0 : level, std::memory_order_relaxed);
  return active_isa();
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return "scalar";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
  }
  return "unknown";
}

const char* target_arch() {
#if defined(NUMKERN_X86_64)
  return "x86_64";
#elif defined(__aarch64__) || defined(_M_ARM64)
  return "aarch64";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__)
  return "ppc64";
#elif defined(__riscv)
  return "riscv";
#elif defined(__s390x__)
  return "s390x";
#else
  return "unknown";
#endif
}

void store_fence() {
#ifdef NUMKERN_X86_64
  _mm_sfence();
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace numkern
