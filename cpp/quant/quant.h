// The quant family (ShiftQuant, Guo et al. arXiv 2411.10948): per-ISA kernel tables and the driver.
//
// Two tables per level: GemmKernels (packing + s8 x s8 -> s32 micro-kernel) and QuantKernels (the
// quantizer's max-abs and round/pack passes). The driver (quant.cpp) threads, blocks and packs.
#pragma once

#include <cstddef>
#include <cstdint>

namespace numkern::quant {

// Micro-kernel contract. A is packed in panels of MR rows, B in panels of NR columns, K in units of
// KU (zero padded). A packed K-block of kc (a multiple of KU, or the padded tail) holds
// kc * MR elements of a_bytes each; a B block holds kc * NR elements of b_bytes each followed, when
// has_corr, by NR int32 terms the kernel adds to every row (the VNNI offset correction).
struct GemmKernels {
  const char* name;
  int mr, nr, ku;
  int a_bytes, b_bytes;
  bool has_corr;
  std::int64_t kc;  // longest K-block (a multiple of ku); |block sum| <= kc * 2^14 fits int32 for kc < 2^17
  // Packs rows [0, m) (m <= MR) and k in [0, k) of a row-major A (row stride lda bytes).
  void (*pack_a)(const std::int8_t* a, std::int64_t lda, std::int64_t m, std::int64_t k, void* out);
  // Packs columns [0, n) (any n: ceil(n / NR) panels, the p-th at out + p * panel_stride bytes) and
  // k in [0, k) of a row-major B (row stride ldb bytes).
  void (*pack_b)(const std::int8_t* b, std::int64_t ldb, std::int64_t n, std::int64_t k, void* out,
                 std::int64_t panel_stride);
  // c[MR x NR] (row stride ldc) = (accumulate ? c : 0) + A_panel * B_panel over k (a multiple of KU).
  void (*ukernel)(std::int64_t k, const void* ap, const void* bp, std::int32_t* c, std::int64_t ldc, int accumulate);
};

// Counter-based uniform draws for stochastic rounding: u = hash(index, key) / 2^32, identical on
// every ISA level so results do not depend on the CPU.
struct QuantKernels {
  const char* name;
  // acc[j] = max(acc[j], bits(|x[j]|)) for j < n: float bit patterns as uint32 keep the order of
  // non-negative floats and put NaN above inf, so NaN is never lost.
  void (*absmax_acc)(const float* x, std::uint32_t* acc, std::int64_t n);
  // max_j bits(|x[j]|).
  std::uint32_t (*absmax)(const float* x, std::int64_t n);
  // q[j] = clamp(round(x[j] * f[j] / base), -Q, Q) * g[j]; f, g advance with j when vec_f, else f[0],
  // g[0] apply to all. stochastic: round(t) = floor(t) + (u_j < t - floor(t)) with u_j from the
  // hash of (index0 + j, key).
  void (*quantize)(const float* x, std::int8_t* q, std::int64_t n, const float* f, const float* g, bool vec_f,
                   float base, int Q, bool stochastic, std::uint64_t index0, std::uint64_t key);
  // out[j] = float(double(c[j]) * s * col[j]) (one rounding); col may be null (1).
  void (*epilogue_f32)(const std::int32_t* c, float* out, std::int64_t n, double s, const double* col);
};

extern const GemmKernels kernels_scalar_gemm, kernels_avx2_gemm, kernels_avx512vnni_gemm;
extern const QuantKernels kernels_scalar_quant, kernels_avx2_quant, kernels_avx512_quant;
// AArch64 builds only: one GEMM per NEON level (smlal, sdot, smmla), one quantizer for all three.
extern const GemmKernels kernels_neon_gemm, kernels_neon_dotprod_gemm, kernels_neon_i8mm_gemm;
extern const QuantKernels kernels_neon_quant;

const GemmKernels& active_gemm();
const QuantKernels& active_quant();

enum class OutKind : int { i32 = 0, i64 = 1, f32 = 2, f64 = 3 };

// C = A @ B for contiguous row-major int8 A (M x K) and B (K x N). For f32/f64 outputs
// C[i][j] = scale * row[i] * col[j] * sum_k A[i][k] B[k][j] with one final rounding (row/col may be
// null). Exact for any K: int32 within a K-block, widened to int64 when K exceeds kMaxK32.
void int8_gemm(std::int64_t M, std::int64_t N, std::int64_t K, const std::int8_t* A, const std::int8_t* B, OutKind kind,
               void* C, double scale, const double* row, const double* col);

// A B operand packed once (pack_b) for many int8_gemm_packed calls: a 64-byte header, then B's
// panels exactly as int8_gemm packs them for the table named in the header (the geometry, K-blocks
// and panel strides, is a function of the table, K and N only). Read-only after pack_b, so any
// number of threads may multiply by it at once.
struct PackedBHeader {
  char magic[8];  // kPackedBMagic
  std::int64_t k, n;
  std::int64_t bytes;  // of the whole buffer, header included
  char kernel[32];     // GemmKernels::name of the table, NUL padded
};
static_assert(sizeof(PackedBHeader) == 64, "the panels start one cache line into the buffer");
constexpr char kPackedBMagic[8] = {'N', 'K', 'P', 'A', 'C', 'K', 'B', '1'};
// The buffers (and so the panels) start at this alignment: the micro-kernels' 64-byte loads of a
// panel then never straddle cache lines.
constexpr std::int64_t kPackedBAlign = 64;

// Bytes of a packed (K x N) B operand for table g (header included).
std::int64_t packed_b_bytes(const GemmKernels& g, std::int64_t K, std::int64_t N);
// Packs the row-major int8 B (K x N) for table g into out (packed_b_bytes(g, K, N) bytes,
// kPackedBAlign-aligned) and writes its header.
void pack_b(const GemmKernels& g, std::int64_t K, std::int64_t N, const std::int8_t* B, void* out);
// The table `packed` (of `bytes` bytes) was packed for, if it can serve as the (K x N) B operand of
// the active table; else nullptr, with *why saying what is wrong: the header names another table
// (packed at another ISA level), another K or N, or another size. The panel bytes are never
// trusted for anything but their values. The caller multiplies with the table returned (not a
// fresh active_gemm(), which another thread's set_isa may change meanwhile).
const GemmKernels* packed_b_table(const void* packed, std::int64_t bytes, std::int64_t K, std::int64_t N,
                                  const char** why);
// int8_gemm with B given packed for table g (as packed_b_table returned it).
void int8_gemm_packed(const GemmKernels& g, std::int64_t M, std::int64_t N, std::int64_t K, const std::int8_t* A,
                      const void* packed, OutKind kind, void* C, double scale, const double* row, const double* col);

// The largest K for which sum_k a_k b_k with a, b in [-128, 127] fits int32: K * 2^14 <= 2^31 - 1.
constexpr std::int64_t kMaxK32 = (std::int64_t{1} << 17) - 1;

// The most exponent groups shiftquant takes (shift holds 0 .. kMaxGroups - 1; the pre-shift of the
// matmul needs fewer, so that q << (n_groups - 1 - e) fits int8).
constexpr int kMaxGroups = 32;

// ShiftQuant of x viewed as (outer, L, inner) with channels/blocks along L.
// block == 0: channel mode, shift has L entries; block > 0: blocks of `block` along L, shift has
// outer * nblocks * inner entries in that order. Returns false (x untouched) if x has NaN or inf.
// preshift: q is written as q << (n_groups - 1 - e) (the matmul pre-shift), else plain q.
bool shiftquant(const float* x, std::int64_t outer, std::int64_t L, std::int64_t inner, int bits, int n_groups,
                std::int64_t block, bool stochastic, std::uint64_t key, bool preshift, std::int8_t* q,
                std::uint8_t* shift, float* base_scale);

// Unpacks rows of m bytes (two's complement nibbles, element 2j low, 2j+1 high) into rows of n
// int8 (n is 2m or 2m - 1).
void unpack_int4(const std::uint8_t* p, std::int64_t rows, std::int64_t m, std::int8_t* out, std::int64_t n);

}  // namespace numkern::quant
