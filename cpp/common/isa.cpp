#include "common/isa.h"

#include <atomic>
#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64)
#define NUMKERN_X86_64 1
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#include <immintrin.h>
#elif defined(__aarch64__) || defined(_M_ARM64)
#define NUMKERN_AARCH64 1
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#elif defined(_WIN32)
#include <windows.h>
#endif
#endif

namespace numkern {
namespace {

#ifdef NUMKERN_X86_64

#if defined(_MSC_VER) && !defined(__clang__)
// MSVC has neither <cpuid.h> nor GNU inline assembly: the same queries through its intrinsics.
bool get_cpuid(unsigned leaf, unsigned* a, unsigned* b, unsigned* c, unsigned* d) {
  int r[4];
  __cpuid(r, static_cast<int>(leaf & 0x80000000u));  // the highest leaf of leaf's range
  if (static_cast<unsigned>(r[0]) < leaf) return false;
  __cpuidex(r, static_cast<int>(leaf), 0);
  *a = static_cast<unsigned>(r[0]), *b = static_cast<unsigned>(r[1]);
  *c = static_cast<unsigned>(r[2]), *d = static_cast<unsigned>(r[3]);
  return true;
}
void get_cpuid_count(unsigned leaf, unsigned sub, unsigned* a, unsigned* b, unsigned* c, unsigned* d) {
  int r[4];
  __cpuidex(r, static_cast<int>(leaf), static_cast<int>(sub));
  *a = static_cast<unsigned>(r[0]), *b = static_cast<unsigned>(r[1]);
  *c = static_cast<unsigned>(r[2]), *d = static_cast<unsigned>(r[3]);
}
std::uint64_t read_xcr0() { return _xgetbv(0); }
#else
bool get_cpuid(unsigned leaf, unsigned* a, unsigned* b, unsigned* c, unsigned* d) {
  return __get_cpuid(leaf, a, b, c, d) != 0;
}
void get_cpuid_count(unsigned leaf, unsigned sub, unsigned* a, unsigned* b, unsigned* c, unsigned* d) {
  __get_cpuid_count(leaf, sub, a, b, c, d);
}
std::uint64_t read_xcr0() {
  std::uint32_t lo = 0, hi = 0;
  // xgetbv is only legal once CPUID reports OSXSAVE; callers check that first.
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}
#endif

CpuFeatures detect() {
  CpuFeatures f{};
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  get_cpuid(1, &a, &b, &c, &d);
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
    get_cpuid_count(7, 0, &a, &b, &c, &d);
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
    get_cpuid_count(7, 1, &a, &b, &c, &d);
    f.avxvnni = a & (1u << 4);
    f.avx512bf16 = a & (1u << 5);
  }
  if (get_cpuid(0x80000001, &a, &b, &c, &d)) f.lzcnt = c & (1u << 5);
  return f;
}
#elif defined(NUMKERN_AARCH64)

#if defined(__linux__)
// The bits of <asm/hwcap.h>, spelled out for C libraries whose headers predate them.
constexpr unsigned long kHwcapFphp = 1ul << 9, kHwcapAsimd = 1ul << 1, kHwcapAsimdhp = 1ul << 10,
                        kHwcapAsimddp = 1ul << 20;
constexpr unsigned long kHwcap2I8mm = 1ul << 13, kHwcap2Bf16 = 1ul << 14;

CpuFeatures detect() {
  CpuFeatures f{};
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  f.asimd = hw & kHwcapAsimd;
  f.fphp = hw & kHwcapFphp;
  f.asimdhp = hw & kHwcapAsimdhp;
  f.asimddp = hw & kHwcapAsimddp;
  f.i8mm = hw2 & kHwcap2I8mm;
  f.bf16 = hw2 & kHwcap2Bf16;
  return f;
}
#elif defined(__APPLE__)
bool sysctl_flag(const char* name) {
  int v = 0;
  std::size_t len = sizeof v;
  return sysctlbyname(name, &v, &len, nullptr, 0) == 0 && v != 0;
}

CpuFeatures detect() {
  CpuFeatures f{};
  f.asimd = true;  // every Apple Arm CPU has Advanced SIMD
  f.asimddp = sysctl_flag("hw.optional.arm.FEAT_DotProd");
  f.i8mm = sysctl_flag("hw.optional.arm.FEAT_I8MM");
  f.fphp = f.asimdhp = sysctl_flag("hw.optional.arm.FEAT_FP16");
  f.bf16 = sysctl_flag("hw.optional.arm.FEAT_BF16");
  return f;
}
#elif defined(_WIN32)
CpuFeatures detect() {
  CpuFeatures f{};
  f.asimd = true;  // Windows on Arm requires Advanced SIMD
#ifdef PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE
  f.asimddp = IsProcessorFeaturePresent(PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE);
#endif
  return f;
}
#else
// Advanced SIMD is part of the AArch64 base ISA; the extensions are not assumed without a query.
CpuFeatures detect() {
  CpuFeatures f{};
  f.asimd = true;
  return f;
}
#endif

#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

#if defined(NUMKERN_X86_64)
constexpr Isa kBuildLevels[] = {Isa::scalar, Isa::avx2, Isa::avx512};
#elif defined(NUMKERN_AARCH64)
constexpr Isa kBuildLevels[] = {Isa::scalar, Isa::neon, Isa::neon_dotprod, Isa::neon_i8mm};
#else
constexpr Isa kBuildLevels[] = {Isa::scalar};
#endif
constexpr int kBuildLevelCount = static_cast<int>(sizeof kBuildLevels / sizeof kBuildLevels[0]);

bool in_build(Isa isa) {
  for (Isa l : kBuildLevels)
    if (l == isa) return true;
  return false;
}

Isa best_isa(const CpuFeatures& f) {
#if defined(NUMKERN_X86_64)
  const bool avx2_ok = f.os_saves_ymm && f.avx && f.avx2 && f.fma && f.f16c && f.bmi1 && f.bmi2 && f.lzcnt && f.popcnt;
  const bool avx512_ok = avx2_ok && f.os_saves_zmm && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx512cd;
  return avx512_ok ? Isa::avx512 : avx2_ok ? Isa::avx2 : Isa::scalar;
#elif defined(NUMKERN_AARCH64)
  // SMMLA comes with Armv8.6 and SDOT with v8.4, but each is optional on its own: the i8mm level
  // runs dot-product code too (its quantizer and the families without an i8mm unit), so it needs both.
  if (!f.asimd) return Isa::scalar;
  if (!f.asimddp) return Isa::neon;
  return f.i8mm ? Isa::neon_i8mm : Isa::neon_dotprod;
#else
  (void)f;
  return Isa::scalar;
#endif
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
  // Within one architecture's ladder the enum values increase, so the cap is a numeric minimum.
  if (!in_build(requested)) requested = Isa::scalar;
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
    case Isa::neon:
      return "neon";
    case Isa::neon_dotprod:
      return "neon_dotprod";
    case Isa::neon_i8mm:
      return "neon_i8mm";
  }
  return "unknown";
}

const Isa* levels_of_build(int* count) {
  *count = kBuildLevelCount;
  return kBuildLevels;
}

const char* target_arch() {
#if defined(NUMKERN_X86_64)
  return "x86_64";
#elif defined(NUMKERN_AARCH64)
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
