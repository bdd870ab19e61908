// CPU feature detection and the ISA level that every family's dispatch table is indexed by.
#pragma once

namespace numkern {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };
constexpr int kIsaCount = 3;

struct CpuFeatures {
  bool sse42, popcnt, avx, avx2, fma, f16c, bmi1, bmi2, lzcnt;
  bool avx512f, avx512bw, avx512dq, avx512vl, avx512cd, avx512vnni, avx512vbmi, avx512bf16, avxvnni;
  bool os_saves_ymm, os_saves_zmm;  // XCR0: the OS preserves the register state (XGETBV)
};

// All false on a CPU that is not x86-64: there only the scalar level exists.
const CpuFeatures& cpu_features();
Isa detected_isa();  // best level this CPU and OS support
Isa active_isa();    // level the kernels use now
// Caps the active level; a request above detected_isa() is clamped. Returns the level set.
Isa set_active_isa(Isa requested);
const char* isa_name(Isa isa);
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

// One entry per ISA level, indexed by Isa; families keep their kernels in such a table. A level the
// build lacks (nullptr) falls back to the next lower one.
template <class Table>
const Table& pick(const Table* const (&tables)[kIsaCount]) {
  int level = static_cast<int>(active_isa());
  while (level > 0 && tables[level] == nullptr) --level;
  return *tables[level];
}

}  // namespace numkern
