// Driver of the quant family: dispatch, packing, cache blocking and threading of the int8 GEMM,
// and the ShiftQuant quantizer passes (max-abs, exponents, round/pack).
#include "quant/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "common/isa.h"
#include "common/parallel.h"
#include "common/simd_base.h"

namespace numkern::quant {

const GemmKernels& active_gemm() {
  // vpdpbusd needs AVX512-VNNI; an AVX-512 CPU without it has no AVX-512 entry and runs the AVX2 kernel.
  static const GemmKernels* const vnni[kIsaCount] = {&kernels_scalar_gemm,
                                                     NUMKERN_X86_TABLE(kernels_avx2_gemm),
                                                     NUMKERN_X86_TABLE(kernels_avx512vnni_gemm),
                                                     NUMKERN_ARM_TABLE(kernels_neon_gemm),
                                                     NUMKERN_ARM_TABLE(kernels_neon_dotprod_gemm),
                                                     NUMKERN_ARM_TABLE(kernels_neon_i8mm_gemm)};
  static const GemmKernels* const no_vnni[kIsaCount] = {&kernels_scalar_gemm,
                                                        NUMKERN_X86_TABLE(kernels_avx2_gemm),
                                                        nullptr,
                                                        NUMKERN_ARM_TABLE(kernels_neon_gemm),
                                                        NUMKERN_ARM_TABLE(kernels_neon_dotprod_gemm),
                                                        NUMKERN_ARM_TABLE(kernels_neon_i8mm_gemm)};
  return pick(cpu_features().avx512vnni ? vnni : no_vnni);
}

const QuantKernels& active_quant() {
  // The quantizer has no use for sdot / smmla: the two upper NEON levels run the NEON one.
  static const QuantKernels* const tables[kIsaCount] = {&kernels_scalar_quant,
                                                        NUMKERN_X86_TABLE(kernels_avx2_quant),
                                                        NUMKERN_X86_TABLE(kernels_avx512_quant),
                                                        NUMKERN_ARM_TABLE(kernels_neon_quant),
                                                        nullptr,
                                                        nullptr};
  return pick(tables);
}

namespace {

struct AlignedBuffer {
  void* p = nullptr;
  explicit AlignedBuffer(std::size_t bytes)
      : p(::operator new(std::max<std::size_t>(bytes, 64), std::align_val_t(64))) {}
  ~AlignedBuffer() { ::operator delete(p, std::align_val_t(64)); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Geometry of the packed operands: both are packed once, whole, before the compute loop.
struct Plan {
  const GemmKernels* g;
  std::int64_t M, N, K, kc, nb, mp, np;
  std::int64_t a_block_stride, a_panel, b_block_stride, b_panel;  // bytes
  std::int64_t klen(std::int64_t pb) const { return std::min(kc, K - pb * kc); }
  std::int64_t kpad(std::int64_t pb) const { return ceil_div(klen(pb), g->ku) * g->ku; }
};

Plan make_plan(const GemmKernels& g, std::int64_t M, std::int64_t N, std::int64_t K) {
  Plan p{};
  p.g = &g;
  p.M = M, p.N = N, p.K = K;
  // Equal K-blocks no longer than the table's kc (which keeps the B micro-panel cache resident).
  p.nb = ceil_div(K, g.kc);
  p.kc = ceil_div(ceil_div(K, p.nb), g.ku) * g.ku;
  p.nb = ceil_div(K, p.kc);
  p.mp = ceil_div(M, g.mr), p.np = ceil_div(N, g.nr);
  const std::int64_t corr = g.has_corr ? g.nr * 4 : 0;
  p.a_block_stride = p.kc * g.mr * g.a_bytes;
  p.b_block_stride = p.kc * g.nr * g.b_bytes + corr;
  const std::int64_t last_pad = p.kpad(p.nb - 1);
  p.a_panel = (p.nb - 1) * p.a_block_stride + last_pad * g.mr * g.a_bytes;
  p.b_panel = (p.nb - 1) * p.b_block_stride + last_pad * g.nr * g.b_bytes + corr;
  return p;
}

// Accumulator of one work item: rows [i0, i1) x columns [j0, j1) of C, int32 when K <= kMaxK32
// (then every partial sum fits too, so wrapping never happens) else int64 over int32 K-blocks.
template <class Acc>
void compute_item(const Plan& p, const std::uint8_t* ap, const std::uint8_t* bp, std::int64_t i0, std::int64_t i1,
                  std::int64_t j0, std::int64_t j1, Acc* c, std::int64_t ldc) {
  const GemmKernels& g = *p.g;
  const int mr = g.mr, nr = g.nr;
  alignas(64) std::int32_t tile[32 * 64];
  for (std::int64_t pb = 0; pb < p.nb; ++pb) {
    const std::int64_t kp = p.kpad(pb);
    for (std::int64_t j = j0; j < j1; j += nr) {
      const std::uint8_t* b = bp + (j / nr) * p.b_panel + pb * p.b_block_stride;
      const std::int64_t n = std::min<std::int64_t>(nr, j1 - j);
      for (std::int64_t i = i0; i < i1; i += mr) {
        const std::uint8_t* a = ap + (i / mr) * p.a_panel + pb * p.a_block_stride;
        const std::int64_t m = std::min<std::int64_t>(mr, i1 - i);
        Acc* ct = c + (i - i0) * ldc + (j - j0);
        if (sizeof(Acc) == 4 && m == mr && n == nr) {
          g.ukernel(kp, a, b, reinterpret_cast<std::int32_t*>(ct), ldc, pb > 0);
          continue;
        }
        g.ukernel(kp, a, b, tile, nr, 0);
        for (std::int64_t r = 0; r < m; ++r)
          for (std::int64_t jj = 0; jj < n; ++jj) {
            const Acc v = static_cast<Acc>(tile[r * nr + jj]);
            ct[r * ldc + jj] = pb > 0 ? static_cast<Acc>(ct[r * ldc + jj] + v) : v;
          }
      }
    }
  }
}

void pack_a_panels(const Plan& p, const std::int8_t* A, std::uint8_t* ap, std::int64_t ib, std::int64_t ie) {
  const GemmKernels& g = *p.g;
  for (std::int64_t ip = ib; ip < ie; ++ip)
    for (std::int64_t pb = 0; pb < p.nb; ++pb)
      g.pack_a(A + ip * g.mr * p.K + pb * p.kc, p.K, std::min<std::int64_t>(g.mr, p.M - ip * g.mr), p.klen(pb),
               ap + ip * p.a_panel + pb * p.a_block_stride);
}

// B goes in strips of up to 8 panels per call, so each call reads whole cache lines of B rows.
void pack_b_panels(const Plan& p, const std::int8_t* B, std::uint8_t* bp, std::int64_t jb, std::int64_t je) {
  const GemmKernels& g = *p.g;
  for (std::int64_t pb = 0; pb < p.nb; ++pb)
    for (std::int64_t js = jb; js < je; js += 8) {
      const std::int64_t j0 = js * g.nr, n = std::min(std::min<std::int64_t>(je - js, 8) * g.nr, p.N - j0);
      g.pack_b(B + pb * p.kc * p.N + j0, p.N, n, p.klen(pb), bp + js * p.b_panel + pb * p.b_block_stride, p.b_panel);
    }
}

// Row i of C, columns [j0, j0 + cols), from its exact int32 sums: integer outputs take them as they
// are, float outputs scale * row[i] * col[j] times each, rounded once.
void store_row(const QuantKernels& qk, OutKind kind, const std::int32_t* acc, std::int64_t cols, void* C,
               std::int64_t N, std::int64_t i, std::int64_t j0, double scale, const double* row, const double* col) {
  const std::int64_t at = i * N + j0;
  const double s = scale * (row ? row[i] : 1.0);
  const double* cl = col ? col + j0 : nullptr;
  switch (kind) {
    case OutKind::i32:
      std::memcpy(static_cast<std::int32_t*>(C) + at, acc, static_cast<std::size_t>(cols) * sizeof(std::int32_t));
      return;
    case OutKind::i64:
      std::copy(acc, acc + cols, static_cast<std::int64_t*>(C) + at);
      return;
    case OutKind::f32:
      qk.epilogue_f32(acc, static_cast<float*>(C) + at, cols, s, cl);
      return;
    case OutKind::f64:
      for (std::int64_t j = 0; j < cols; ++j)
        static_cast<double*>(C)[at + j] = static_cast<double>(acc[j]) * s * (cl ? cl[j] : 1.0);
      return;
  }
}

// Whether run_gemm_ksplit takes a GEMM: at most two row panels of A, a B to pack, K <= kMaxK32, and
// the threads' int32 sums of C at most 2^22 (16 MiB).
bool ksplit_fits(const Plan& p) {
  const GemmKernels& g = *p.g;
  return p.mp <= 2 && p.K <= kMaxK32 &&
         static_cast<double>(num_threads()) * static_cast<double>(p.mp * g.mr) * static_cast<double>(p.np * g.nr) <=
             4194304.0;
}

// The GEMM of a few rows of A by a B that is not packed yet (K <= kMaxK32), split along K. The
// column-panel split of run_gemm reads B down narrow columns (a few cache lines per row, at B's row
// stride) into a packed copy of all of it that the compute pass reads again; here each thread takes
// chunks of consecutive rows of B, which are contiguous in memory, packs a chunk into a buffer that
// stays in cache and multiplies it at once into its own int32 sums of C. The sums are exact, so
// adding the threads' sums gives the same C as run_gemm.
void run_gemm_ksplit(const Plan& p, const std::int8_t* A, const std::int8_t* B, OutKind kind, void* C, double scale,
                     const double* row, const double* col) {
  const GemmKernels& g = *p.g;
  const QuantKernels& qk = active_quant();
  const std::int64_t M = p.M, N = p.N, K = p.K;
  const std::int64_t ldc = p.np * g.nr, rows = p.mp * g.mr;
  // A thread per ~2^21 bytes of B (see run_gemm).
  int nt = static_cast<int>(std::min<std::int64_t>(num_threads(), std::max<std::int64_t>(1, (K * N) >> 21)));
  // Rows of B per chunk: about 256 KiB of B, a multiple of the kernel's K unit, at most its kc.
  const std::int64_t by_size = (std::int64_t{256} << 10) / std::max<std::int64_t>(1, ldc) / g.ku * g.ku;
  const std::int64_t kch = std::clamp<std::int64_t>(by_size, std::min<std::int64_t>(4 * g.ku, p.kc), p.kc);
  const std::int64_t chunks = ceil_div(K, kch);
  nt = static_cast<int>(std::min<std::int64_t>(nt, chunks));
  const std::int64_t corr = g.has_corr ? g.nr * 4 : 0;
  const std::int64_t b_stride = kch * g.nr * g.b_bytes + corr, a_stride = kch * g.mr * g.a_bytes;
  AlignedBuffer sums(static_cast<std::size_t>(nt * rows * ldc) * sizeof(std::int32_t));
  std::vector<char> used(static_cast<std::size_t>(nt), 0);
  parallel_chunks(chunks, nt, 1, [&](int w, std::int64_t cb, std::int64_t ce) {
    AlignedBuffer bloc(static_cast<std::size_t>(p.np * b_stride)), aloc(static_cast<std::size_t>(p.mp * a_stride));
    auto* bp = bloc.as<std::uint8_t>();
    auto* ap = aloc.as<std::uint8_t>();
    std::int32_t* c = sums.as<std::int32_t>() + w * rows * ldc;
    for (std::int64_t ch = cb; ch < ce; ++ch) {
      const std::int64_t k0 = ch * kch, klen = std::min(kch, K - k0), kp = ceil_div(klen, g.ku) * g.ku;
      for (std::int64_t ip = 0; ip < p.mp; ++ip)
        g.pack_a(A + ip * g.mr * K + k0, K, std::min<std::int64_t>(g.mr, M - ip * g.mr), klen, ap + ip * a_stride);
      g.pack_b(B + k0 * N, N, N, klen, bp, b_stride);  // rows of B in memory order, each read whole
      const int accumulate = used[static_cast<std::size_t>(w)];
      for (std::int64_t ip = 0; ip < p.mp; ++ip)
        for (std::int64_t jp = 0; jp < p.np; ++jp)
          g.ukernel(kp, ap + ip * a_stride, bp + jp * b_stride, c + ip * g.mr * ldc + jp * g.nr, ldc, accumulate);
      used[static_cast<std::size_t>(w)] = 1;
    }
  });
  // C = the sum of the threads' sums, row by row.
  const std::int32_t* s0 = sums.as<std::int32_t>();
  std::vector<std::int32_t> acc(static_cast<std::size_t>(N));
  for (std::int64_t i = 0; i < M; ++i) {
    std::fill(acc.begin(), acc.end(), 0);
    for (int w = 0; w < nt; ++w)
      if (used[static_cast<std::size_t>(w)])
        for (std::int64_t j = 0; j < N; ++j) acc[static_cast<std::size_t>(j)] += s0[(w * rows + i) * ldc + j];
    store_row(qk, kind, acc.data(), N, C, N, i, 0, scale, row, col);
  }
}

// The GEMM on a plan: B is packed here when given (B != nullptr), else bp holds it packed already.
void run_gemm(const Plan& p, const std::int8_t* A, const std::int8_t* B, const std::uint8_t* bp_given, OutKind kind,
              void* C, double scale, const double* row, const double* col) {
  const GemmKernels& g = *p.g;
  const QuantKernels& qk = active_quant();
  const std::int64_t M = p.M, N = p.N, K = p.K;
  AlignedBuffer apack(static_cast<std::size_t>(p.mp * p.a_panel)),
      bpack(static_cast<std::size_t>(B ? p.np * p.b_panel : 0));
  auto* ap = apack.as<std::uint8_t>();
  std::uint8_t* bp_own = B ? bpack.as<std::uint8_t>() : nullptr;
  const std::uint8_t* bp = B ? bp_own : bp_given;
  const std::int64_t mc = g.mr * std::max<std::int64_t>(1, (256 * 1024) / (p.kc * g.mr * g.a_bytes));
  const bool wide = K > kMaxK32;
  const bool direct32 = kind == OutKind::i32 && !wide, direct64 = kind == OutKind::i64;

  // Threads split the row panels (or, with too few rows, the column panels) into contiguous equal
  // ranges; each walks its range in blocks of mc rows so the A block (mc x kc) stays in L2. A
  // second thread only pays off past ~2^25 multiply-adds per thread (waking it costs more than that
  // on a busy machine), or past ~2^21 bytes of B to pack: with few rows of A, packing B (a pass over
  // all of it) is most of the work.
  const int max_threads = num_threads();
  const bool split_rows = p.mp >= 2 * max_threads || p.mp >= p.np;
  const std::int64_t units = split_rows ? p.mp : p.np;
  const double macs = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const double pack_bytes = B ? static_cast<double>(K) * static_cast<double>(N) : 0.0;
  const std::int64_t by_work =
      static_cast<std::int64_t>(std::min(1e6, std::max(1.0, macs / 33554432.0 + pack_bytes / 2097152.0)));
  const int nt = static_cast<int>(std::min<std::int64_t>({max_threads, by_work, units}));

  auto compute_range = [&](std::int64_t b, std::int64_t e) {
    std::vector<std::int32_t> s32;
    std::vector<std::int64_t> s64;
    const std::int64_t r_begin = split_rows ? b * g.mr : 0, r_end = split_rows ? std::min(M, e * g.mr) : M;
    const std::int64_t j0 = split_rows ? 0 : b * g.nr, j1 = split_rows ? N : std::min(N, e * g.nr);
    for (std::int64_t i0 = r_begin; i0 < r_end; i0 += mc) {
      const std::int64_t i1 = std::min(r_end, i0 + mc);
      const std::int64_t rows = i1 - i0, cols = j1 - j0;
      if (direct32) {
        compute_item(p, ap, bp, i0, i1, j0, j1, static_cast<std::int32_t*>(C) + i0 * N + j0, N);
        continue;
      }
      if (direct64) {
        compute_item(p, ap, bp, i0, i1, j0, j1, static_cast<std::int64_t*>(C) + i0 * N + j0, N);
        continue;
      }
      if (!wide) {
        s32.resize(static_cast<std::size_t>(rows * cols));
        compute_item(p, ap, bp, i0, i1, j0, j1, s32.data(), cols);
      } else {
        s64.resize(static_cast<std::size_t>(rows * cols));
        compute_item(p, ap, bp, i0, i1, j0, j1, s64.data(), cols);
      }
      for (std::int64_t r = 0; r < rows; ++r) {
        if (!wide) {
          store_row(qk, kind, s32.data() + r * cols, cols, C, N, i0 + r, j0, scale, row, col);
          continue;
        }
        const double s = scale * (row ? row[i0 + r] : 1.0);
        const double* cl = col ? col + j0 : nullptr;
        for (std::int64_t j = 0; j < cols; ++j) {
          const double v = static_cast<double>(s64[r * cols + j]) * s * (cl ? cl[j] : 1.0);
          if (kind == OutKind::f32)
            static_cast<float*>(C)[(i0 + r) * N + j0 + j] = static_cast<float>(v);
          else  // f64 (an i32 output with K > kMaxK32 is asked for as i64, which is stored directly)
            static_cast<double*>(C)[(i0 + r) * N + j0 + j] = v;
        }
      }
    }
  };

  // Pack, then compute: two passes over the same ranges, several per thread, claimed on demand so
  // that a thread the OS preempts holds up a small share (the sums are exact, so the split does not
  // change the result). Range r of the other operand is that range's share of packing it. A
  // prepacked B leaves A alone to pack.
  const int parts = static_cast<int>(std::min<std::int64_t>(units, nt > 1 ? 4 * nt : 1));
  parallel_ranges(
      units, parts,
      [&](int r, std::int64_t ub, std::int64_t ue) {
        const std::int64_t other = split_rows ? p.np : p.mp;
        const std::int64_t ob = other * r / parts, oe = other * (r + 1) / parts;
        const std::int64_t ab = split_rows ? ub : ob, ae = split_rows ? ue : oe;
        pack_a_panels(p, A, ap, ab, ae);
        if (B) pack_b_panels(p, B, bp_own, split_rows ? ob : ub, split_rows ? oe : ue);
      },
      1, nt);
  parallel_ranges(units, parts, [&](int, std::int64_t ub, std::int64_t ue) { compute_range(ub, ue); }, 1, nt);
}

}  // namespace

void int8_gemm(std::int64_t M, std::int64_t N, std::int64_t K, const std::int8_t* A, const std::int8_t* B, OutKind kind,
               void* C, double scale, const double* row, const double* col) {
  if (M <= 0 || N <= 0 || K <= 0) return;  // the caller fills empty-K results
  const Plan p = make_plan(active_gemm(), M, N, K);
  if (ksplit_fits(p)) return run_gemm_ksplit(p, A, B, kind, C, scale, row, col);
  run_gemm(p, A, B, nullptr, kind, C, scale, row, col);
}

std::int64_t packed_b_bytes(const GemmKernels& g, std::int64_t K, std::int64_t N) {
  const std::int64_t header = sizeof(PackedBHeader);
  if (K <= 0 || N <= 0) return header;
  const Plan p = make_plan(g, 1, N, K);
  return header + p.np * p.b_panel;
}

void pack_b(const GemmKernels& g, std::int64_t K, std::int64_t N, const std::int8_t* B, void* out) {
  PackedBHeader h{};
  std::memcpy(h.magic, kPackedBMagic, sizeof h.magic);
  h.k = K, h.n = N, h.bytes = packed_b_bytes(g, K, N);
  std::memcpy(h.kernel, g.name, std::min(std::strlen(g.name), sizeof h.kernel - 1));
  std::memcpy(out, &h, sizeof h);
  if (K <= 0 || N <= 0) return;
  const Plan p = make_plan(g, 1, N, K);
  auto* bp = static_cast<std::uint8_t*>(out) + sizeof(PackedBHeader);
  // Runs of 8 panels (pack_b_panels' strips) on the pool, a thread per ~2^24 elements of B.
  const std::int64_t strips = ceil_div(p.np, 8);
  const int nt =
      static_cast<int>(std::min<std::int64_t>({num_threads(), strips, std::max<std::int64_t>(1, (K * N) >> 24)}));
  parallel_ranges(
      strips, nt > 1 ? 4 * nt : 1,
      [&](int, std::int64_t sb, std::int64_t se) { pack_b_panels(p, B, bp, sb * 8, std::min(p.np, se * 8)); }, 1, nt);
}

const GemmKernels* packed_b_table(const void* packed, std::int64_t bytes, std::int64_t K, std::int64_t N,
                                  const char** why) {
  const GemmKernels& g = active_gemm();
  PackedBHeader h{};
  if (bytes >= static_cast<std::int64_t>(sizeof h)) std::memcpy(&h, packed, sizeof h);
  if (std::memcmp(h.magic, kPackedBMagic, sizeof h.magic) != 0)
    *why = "not a packed operand (no header)";
  else if (std::strncmp(h.kernel, g.name, sizeof h.kernel) != 0)
    *why = "packed for another GEMM kernel than the active one (another ISA level): repack it";
  else if (h.k != K || h.n != N)
    *why = "packed for another K or N";
  else if (h.bytes != bytes || bytes != packed_b_bytes(g, K, N))
    *why = "the packed operand has the wrong size";
  else
    return &g;
  return nullptr;
}

void int8_gemm_packed(const GemmKernels& g, std::int64_t M, std::int64_t N, std::int64_t K, const std::int8_t* A,
                      const void* packed, OutKind kind, void* C, double scale, const double* row, const double* col) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  run_gemm(make_plan(g, M, N, K), A, nullptr, static_cast<const std::uint8_t*>(packed) + sizeof(PackedBHeader), kind, C,
           scale, row, col);
}

// ---------------------------------------------------------------------------------------------
// ShiftQuant

namespace {

// floor(log2(R / r)) for 0 < r <= R, exactly: with R = mR 2^eR, r = mr 2^er (m in [0.5, 1)),
// R / r = (mR / mr) 2^(eR - er) and mR / mr lies in (0.5, 2).
int floor_log2_ratio(float R, float r) {
  int eR, er;
  const float mR = std::frexp(R, &eR), mr = std::frexp(r, &er);
  return eR - er - (mR < mr ? 1 : 0);
}

// Splits a quantize call at multiples of 2^32 elements so that each kernel call sees one
// segment; the segment number is folded into the key so draws never repeat.
void quantize_run(const QuantKernels& qk, const float* x, std::int8_t* q, std::int64_t n, const float* f,
                  const float* g, bool vec_f, float base, int Q, bool stochastic, std::uint64_t index0,
                  std::uint64_t key) {
  while (n > 0) {
    const std::uint64_t seg = index0 >> 32;
    const std::int64_t room = static_cast<std::int64_t>((seg + 1) << 32) - static_cast<std::int64_t>(index0);
    const std::int64_t len = std::min(n, room);
    const std::uint64_t k = key + (seg * 0x9E3779B97F4A7C15ull & 0xFFFFFFFF00000000ull);
    qk.quantize(x, q, len, f, g, vec_f, base, Q, stochastic, index0, k);
    x += len, q += len, n -= len, index0 += static_cast<std::uint64_t>(len);
    if (vec_f) f += len, g += len;
  }
}

}  // namespace

bool shiftquant(const float* x, std::int64_t outer, std::int64_t L, std::int64_t inner, int bits, int n_groups,
                std::int64_t block, bool stochastic, std::uint64_t key, bool preshift, std::int8_t* q,
                std::uint8_t* shift, float* base_scale) {
  const QuantKernels& qk = active_quant();
  const int Q = (1 << (bits - 1)) - 1;
  const std::int64_t nb = block > 0 ? ceil_div(L, block) : 0;
  const std::int64_t ngroups = block > 0 ? outer * nb * inner : L;
  const std::int64_t total = outer * L * inner;
  // A second thread only for more than 2^18 elements per thread.
  const int nt = static_cast<int>(std::min<std::int64_t>(num_threads(), std::max<std::int64_t>(1, total >> 18)));
  const bool rows_mode = block == 0 && inner == 1;  // channels along contiguous rows: per-thread partial maxima
  std::vector<std::uint32_t> r(static_cast<std::size_t>(ngroups), 0u);
  // Each pass is split in several ranges per thread, claimed on demand: a thread that joins late
  // (just woken) still takes a share. Per-range partial maxima (rows mode) are capped at 16 MiB.
  const int parts3 = nt > 1 ? 4 * nt : 1;
  const int parts1 = rows_mode ? static_cast<int>(std::clamp<std::int64_t>(
                                     (std::int64_t{16} << 20) / (4 * std::max<std::int64_t>(L, 1)), nt, parts3))
                               : parts3;
  std::vector<std::vector<std::uint32_t>> part(rows_mode ? static_cast<std::size_t>(parts1) : 0);

  // 1. max-abs per group, as bit patterns of |x|: items [b, e) of n1, by thread `t`.
  const std::int64_t n1 = rows_mode ? outer : (block == 0 ? L : outer * nb);
  auto absmax_items = [&](std::int64_t b, std::int64_t e, int t) {
    if (rows_mode) {
      auto& acc = part[static_cast<std::size_t>(t)];
      acc.assign(static_cast<std::size_t>(L), 0u);
      for (std::int64_t o = b; o < e; ++o) qk.absmax_acc(x + o * L, acc.data(), L);
    } else if (block == 0) {
      for (std::int64_t c = b; c < e; ++c)
        for (std::int64_t o = 0; o < outer; ++o) r[c] = std::max(r[c], qk.absmax(x + (o * L + c) * inner, inner));
    } else if (inner == 1) {
      for (std::int64_t g = b; g < e; ++g) {
        const std::int64_t o = g / nb, l0 = (g % nb) * block;
        r[g] = qk.absmax(x + o * L + l0, std::min(block, L - l0));
      }
    } else {
      for (std::int64_t g = b; g < e; ++g) {
        const std::int64_t o = g / nb, k = g % nb;
        for (std::int64_t l = k * block; l < std::min(L, (k + 1) * block); ++l)
          qk.absmax_acc(x + (o * L + l) * inner, r.data() + g * inner, inner);
      }
    }
  };

  // 2. (one thread) R, exponents, and per-group multipliers f = 2^e (into the quantizer) and
  // g = 2^(G-1-e) (the matmul pre-shift).
  std::vector<float> f(static_cast<std::size_t>(ngroups)), gm(static_cast<std::size_t>(ngroups));
  float base = 0.0f;
  bool finite = true;
  auto exponents = [&] {
    for (const auto& acc : part)
      for (std::size_t c = 0; c < acc.size(); ++c) r[c] = std::max(r[c], acc[c]);
    std::uint32_t Rb = 0;
    for (std::uint32_t v : r) Rb = std::max(Rb, v);
    if (Rb >= 0x7f800000u) {  // inf or NaN
      finite = false;
      return;
    }
    const float R = simd::bit_cast<float>(Rb);
    base = R / static_cast<float>(Q);
    for (std::int64_t g = 0; g < ngroups; ++g) {
      const float rv = simd::bit_cast<float>(r[g]);
      int e = n_groups - 1;
      if (rv > 0.0f) e = std::min(e, floor_log2_ratio(R, rv));
      shift[g] = static_cast<std::uint8_t>(e);
      f[g] = std::ldexp(1.0f, e);
      gm[g] = preshift ? std::ldexp(1.0f, n_groups - 1 - e) : 1.0f;
    }
  };

  // 3. round and store: items [b, e) of n3.
  const std::int64_t n3 = rows_mode ? outer : (block > 0 && inner == 1 ? outer * nb : outer * L);
  auto quantize_items = [&](std::int64_t b, std::int64_t e) {
    if (base == 0.0f) {  // all zeros, or R so small that R / Q underflows: every q is 0
      const std::int64_t lo = total * b / n3, hi = total * e / n3;  // the threads' ranges tile [0, total)
      std::memset(q + lo, 0, static_cast<std::size_t>(hi - lo));
      return;
    }
    for (std::int64_t t = b; t < e; ++t) {
      if (rows_mode) {
        quantize_run(qk, x + t * L, q + t * L, L, f.data(), gm.data(), true, base, Q, stochastic,
                     static_cast<std::uint64_t>(t * L), key);
      } else if (block == 0) {
        const std::int64_t c = t % L;
        quantize_run(qk, x + t * inner, q + t * inner, inner, &f[c], &gm[c], false, base, Q, stochastic,
                     static_cast<std::uint64_t>(t * inner), key);
      } else if (inner == 1) {
        const std::int64_t o = t / nb, l0 = (t % nb) * block, off = o * L + l0;
        quantize_run(qk, x + off, q + off, std::min(block, L - l0), &f[t], &gm[t], false, base, Q, stochastic,
                     static_cast<std::uint64_t>(off), key);
      } else {
        const std::int64_t o = t / L, l = t % L, gi = (o * nb + l / block) * inner;
        quantize_run(qk, x + t * inner, q + t * inner, inner, &f[gi], &gm[gi], true, base, Q, stochastic,
                     static_cast<std::uint64_t>(t * inner), key);
      }
    }
  };

  // The passes run one after the other, the exponents on the calling thread; none of the results
  // depends on the split (maxima, and element-wise rounding keyed by the element index).
  parallel_ranges(n1, parts1, [&](int t, std::int64_t b, std::int64_t e) { absmax_items(b, e, t); }, 1, nt);
  exponents();
  if (finite) parallel_ranges(n3, parts3, [&](int, std::int64_t b, std::int64_t e) { quantize_items(b, e); }, 1, nt);
  if (!finite) return false;
  *base_scale = base;
  return true;
}

void unpack_int4(const std::uint8_t* p, std::int64_t rows, std::int64_t m, std::int8_t* out, std::int64_t n) {
  parallel_for(rows, std::max<std::int64_t>(1, (1 << 21) / std::max<std::int64_t>(1, m)),
               [&](std::int64_t b, std::int64_t e) {
                 for (std::int64_t r = b; r < e; ++r) {
                   const std::uint8_t* src = p + r * m;
                   std::int8_t* dst = out + r * n;
                   const std::int64_t full = n / 2;
                   for (std::int64_t j = 0; j < full; ++j) {
                     const std::uint8_t v = src[j];
                     dst[2 * j] = static_cast<std::int8_t>(static_cast<std::int8_t>(v << 4) >> 4);
                     dst[2 * j + 1] = static_cast<std::int8_t>(static_cast<std::int8_t>(v) >> 4);
                   }
                   if (n & 1) dst[n - 1] = static_cast<std::int8_t>(static_cast<std::int8_t>(src[full] << 4) >> 4);
                 }
               });
}

}  // namespace numkern::quant
