// CPU feature detection and the ISA level that every family's dispatch table is indexed by.
#pragma once

namespace numkern {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };
constexpr int kIsaCount = 3;

struct CpuFeatures {
  bool sse42, popcnt, avx, avx2, fma, f16c, bmi1, bmi2, lzcnt;
  bool avx512f, avx512bw, avx512dq, avx512vl, avx512cd, avx512vnni, avx512bf16, avxvnni;
  bool os_saves_ymm, os_saves_zmm;  // XCR0: the OS preserves the register state (XGETBV)
};

const CpuFeatures& cpu_features();
Isa detected_isa();  // best level this CPU and OS support
Isa active_isa();    // level the kernels use now
// Caps the active level; a request above detected_isa() is clamped. Returns the level set.
Isa set_active_isa(Isa requested);
const char* isa_name(Isa isa);

// One entry per ISA level, indexed by Isa; families keep their kernels in such a table.
template <class Table>
const Table& pick(const Table* const (&tables)[kIsaCount]) {
  return *tables[static_cast<int>(active_isa())];
}

}  // namespace numkern
