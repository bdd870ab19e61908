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

namespace numkern::quant {

const GemmKernels& active_gemm() {
  switch (active_isa()) {
    case Isa::avx512:
      // vpdpbusd needs AVX512-VNNI; an AVX-512 CPU without it runs the AVX2 kernel.
      return cpu_features().avx512vnni ? gemm_avx512vnni : gemm_avx2;
    case Isa::avx2:
      return gemm_avx2;
    default:
      return gemm_scalar;
  }
}

const QuantKernels& active_quant() {
  static const QuantKernels* const tables[kIsaCount] = {&qk_scalar, &qk_avx2, &qk_avx512};
  return pick(tables);
}

namespace {

struct AlignedBuffer {
  void* p = nullptr;
  explicit AlignedBuffer(std::size_t bytes) : p(::operator new(std::max<std::size_t>(bytes, 64), std::align_val_t(64))) {}
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

}  // namespace

void int8_gemm(std::int64_t M, std::int64_t N, std::int64_t K, const std::int8_t* A, const std::int8_t* B,
               OutKind kind, void* C, double scale, const double* row, const double* col) {
  if (M <= 0 || N <= 0 || K <= 0) return;  // the caller fills empty-K results
  const GemmKernels& g = active_gemm();
  const QuantKernels& qk = active_quant();
  const Plan p = make_plan(g, M, N, K);
  AlignedBuffer apack(static_cast<std::size_t>(p.mp * p.a_panel)), bpack(static_cast<std::size_t>(p.np * p.b_panel));
  auto* ap = apack.as<std::uint8_t>();
  auto* bp = bpack.as<std::uint8_t>();
  parallel_for(p.mp * p.nb, 8, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t) {
      const std::int64_t ip = t / p.nb, pb = t % p.nb;
      g.pack_a(A + ip * g.mr * K + pb * p.kc, K, std::min<std::int64_t>(g.mr, M - ip * g.mr), p.klen(pb),
               ap + ip * p.a_panel + pb * p.a_block_stride);
    }
  });
  parallel_for(p.np * p.nb, 8, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t) {
      const std::int64_t jp = t / p.nb, pb = t % p.nb;
      g.pack_b(B + pb * p.kc * N + jp * g.nr, N, std::min<std::int64_t>(g.nr, N - jp * g.nr), p.klen(pb),
               bp + jp * p.b_panel + pb * p.b_block_stride);
    }
  });

  // Threads split the row panels (or, with too few rows, the column panels) into contiguous equal
  // ranges; each thread walks its range in blocks of mc rows so the A block (mc x kc) stays in L2.
  const int threads = num_threads();
  const std::int64_t mc = g.mr * std::max<std::int64_t>(1, (256 * 1024) / (p.kc * g.mr * g.a_bytes));
  const bool split_rows = p.mp >= 2 * threads || p.mp >= p.np;
  const bool wide = K > kMaxK32;
  const bool direct32 = kind == OutKind::i32 && !wide, direct64 = kind == OutKind::i64;

  parallel_for(split_rows ? p.mp : p.np, 1, [&](std::int64_t b, std::int64_t e) {
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
        const double s = scale * (row ? row[i0 + r] : 1.0);
        const double* cl = col ? col + j0 : nullptr;
        if (kind == OutKind::f32 && !wide) {
          qk.epilogue_f32(s32.data() + r * cols, static_cast<float*>(C) + (i0 + r) * N + j0, cols, s, cl);
          continue;
        }
        for (std::int64_t j = 0; j < cols; ++j) {
          const double v = (wide ? static_cast<double>(s64[r * cols + j]) : static_cast<double>(s32[r * cols + j])) *
                           s * (cl ? cl[j] : 1.0);
          if (kind == OutKind::f32)
            static_cast<float*>(C)[(i0 + r) * N + j0 + j] = static_cast<float>(v);
          else if (kind == OutKind::f64)
            static_cast<double*>(C)[(i0 + r) * N + j0 + j] = v;
          else  // i32 with K > kMaxK32: the caller asked for i64 instead; never reached
            static_cast<std::int32_t*>(C)[(i0 + r) * N + j0 + j] = static_cast<std::int32_t>(v);
        }
      }
    }
  });
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

float bits_to_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
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
  std::vector<std::uint32_t> r(static_cast<std::size_t>(ngroups), 0u);

  // 1. max-abs per group, as bit patterns of |x|.
  if (block == 0 && inner == 1) {
    const int T = num_threads();
    std::vector<std::vector<std::uint32_t>> part(static_cast<std::size_t>(T));
    parallel_for(outer, 64, [&](std::int64_t b, std::int64_t e) {
      auto& acc = part[static_cast<std::size_t>(omp_get_thread_num())];
      acc.assign(static_cast<std::size_t>(L), 0u);
      for (std::int64_t o = b; o < e; ++o) qk.absmax_acc(x + o * L, acc.data(), L);
    });
    for (const auto& acc : part)
      for (std::size_t c = 0; c < acc.size(); ++c) r[c] = std::max(r[c], acc[c]);
  } else if (block == 0) {
    parallel_for(L, 1, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t c = b; c < e; ++c)
        for (std::int64_t o = 0; o < outer; ++o) r[c] = std::max(r[c], qk.absmax(x + (o * L + c) * inner, inner));
    });
  } else if (inner == 1) {
    parallel_for(outer * nb, 64, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t t = b; t < e; ++t) {
        const std::int64_t o = t / nb, k = t % nb, l0 = k * block;
        r[t] = qk.absmax(x + o * L + l0, std::min(block, L - l0));
      }
    });
  } else {
    parallel_for(outer * nb, 1, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t t = b; t < e; ++t) {
        const std::int64_t o = t / nb, k = t % nb;
        for (std::int64_t l = k * block; l < std::min(L, (k + 1) * block); ++l)
          qk.absmax_acc(x + (o * L + l) * inner, r.data() + t * inner, inner);
      }
    });
  }
  std::uint32_t Rb = 0;
  for (std::uint32_t v : r) Rb = std::max(Rb, v);
  if (Rb >= 0x7f800000u) return false;  // inf or NaN

  // 2. exponents and per-group multipliers f = 2^e (into the quantizer) and g = 2^(G-1-e) (pre-shift).
  const float R = bits_to_float(Rb);
  const float base = R / static_cast<float>(Q);
  *base_scale = base;
  std::vector<float> f(static_cast<std::size_t>(ngroups)), gm(static_cast<std::size_t>(ngroups));
  for (std::int64_t t = 0; t < ngroups; ++t) {
    const float rv = bits_to_float(r[t]);
    int e = n_groups - 1;
    if (rv > 0.0f) e = std::min(e, floor_log2_ratio(R, rv));
    shift[t] = static_cast<std::uint8_t>(e);
    f[t] = std::ldexp(1.0f, e);
    gm[t] = preshift ? std::ldexp(1.0f, n_groups - 1 - e) : 1.0f;
  }
  const std::int64_t total = outer * L * inner;
  if (base == 0.0f) {  // all zeros, or R so small that R / Q underflows: every q is 0
    std::memset(q, 0, static_cast<std::size_t>(total));
    return true;
  }

  // 3. round and store.
  if (block == 0 && inner == 1) {
    parallel_for(outer, 16, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o)
        quantize_run(qk, x + o * L, q + o * L, L, f.data(), gm.data(), true, base, Q, stochastic,
                     static_cast<std::uint64_t>(o * L), key);
    });
  } else if (block == 0) {
    parallel_for(outer * L, 16, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t t = b; t < e; ++t) {
        const std::int64_t c = t % L;
        quantize_run(qk, x + t * inner, q + t * inner, inner, &f[c], &gm[c], false, base, Q, stochastic,
                     static_cast<std::uint64_t>(t * inner), key);
      }
    });
  } else if (inner == 1) {
    parallel_for(outer * nb, 64, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t t = b; t < e; ++t) {
        const std::int64_t o = t / nb, l0 = (t % nb) * block, off = o * L + l0;
        quantize_run(qk, x + off, q + off, std::min(block, L - l0), &f[t], &gm[t], false, base, Q, stochastic,
                     static_cast<std::uint64_t>(off), key);
      }
    });
  } else {
    parallel_for(outer * L, 16, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t t = b; t < e; ++t) {
        const std::int64_t o = t / L, l = t % L, gi = (o * nb + l / block) * inner;
        quantize_run(qk, x + t * inner, q + t * inner, inner, &f[gi], &gm[gi], true, base, Q, stochastic,
                     static_cast<std::uint64_t>(t * inner), key);
      }
    });
  }
  return true;
}

}  // namespace numkern::quant
