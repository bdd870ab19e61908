// CPU feature detection and the ISA level that every family's dispatch table is indexed by.
#pragma once

namespace numkern {

// One ladder of levels per architecture, in one enum so that every dispatch table has a slot for
// each: x86-64 has scalar < avx2 < avx512, AArch64 has scalar < neon < neon_dotprod < neon_i8mm.
// A build only ever detects or activates the levels of its own architecture (levels_of_build()),
// so pick()'s walk down from an Arm level passes the x86 slots, which are nullptr there.
enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2, neon = 3, neon_dotprod = 4, neon_i8mm = 5 };
constexpr int kIsaCount = 6;

struct CpuFeatures {
  // x86-64 (CPUID).
  bool sse42, popcnt, avx, avx2, fma, f16c, bmi1, bmi2, lzcnt;
  bool avx512f, avx512bw, avx512dq, avx512vl, avx512cd, avx512vnni, avx512vbmi, avx512bf16, avxvnni;
  bool os_saves_ymm, os_saves_zmm;  // XCR0: the OS preserves the register state (XGETBV)
  // AArch64 (Linux: getauxval(AT_HWCAP / AT_HWCAP2); macOS: sysctl hw.optional.*): Advanced SIMD,
  // SDOT/UDOT, SMMLA/UMMLA, half-precision arithmetic (scalar and vector), BF16.
  bool asimd, asimddp, i8mm, fphp, asimdhp, bf16;
};

// The features of the other architecture are all false; on a CPU that is neither x86-64 nor AArch64
// only the scalar level exists.
const CpuFeatures& cpu_features();
Isa detected_isa();  // best level this CPU and OS support
Isa active_isa();    // level the kernels use now
// Caps the active level; a request above detected_isa() is clamped. Returns the level set.
Isa set_active_isa(Isa requested);
const char* isa_name(Isa isa);
// The levels of the build's architecture, lowest first (*count of them): those set_active_isa
// honours (it treats a level of another architecture as scalar).
const Isa* levels_of_build(int* count);
// The architecture the extension was built for ("x86_64", "aarch64", ...).
const char* target_arch();

// Orders earlier non-temporal (streaming) stores before later stores: call once after a run of them.
void store_fence();

// The x86 kernel tables exist only in builds for x86-64 (CMake defines NUMKERN_X86_KERNELS there);
// elsewhere a dispatch table names them as nullptr and only the scalar level is detected.
#if defined(NUMKERN_X86_KERNELS)
#define NUMKERN_X86_TABLE(table) (&(table))
#else
#define NUMKERN_X86_TABLE(table) nullptr
#endif
// Likewise for the NEON tables, which exist only in builds for AArch64 (NUMKERN_ARM_KERNELS).
#if defined(NUMKERN_ARM_KERNELS)
#define NUMKERN_ARM_TABLE(table) (&(table))
#else
#define NUMKERN_ARM_TABLE(table) nullptr
#endif

// One entry per ISA level, indexed by Isa; families keep their kernels in such a table. A level the
// build lacks (nullptr) falls back to the next lower one.
template <class Table>
const Table& pick(const Table* const (&tables)[kIsaCount]) {
  int level = static_cast<int>(active_isa());
  while (level > 0 && tables[level] == nullptr) --level;
  return *tables[level];
}

}  // namespace numkern
