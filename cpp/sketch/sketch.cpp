// Sketch driver: plans the cache-blocked memory passes of the Hadamard transform, gathers tiles,
// threads, and fixes every summation order (block sizes depend only on the problem, never on the
// thread count), so each result is bit-identical for any number of threads.
#include "sketch/sketch.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "common/isa.h"
#include "common/parallel.h"
#include "common/portable.h"
#include "common/simd_base.h"

namespace numkern::sketch {

const Kernels& active_kernels() {
  static const Kernels* const tables[kIsaCount] = {&kernels_scalar,
                                                   NUMKERN_X86_TABLE(kernels_avx2),
                                                   NUMKERN_X86_TABLE(kernels_avx512),
                                                   NUMKERN_ARM_TABLE(kernels_neon),
                                                   nullptr,
                                                   nullptr};
  return pick(tables);
}

namespace {

// A tile of at most this many bytes stays in L2 (1 MiB per core on the target) while every
// butterfly stage of a pass runs over it.
constexpr std::size_t kTileBytes = 512 * 1024;
// Narrowest column strip worth gathering from memory (elements); below it rows are too short for
// the prefetchers, so we add a memory pass instead.
constexpr std::size_t kMinStrip = 64;
// Rows per SRHT block and per residual chunk: fixed, so summation order never depends on threads.
constexpr std::size_t kSrhtBlockF64 = 512, kSrhtBlockF32 = 1024;
// Residual chunks are the Gaussian sketch's tiles: numkern.dask cuts row blocks at tile boundaries
// and must see the same chunks as the in-memory kernels.
constexpr std::size_t kResidualChunk = static_cast<std::size_t>(gaussian_tile_rows);
constexpr std::size_t kPrefetchRows = 24;
// Row groups of the SRHT's strip path: at most this many, and their partial sums at most this many
// bytes in all.
constexpr std::size_t kSrhtGroups = 16;
constexpr std::size_t kSrhtPartialBytes = std::size_t{64} << 20;
// Below this many element operations (~10 ms) a call runs on one thread: on a busy machine the
// second thread of a team may wait a scheduler slice before it starts, which costs more; and
// its spinning workers would slow the BLAS calls that follow in lstsq.
constexpr std::size_t kParallelWork = std::size_t{1} << 24;
// A CSR pass costs per stored entry and per row about what this many dense element operations do:
// an indexed load or a scattered add, and a row's bookkeeping (5-15 ns, where a dense operation
// takes well under 0.1 ns). So a CSR pass over some 64K entries and rows (about 0.5 ms) is worth
// the pool: its loops never wait for a late worker, so the busy-machine cost above does not apply.
constexpr std::size_t kCsrEntryWork = 256;

// Calls f(t0, t1) on consecutive chunks covering [0, items), handed out dynamically: on a shared
// machine a descheduled thread then delays the call by its current chunk only. Work units are
// independent and merged in a fixed order by the callers, so results do not depend on which
// thread ran what. Runs serially below kParallelWork operations.
template <class F>
void dynamic_for(std::size_t items, std::size_t work, F&& f) {
  if (items == 0) return;
  const int nt = work < kParallelWork ? 1 : static_cast<int>(std::min<std::size_t>(num_threads(), items));
  const std::size_t chunk = std::max<std::size_t>(1, items / (static_cast<std::size_t>(nt) * 8));
  parallel_chunks(
      static_cast<std::int64_t>(items), nt, static_cast<std::int64_t>(chunk),
      [&](int, std::int64_t t0, std::int64_t t1) { f(static_cast<std::size_t>(t0), static_cast<std::size_t>(t1)); });
}

int ilog2(std::uint64_t v) { return 63 - clz64(v); }

template <class T>
const TypedKernels<T>& typed(const Kernels& k);
template <>
const TypedKernels<float>& typed<float>(const Kernels& k) {
  return k.f32;
}
template <>
const TypedKernels<double>& typed<double>(const Kernels& k) {
  return k.f64;
}
template <class T>
std::size_t lanes(const Kernels& k);
template <>
std::size_t lanes<float>(const Kernels& k) {
  return k.lanes_f32;
}
template <>
std::size_t lanes<double>(const Kernels& k) {
  return k.lanes_f64;
}

// Transform along axis 0 of the contiguous (R, C) array x, R a power of two. The log2(R) stages are
// split into P passes of s stages; pass p sees x as (R >> lo, C << lo) and transforms blocks of 2^s
// consecutive rows, in column strips that fit a tile. With `inner`, C is the vector width and the
// in-register transform of every row is fused into pass 0.
template <class T>
void fwht_axis0(T* x, std::size_t R, std::size_t C, bool inner, T scale) {
  const Kernels& kern = active_kernels();
  const TypedKernels<T>& K = typed<T>(kern);
  const std::size_t L = lanes<T>(kern);
  const std::size_t budget = kTileBytes / sizeof(T);
  const int stot = ilog2(R);
  if (stot == 0) {
    if (inner) K.fwht_inner(x, 1);
    if (scale != T(1)) K.scale_tile(x, 1, C, C, scale);
    return;
  }
  // Pass 0 works in place on contiguous row blocks, so it takes as many stages as fit a tile; the
  // remaining stages are split evenly over the fewest passes whose strips are still wide enough.
  int s0 = 0;
  while (s0 < stot && (C << (s0 + 1)) <= budget) ++s0;
  if (s0 == 0) s0 = 1;
  std::vector<int> plan{s0};
  const int rest = stot - s0;
  if (rest > 0) {
    int P = 1, s = rest;
    for (;; ++P) {
      s = (rest + P - 1) / P;
      if ((budget >> s) >= std::min<std::size_t>(C << s0, kMinStrip) || s <= 1) break;
    }
    for (int left = rest; left > 0; left -= s) plan.push_back(std::min(s, left));
  }
  struct Pass {
    std::size_t rows, Cp, w, strips, items;
    bool last, fuse_inner, contiguous;
  };
  std::vector<Pass> passes;
  for (std::size_t p = 0, lo = 0; p < plan.size(); lo += plan[p], ++p) {
    const std::size_t rows = std::size_t{1} << plan[p];
    const std::size_t Cp = C << lo, Rp = R >> lo;
    std::size_t w = std::min<std::size_t>(Cp, std::max<std::size_t>(budget >> plan[p], 1));
    if (w < Cp && w > L) w -= w % L;
    const std::size_t strips = (Cp + w - 1) / w;
    passes.push_back({rows, Cp, w, strips, (Rp / rows) * strips, p + 1 == plan.size(), inner && p == 0, w == Cp});
  }
  auto run_tiles = [&](const Pass& ps, std::size_t t0, std::size_t t1, std::vector<T>& buf) {
    const std::size_t rows = ps.rows, Cp = ps.Cp, w = ps.w, strips = ps.strips;
    if (!ps.contiguous) buf.resize(rows * w);
    for (std::size_t t = t0; t < t1; ++t) {
      const std::size_t g = t / strips, c0 = (t % strips) * w;
      const std::size_t wc = std::min(w, Cp - c0);
      T* base = x + g * rows * Cp + c0;
      if (t + 1 < t1) {
        // Fetch the next tile into L2 while this one is transformed, so memory and the
        // butterflies overlap instead of alternating.
        const std::size_t gn = (t + 1) / strips, cn = ((t + 1) % strips) * w, wn = std::min(w, Cp - cn);
        const char* nb = reinterpret_cast<const char*>(x + gn * rows * Cp + cn);
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t off = 0; off < wn * sizeof(T); off += 64) prefetch_write<2>(nb + r * Cp * sizeof(T) + off);
      }
      if (ps.contiguous) {
        if (ps.fuse_inner)
          K.fwht_tile_vec(base, rows);  // Cp == L here
        else
          K.fwht_tile(base, rows, wc, Cp);
        if (ps.last && scale != T(1)) K.scale_tile(base, rows, wc, Cp, scale);
        continue;
      }
      for (std::size_t r = 0; r < rows; ++r) std::memcpy(buf.data() + r * wc, base + r * Cp, wc * sizeof(T));
      K.fwht_tile(buf.data(), rows, wc, wc);
      if (ps.last && scale != T(1)) K.scale_tile(buf.data(), rows, wc, wc, scale);
      for (std::size_t r = 0; r < rows; ++r) std::memcpy(base + r * Cp, buf.data() + r * wc, wc * sizeof(T));
    }
  };
  const int nt = R * C * static_cast<std::size_t>(stot) < kParallelWork ? 1 : num_threads();
  // One parallel loop per pass (a pass needs all tiles of the one before), each worker with its own
  // gather buffer, kept from pass to pass. Tiles are claimed in chunks, so a descheduled thread
  // delays one chunk only.
  std::vector<std::vector<T>> bufs(static_cast<std::size_t>(nt));
  for (const Pass& ps : passes) {
    const std::size_t chunk = std::max<std::size_t>(1, ps.items / (static_cast<std::size_t>(nt) * 8));
    parallel_chunks(static_cast<std::int64_t>(ps.items), nt, static_cast<std::int64_t>(chunk),
                    [&](int worker, std::int64_t t0, std::int64_t t1) {
                      run_tiles(ps, static_cast<std::size_t>(t0), static_cast<std::size_t>(t1),
                                bufs[static_cast<std::size_t>(worker)]);
                    });
  }
}

template <class T>
void fwht_vector(T* x, std::size_t n, T scale) {
  const std::size_t L = lanes<T>(active_kernels());
  if (L > 1 && n >= L)
    fwht_axis0<T>(x, n / L, L, true, scale);
  else
    fwht_axis0<T>(x, n, 1, false, scale);
}

std::uint32_t row_key(std::uint64_t key, std::uint64_t i) {
  return simd::lowbias32(static_cast<std::uint32_t>(i) * 0x9E3779B9u + static_cast<std::uint32_t>(key));
}
std::uint32_t key2_of(std::uint64_t key) {
  return simd::lowbias32(static_cast<std::uint32_t>(key >> 32) ^ 0x5bd1e995u);
}

template <class T>
void srht_impl(const T* a, std::size_t n, std::size_t C, std::size_t N, const std::int64_t* perm,
               const std::uint8_t* neg, const std::uint32_t* rows, std::size_t m, T scale, T* y) {
  const Kernels& kern = active_kernels();
  const TypedKernels<T>& K = typed<T>(kern);
  const std::size_t L = lanes<T>(kern);
  const std::size_t Lb = std::min<std::size_t>(N, sizeof(T) == 8 ? kSrhtBlockF64 : kSrhtBlockF32);
  const int lb = ilog2(Lb);
  std::fill(y, y + m * C, T(0));
  std::vector<std::uint32_t> lo(m), hi(m);
  for (std::size_t i = 0; i < m; ++i) {
    lo[i] = rows[i] & static_cast<std::uint32_t>(Lb - 1);
    hi[i] = rows[i] >> lb;
  }
  if (C == 1 && L > 1 && Lb >= L) {
    // A vector: the block is transformed as an (Lb/L, L) tile plus in-register stages, and the
    // signed row sums are scalar. Row groups as in the matrix path below (a count that depends on n
    // only, partials added in group order) let threads share the rows; a row costs a random read
    // (some 64 element operations' time), a block m signed adds.
    const std::size_t nblocks = (n + Lb - 1) / Lb;
    const std::size_t groups = std::min<std::size_t>(nblocks, kSrhtGroups);
    std::vector<T> partials(groups * m, T(0));
    dynamic_for(groups, n * 64 + nblocks * m * 8, [&](std::size_t g0, std::size_t g1) {
      std::vector<T> buf(Lb);
      for (std::size_t g = g0; g < g1; ++g) {
        T* yg = partials.data() + g * m;
        for (std::size_t b = nblocks * g / groups; b < nblocks * (g + 1) / groups; ++b) {
          const std::size_t j0 = b * Lb;
          for (std::size_t r = 0; r < Lb; ++r) {
            const std::size_t j = j0 + r;
            if (j + kPrefetchRows < n) prefetch_read<3>(a + perm[j + kPrefetchRows]);
            buf[r] = j < n ? (neg[j] ? -a[perm[j]] : a[perm[j]]) : T(0);
          }
          K.fwht_tile(buf.data(), Lb / L, L, L);
          K.fwht_inner(buf.data(), Lb / L);
          for (std::size_t i = 0; i < m; ++i) {
            const T v = buf[lo[i]];
            yg[i] += (popcount64(hi[i] & b) & 1) ? -v : v;
          }
        }
      }
    });
    for (std::size_t g = 0; g < groups; ++g)
      for (std::size_t i = 0; i < m; ++i) y[i] += partials[g * m + i];
    if (scale != T(1)) K.scale_tile(y, m, 1, 1, scale);
    return;
  }
  // Column strips are independent and every column sees the same operations whatever the strip
  // width, so the width may follow the thread count. The blocks are also split into row groups,
  // each summed into its own partial and the partials added in group order at the end: threads then
  // share the rows too (long row reads, as many tasks as the machine needs) while the group count
  // depends on n, m and C only, so the result is the same at any thread count.
  const std::size_t nt = n * C * lb < kParallelWork ? 1 : static_cast<std::size_t>(std::max(1, num_threads()));
  const std::size_t cap = std::max<std::size_t>(L, (kTileBytes / sizeof(T) / Lb) / L * L);
  std::size_t w = (C + nt - 1) / nt;
  w = std::min(cap, (w + L - 1) / L * L);
  const std::size_t strips = (C + w - 1) / w;
  const std::size_t nblocks = (n + Lb - 1) / Lb;
  const std::size_t groups =
      n * C * lb < kParallelWork
          ? 1
          : std::min<std::size_t>(
                {nblocks, kSrhtGroups, std::max<std::size_t>(1, kSrhtPartialBytes / (m * C * sizeof(T)))});
  std::vector<T> partials((groups - 1) * m * C, T(0));
  dynamic_for(groups * strips, n * C * lb, [&](std::size_t t0, std::size_t t1) {
    std::vector<T> buf(Lb * w);
    std::vector<std::uint8_t> sg(m);
    for (std::size_t t = t0; t < t1; ++t) {
      const std::size_t g = t / strips, s = t % strips;
      T* yg = g == 0 ? y : partials.data() + (g - 1) * m * C;
      const std::size_t c0 = s * w, wc = std::min(w, C - c0);
      const std::size_t b_end = nblocks * (g + 1) / groups;
      for (std::size_t b = nblocks * g / groups; b < b_end; ++b) {
        const std::size_t j0 = b * Lb;
        for (std::size_t r = 0; r < Lb; ++r) {
          T* dst = buf.data() + r * wc;
          const std::size_t j = j0 + r;
          if (j >= n) {
            std::fill(dst, dst + wc, T(0));
            continue;
          }
          if (j + kPrefetchRows < n) {
            // Rows arrive in random order, so the hardware prefetchers cannot help: request every
            // line of the strip a few rows ahead to keep many misses in flight.
            const char* q =
                reinterpret_cast<const char*>(a + static_cast<std::size_t>(perm[j + kPrefetchRows]) * C + c0);
            for (std::size_t off = 0; off < wc * sizeof(T); off += 64) prefetch_read<3>(q + off);
            prefetch_read<3>(q + wc * sizeof(T) - 1);
          }
          const T* src = a + static_cast<std::size_t>(perm[j]) * C + c0;
          if (neg[j]) {
            for (std::size_t c = 0; c < wc; ++c) dst[c] = -src[c];
          } else {
            std::memcpy(dst, src, wc * sizeof(T));
          }
        }
        // Fetch the next block's rows into L2 while this block is transformed and accumulated.
        for (std::size_t j = j0 + Lb; j < std::min(n, j0 + 2 * Lb); ++j) {
          const char* q = reinterpret_cast<const char*>(a + static_cast<std::size_t>(perm[j]) * C + c0);
          for (std::size_t off = 0; off < wc * sizeof(T); off += 64) prefetch_read<2>(q + off);
          prefetch_read<2>(q + wc * sizeof(T) - 1);
        }
        K.fwht_tile(buf.data(), Lb, wc, wc);
        for (std::size_t i = 0; i < m; ++i) sg[i] = static_cast<std::uint8_t>(popcount64(hi[i] & b) & 1);
        K.signed_accum(yg + c0, C, buf.data(), wc, lo.data(), sg.data(), m, wc);
      }
    }
  });
  // Partials added in group order, each element on its own: the same sums at any thread count.
  if (groups > 1)
    parallel_for(static_cast<std::int64_t>(m * C), std::int64_t{1} << 14, [&](std::int64_t e0, std::int64_t e1) {
      for (std::size_t g = 1; g < groups; ++g) {
        const T* p = partials.data() + (g - 1) * m * C;
        for (std::int64_t e = e0; e < e1; ++e) y[e] += p[e];
      }
    });
  if (scale != T(1)) K.scale_tile(y, m, C, C, scale);
}

// Partials per batch: small enough that the tree's adds find them in cache and that the same pages
// serve every batch (a 64 MiB batch of fresh pages was 20% slower at one thread, most of it the
// first touch of its pages inside the scattered fill).
constexpr std::size_t kTreeBatchBytes = std::size_t{8} << 20;

// The fixed summation tree over row tiles of the Gaussian and sparse sign sketches: the rows of a
// are cut into tiles of gaussian_tile_rows; fill(b0, bt, parts) sums tiles b0 .. b0 + bt - 1 of the
// (size)-element output into parts[(t - b0) * size ...] (writing every element, each sum from zero
// in ascending row order; in parallel as it likes), and the tiles are then added pairwise in the
// dyadic tree over tile indices (a stack of complete subtrees; the incomplete right edge folded
// from the right at the end). numkern.dask forms the same tiles on row blocks of a distributed A,
// so both agree bit for bit. Tiles are filled in batches of at most kTreeBatchBytes of partials.
//
// The tree's adds are as many as the partials' elements, as much work as a CountSketch's scatter:
// the order of the adds is worked out first (it depends on the tile indices only), then carried out
// by element ranges in parallel, every element seeing the same adds in the same order.
template <class T, class Fill>
void tile_tree_sum(std::size_t tiles, std::size_t size, T* y, Fill&& fill) {
  if (tiles == 0 || size == 0) {
    std::fill(y, y + size, T(0));
    return;
  }
  const std::size_t batch = std::max<std::size_t>(1, std::min(tiles, kTreeBatchBytes / (size * sizeof(T))));
  // Neither buffer is zeroed: fill writes every element of its parts, and a subtree is copied into
  // its slot before it is read from there.
  std::unique_ptr<T[]> parts(new T[batch * size]);
  // Slot k holds the stack's k-th subtree when it outlives the batch that summed it.
  const std::size_t depth = static_cast<std::size_t>(ilog2(tiles)) + 2;
  std::unique_ptr<T[]> slots(new T[std::min(depth, tiles) * size]);
  std::vector<T*> stack;  // where each subtree's sum is: in parts (this batch) or in its slot
  std::vector<int> level;
  struct Op {
    T* dst;
    const T* src;
    bool add;  // dst += src, else dst = src
  };
  std::vector<Op> ops;
  const auto run_ops = [&](auto&& tail) {
    parallel_for(static_cast<std::int64_t>(size), std::int64_t{1} << 13, [&](std::int64_t e0, std::int64_t e1) {
      for (const Op& op : ops) {
        if (op.add)
          for (std::int64_t e = e0; e < e1; ++e) op.dst[e] += op.src[e];
        else
          std::copy(op.src + e0, op.src + e1, op.dst + e0);
      }
      tail(e0, e1);
    });
  };
  for (std::size_t b0 = 0; b0 < tiles; b0 += batch) {
    const std::size_t bt = std::min(batch, tiles - b0);
    fill(b0, bt, parts.get());
    ops.clear();
    for (std::size_t ti = 0; ti < bt; ++ti) {
      stack.push_back(parts.get() + ti * size);
      level.push_back(0);
      while (level.size() >= 2 && level[level.size() - 1] == level[level.size() - 2]) {
        ops.push_back({stack[stack.size() - 2], stack.back(), true});
        stack.pop_back();
        level.pop_back();
        ++level.back();
      }
    }
    if (b0 + bt < tiles) {
      // Subtrees still in parts move to their slots before the next batch overwrites parts.
      for (std::size_t k = 0; k < stack.size(); ++k) {
        T* slot = slots.get() + k * size;
        if (stack[k] != slot) {
          ops.push_back({slot, stack[k], false});
          stack[k] = slot;
        }
      }
      run_ops([](std::int64_t, std::int64_t) {});
    } else {
      run_ops([&](std::int64_t e0, std::int64_t e1) {
        // y = s_0 + (s_1 + (... + s_top)), each element on its own.
        for (std::int64_t e = e0; e < e1; ++e) {
          T acc = stack.back()[e];
          for (std::size_t s2 = stack.size() - 1; s2-- > 0;) acc = stack[s2][e] + acc;
          y[e] = acc;
        }
      });
    }
  }
}

template <class T>
void gaussian_impl(const T* a, std::size_t n, std::size_t C, std::size_t m, std::uint64_t key, T scale, T* y,
                   std::uint64_t row0, const T* b = nullptr, std::size_t Cb = 0) {
  // The columns of the logical input [a b]: a's C, then b's Cb (each block C-contiguous). Every
  // output column is summed on its own, so splitting the columns changes no bit of the result.
  const std::size_t Ca = C;
  C += Cb;
  const Kernels& kern = active_kernels();
  const TypedKernels<T>& K = typed<T>(kern);
  std::fill(y, y + m * C, T(0));
  // Rows of a per block: the block is reused by every output row of the task from L2.
  const std::size_t JB = std::max<std::size_t>(
      64, std::min<std::size_t>(2048, (256 * 1024 / sizeof(T)) / std::max<std::size_t>(C, 1)) / 16 * 16);
  const std::size_t nq = (m + 3) / 4;
  const std::uint32_t k2 = key2_of(key);
  const std::size_t tile = static_cast<std::size_t>(gaussian_tile_rows);
  const std::size_t tiles = (n + tile - 1) / tile;
  if (tiles == 0 || m == 0 || C == 0) return;
  // The sum over the rows of a is tile_tree_sum's tree: each tile is summed in blocks of JB rows,
  // each block reused from L2 by every output row of the task. Tiles are computed in parallel over
  // (tile, group of output rows): a's rows are read from memory once per row group, however many
  // threads run. (Parallel over output rows alone, each thread read all of a once per chunk of
  // output rows: more threads, more passes over a.)
  const int nt = m * n * (C + 8) < kParallelWork ? 1 : std::max(1, num_threads());
  tile_tree_sum<T>(tiles, m * C, y, [&](std::size_t b0, std::size_t bt, T* parts) {
    // Row groups per tile: enough tasks for every thread to claim several (each output row is
    // summed on its own, so the grouping changes no bit).
    const std::size_t want = static_cast<std::size_t>(nt) * 8;
    const std::size_t groups = std::min(nq, std::max<std::size_t>(1, (want + bt - 1) / bt));
    parallel_chunks(static_cast<std::int64_t>(bt * groups), nt, 1, [&](int, std::int64_t u0, std::int64_t u1) {
      std::vector<float> g(4 * JB);
      for (std::int64_t u = u0; u < u1; ++u) {
        const std::size_t ti = static_cast<std::size_t>(u) / groups, gi = static_cast<std::size_t>(u) % groups;
        const std::size_t q0 = nq * gi / groups, q1 = nq * (gi + 1) / groups;
        const std::size_t t0 = (b0 + ti) * tile, t1 = std::min(n, t0 + tile);
        T* part = parts + ti * m * C;
        std::fill(part + q0 * 4 * C, part + std::min(m, q1 * 4) * C, T(0));
        for (std::size_t j0 = t0; j0 < t1; j0 += JB) {
          const std::size_t nr = std::min(JB, t1 - j0);
          for (std::size_t q = q0; q < q1; ++q) {
            const std::size_t i0 = q * 4, mi = std::min<std::size_t>(4, m - i0);
            for (std::size_t r = 0; r < mi; ++r)
              kern.gauss_fill(g.data() + r * JB, nr, row_key(key, i0 + r), k2, static_cast<std::uint32_t>(row0 + j0));
            K.gauss_accum(part + i0 * C, C, a + j0 * Ca, Ca, nr, Ca, g.data(), JB, mi);
            if (Cb) K.gauss_accum(part + i0 * C + Ca, C, b + j0 * Cb, Cb, nr, Cb, g.data(), JB, mi);
          }
        }
      }
    });
  });
  if (scale != T(1)) K.scale_tile(y, m, C, C, scale);
}

template <class T>
void sparse_impl(const T* a, std::size_t n, std::size_t C, const std::int64_t* idx, const std::uint8_t* neg, T scale,
                 std::size_t s, std::size_t m, T* y) {
  // tile_tree_sum's tree, each tile summed in ascending row order, by column strips only where a
  // batch has too few tiles to occupy the threads: two threads writing strips of the same rows
  // share the cache lines at the strip edges (measured at 2 threads, 100 columns split in two:
  // slower than one thread). A scattered update of a row costs about 32 element operations beyond
  // its C multiply-adds (the indexed store misses L1), so a sketch of a single column already goes
  // parallel from about 64K rows.
  const std::size_t tile = static_cast<std::size_t>(gaussian_tile_rows);
  const std::size_t nt = static_cast<std::size_t>(std::max(1, num_threads()));
  const std::size_t work = n * s * (C + 32);
  const std::size_t line = 64 / sizeof(T);
  const TypedKernels<T>& K = typed<T>(active_kernels());
  tile_tree_sum<T>((n + tile - 1) / tile, m * C, y, [&](std::size_t b0, std::size_t bt, T* parts) {
    const std::size_t want = (4 * nt + bt - 1) / bt;  // strips per tile for four tasks per thread
    std::size_t w = want <= 1 ? C : std::max(line, ((C + want - 1) / want + line - 1) / line * line);
    w = std::min(w, C);
    const std::size_t strips = (C + w - 1) / w;
    dynamic_for(bt * strips, work, [&](std::size_t u0, std::size_t u1) {
      for (std::size_t u = u0; u < u1; ++u) {
        const std::size_t ti = u / strips, c0 = u % strips * w, wc = std::min(w, C - c0);
        const std::size_t j0 = (b0 + ti) * tile, j1 = std::min(n, j0 + tile);
        T* part = parts + ti * m * C;
        for (std::size_t i = 0; i < m; ++i) std::fill(part + i * C + c0, part + i * C + c0 + wc, T(0));
        K.sparse_rows(part + c0, C, a + j0 * C + c0, C, j1 - j0, wc, idx + j0 * s, neg + j0 * s, scale, s);
      }
    });
  });
}

// The chunked pass behind every row_residual: chunk(r0, nr, g_part) runs rows [r0, r0 + nr) and
// returns their sum of squares; per-chunk gradients are merged in chunk order, so the result does
// not depend on the thread count or on the storage of A.
template <class T, class Chunk>
double residual_chunks(std::size_t n, std::size_t C, T* g, std::size_t work, Chunk&& chunk) {
  const std::size_t nch = (n + kResidualChunk - 1) / kResidualChunk;
  std::vector<T> part(g ? nch * C : 0, T(0));
  std::vector<double> ss(nch, 0.0);
  dynamic_for(nch, work, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t r0 = c * kResidualChunk, nr = std::min(kResidualChunk, n - r0);
      ss[c] = chunk(r0, nr, g ? part.data() + c * C : nullptr);
    }
  });
  double total = 0.0;
  for (std::size_t c = 0; c < nch; ++c) total += ss[c];
  if (g) {
    std::fill(g, g + C, T(0));
    for (std::size_t c = 0; c < nch; ++c)
      for (std::size_t k = 0; k < C; ++k) g[k] += part[c * C + k];
  }
  return total;
}

template <class T>
double residual_impl(const T* a, std::size_t n, std::size_t C, const T* u, const T* b, T* g, T* t_out) {
  const TypedKernels<T>& K = typed<T>(active_kernels());
  return residual_chunks<T>(n, C, g, 2 * n * C, [&](std::size_t r0, std::size_t nr, T* gp) {
    return K.row_residual(a + r0 * C, nr, C, C, u, b ? b + r0 : nullptr, gp, t_out ? t_out + r0 : nullptr);
  });
}

// The refinement pass over chunks: rows(r0, nr, parts_of_chunk) accumulates one chunk's partials.
template <class Rows>
void ls_refine_chunks_run(std::size_t n, std::size_t C, std::size_t work, double* h, Rows&& rows) {
  const std::size_t nch = (n + kResidualChunk - 1) / kResidualChunk;
  std::vector<double> parts(3 * nch * C, 0.0);
  dynamic_for(nch, work, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t r0 = c * kResidualChunk, nr = std::min(kResidualChunk, n - r0);
      rows(r0, nr, parts.data() + 3 * c * C);
    }
  });
  ls_refine_merge(parts.data(), static_cast<std::int64_t>(nch), static_cast<std::int64_t>(C), h);
}

void ls_refine_partials_impl(const double* a, std::size_t n, std::size_t C, const double* x, double* r, bool init_r,
                             const double* b, double* f, double* parts) {
  const Kernels& kern = active_kernels();
  const std::size_t nch = (n + kResidualChunk - 1) / kResidualChunk;
  std::fill(parts, parts + 3 * nch * C, 0.0);
  dynamic_for(nch, 8 * n * C, [&](std::size_t c0, std::size_t c1) {
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t r0 = c * kResidualChunk, nr = std::min(kResidualChunk, n - r0);
      double* pc = parts + 3 * c * C;
      kern.ls_refine_rows(a + r0 * C, nr, C, C, x, r + r0, init_r, b + r0, f + r0, pc, pc + C, pc + 2 * C);
    }
  });
}

template <class T, class TV, class Strip>
void csr_sketch_impl(const std::int64_t* ptr, const std::int32_t* ind, const TV* val, std::size_t n, std::size_t C,
                     const std::int64_t* idx, const std::uint8_t* neg, T scale, std::size_t s, std::size_t m, T* y,
                     Strip strip) {
  std::fill(y, y + m * C, T(0));
  const std::size_t nnz = static_cast<std::size_t>(ptr[n]);
  // Strips of columns whose m rows fit in L2 keep the scattered updates in cache; every strip walks
  // all rows, so strips are not made narrower than needed to occupy the threads.
  const std::size_t nt = static_cast<std::size_t>(std::max(1, num_threads()));
  const std::size_t fit = std::max<std::size_t>(1, 2 * kTileBytes / (m * sizeof(T)));
  std::size_t w = std::min(C, std::max(fit, (C + 4 * nt - 1) / (4 * nt)));
  w = std::max<std::size_t>(w, 1);
  std::size_t strips = (C + w - 1) / w;
  const std::size_t work = kCsrEntryWork * (nnz * s + n * strips);
  if (work >= kParallelWork && strips > 1 && nt > 1) {
    // As many strips per thread, each as narrow as that allows (they all cost a walk over the rows).
    strips = std::min(C, (strips + nt - 1) / nt * nt);
    w = (C + strips - 1) / strips;
    strips = (C + w - 1) / w;
  }
  dynamic_for(strips, work, [&](std::size_t s0, std::size_t s1) {
    for (std::size_t st = s0; st < s1; ++st) {
      const std::size_t c0 = st * w, c1 = std::min(C, c0 + w);
      strip(y, C, ptr, ind, val, n, static_cast<std::int32_t>(c0), static_cast<std::int32_t>(c1), idx, neg, scale, s);
    }
  });
}

}  // namespace

void sparse_sign_draw(std::uint64_t key, std::int64_t j0, std::int64_t count, std::int64_t m, std::int64_t s,
                      std::int64_t* idx, std::uint8_t* neg) {
  constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;
  const std::size_t S = static_cast<std::size_t>(s);
  const std::uint64_t M = static_cast<std::uint64_t>(m);
  // idx is a fresh array (8 s bytes a column): chunks end on its 2 MiB pages, so that no two threads
  // wait on the first touch of one page.
  const auto draw = [&](std::int64_t c0, std::int64_t c1) {
    std::vector<std::int64_t> sorted(S);
    for (std::int64_t c = c0; c < c1; ++c) {
      const std::uint64_t j = static_cast<std::uint64_t>(j0 + c);
      std::int64_t* ic = idx + static_cast<std::size_t>(c) * S;
      std::uint8_t* nc = neg + static_cast<std::size_t>(c) * S;
      for (std::uint64_t attempt = 0;; ++attempt) {
        const std::uint64_t base = (j << 24) + (attempt << 8);
        for (std::size_t t = 0; t < S; ++t) {
          std::uint64_t h = key + (base + t) * kGolden;  // wraps mod 2^64, as the stream is defined
          h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
          h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
          h ^= h >> 31;
          ic[t] = static_cast<std::int64_t>(((h >> 32) * M) >> 32);
          nc[t] = static_cast<std::uint8_t>(h & 1u);
        }
        bool distinct = true;
        if (S <= 16) {  // pairwise, without branches: cheaper than sorting a few entries
          bool same = false;
          for (std::size_t a = 1; a < S; ++a)
            for (std::size_t b = 0; b < a; ++b) same |= ic[a] == ic[b];
          distinct = !same;
        } else {
          std::copy(ic, ic + S, sorted.begin());
          std::sort(sorted.begin(), sorted.end());
          distinct = std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
        }
        if (distinct) break;
      }
    }
  };
  parallel_output_pages(idx, count, static_cast<std::int64_t>(8 * S), std::int64_t{1} << 12, num_threads(), draw);
}

namespace {
std::uint64_t splitmix(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

void random_permutation(std::uint64_t key, std::int64_t n, std::int64_t buckets, std::int64_t* out) {
  constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;
  if (n <= 0) return;
  const std::uint64_t B = static_cast<std::uint64_t>(std::max<std::int64_t>(1, buckets));
  const std::uint64_t bucket_key = splitmix(key ^ 0x6A09E667F3BCC909ull);
  auto bucket_of = [&](std::int64_t i) {
    // floor(h * B / 2^64), computed exactly in 64-bit parts (B <= 2^16): a bucket's chance differs
    // from 1/B by less than 2^-64.
    const std::uint64_t h = splitmix(bucket_key + static_cast<std::uint64_t>(i) * kGolden);
    return static_cast<std::size_t>(((h >> 32) * B + (((h & 0xFFFFFFFFull) * B) >> 32)) >> 32);
  };
  // Fixed chunks of the elements (a function of n only): per-chunk bucket counts give every element
  // its slot, so the scatter runs in parallel and in element order within each bucket.
  const std::int64_t chunks = std::max<std::int64_t>(1, std::min<std::int64_t>(64, n >> 15));
  std::vector<std::int64_t> slot(static_cast<std::size_t>(chunks) * B, 0);
  parallel_ranges(n, static_cast<int>(chunks), [&](int c, std::int64_t i0, std::int64_t i1) {
    std::int64_t* cnt = slot.data() + static_cast<std::size_t>(c) * B;
    for (std::int64_t i = i0; i < i1; ++i) ++cnt[bucket_of(i)];
  });
  std::vector<std::int64_t> start(B + 1, 0);
  std::int64_t pos = 0;
  for (std::size_t b = 0; b < B; ++b) {
    start[b] = pos;
    for (std::int64_t c = 0; c < chunks; ++c) {
      std::int64_t& v = slot[static_cast<std::size_t>(c) * B + b];
      const std::int64_t count = v;
      v = pos;
      pos += count;
    }
  }
  start[B] = pos;
  // out is a fresh array and the scatter writes every page from every chunk: the pages are mapped
  // first by a pass that gives each 2 MiB page to one thread (two threads faulting on one page
  // wait for each other).
  parallel_output_pages(out, n, 8, std::int64_t{1} << 15, num_threads(),
                        [&](std::int64_t b, std::int64_t e) { std::fill(out + b, out + e, std::int64_t{0}); });
  parallel_ranges(n, static_cast<int>(chunks), [&](int c, std::int64_t i0, std::int64_t i1) {
    std::int64_t* next = slot.data() + static_cast<std::size_t>(c) * B;
    for (std::int64_t i = i0; i < i1; ++i) out[next[bucket_of(i)]++] = i;
  });
  parallel_for(static_cast<std::int64_t>(B), 1, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      std::int64_t* v = out + start[static_cast<std::size_t>(b)];
      const std::int64_t len = start[static_cast<std::size_t>(b) + 1] - start[static_cast<std::size_t>(b)];
      std::uint64_t state = splitmix(key + (static_cast<std::uint64_t>(b) + 1) * 0xD1B54A32D192ED03ull);
      auto next32 = [&] {
        state += kGolden;
        return static_cast<std::uint32_t>(splitmix(state) >> 32);
      };
      for (std::int64_t t = len - 1; t > 0; --t) {
        // A uniform j in [0, t] (Lemire 2019): the low half of r * range below the threshold
        // (2^32 mod range) is rejected, so no value is favoured.
        const auto range = static_cast<std::uint32_t>(t + 1);
        std::uint64_t m = static_cast<std::uint64_t>(next32()) * range;
        if (static_cast<std::uint32_t>(m) < range) {
          const std::uint32_t threshold = (0u - range) % range;
          while (static_cast<std::uint32_t>(m) < threshold) m = static_cast<std::uint64_t>(next32()) * range;
        }
        std::swap(v[t], v[static_cast<std::int64_t>(m >> 32)]);
      }
    }
  });
}

bool csr_valid(const std::int64_t* ptr, const std::int32_t* ind, std::int64_t n, std::int64_t d, std::int64_t nnz) {
  if (n < 0 || d < 0 || nnz < 0 || ptr[0] != 0 || ptr[n] != nnz) return false;
  // Every pass calls this, so it must cost little beside the pass itself. Rows of sparse problems
  // hold a few entries of random count, so a per-row loop mispredicts its exit on most rows; both
  // checks below are branch-free instead. First: indptr nondecreasing (so every row lies in [0, nnz]).
  const std::int64_t parts = std::max<std::int64_t>(1, std::min<std::int64_t>(64, (n + nnz) >> 16));
  std::vector<unsigned char> ok(static_cast<std::size_t>(parts), 1);
  parallel_ranges(n, static_cast<int>(parts), [&](int r, std::int64_t i0, std::int64_t i1) {
    bool bad = false;
    for (std::int64_t i = i0; i < i1; ++i) bad |= ptr[i + 1] < ptr[i];
    ok[static_cast<std::size_t>(r)] = !bad;
  });
  if (!std::all_of(ok.begin(), ok.end(), [](unsigned char v) { return v != 0; })) return false;
  // Then, over the entries of each range of rows: every column in [0, d), and a column not above
  // its predecessor only where a row starts. The descents at row starts are counted separately (each
  // nonempty row starts at its own entry), so the structure is canonical exactly when both counts agree.
  const auto D = static_cast<std::uint32_t>(std::min<std::int64_t>(d, std::int64_t{1} << 31));
  parallel_ranges(n, static_cast<int>(parts), [&](int r, std::int64_t i0, std::int64_t i1) {
    const std::int64_t k0 = ptr[i0], k1 = ptr[i1];
    if (k0 == k1) return;
    bool bad = static_cast<std::uint32_t>(ind[k0]) >= D;
    std::int64_t descents = 0, at_starts = 0;
    for (std::int64_t k = k0 + 1; k < k1; ++k) {
      bad |= static_cast<std::uint32_t>(ind[k]) >= D;
      descents += ind[k] <= ind[k - 1];
    }
    for (std::int64_t i = i0; i < i1; ++i) {
      const std::int64_t k = std::min(ptr[i], k1 - 1);  // clamped for empty rows, which count nothing
      const std::int64_t prev = std::max(k - 1, k0);
      at_starts += (ptr[i] < ptr[i + 1]) & (ptr[i] > k0) & (ind[k] <= ind[prev]);
    }
    ok[static_cast<std::size_t>(r)] = !bad && descents == at_starts;
  });
  return std::all_of(ok.begin(), ok.end(), [](unsigned char v) { return v != 0; });
}

double csr_row_residual(Dtype dt, const std::int64_t* ptr, const std::int32_t* ind, const void* val, std::int64_t n,
                        std::int64_t d, const void* u, const void* b, void* g, void* t_out) {
  if (d <= 0) return 0.0;
  const std::size_t N = static_cast<std::size_t>(std::max<std::int64_t>(n, 0)), C = static_cast<std::size_t>(d);
  const std::size_t work = kCsrEntryWork * (static_cast<std::size_t>(ptr[N]) + N);
  auto run = [&](auto* gp, auto* up, auto* bp, auto* tp) {
    using T = std::remove_pointer_t<decltype(gp)>;
    const TypedKernels<T>& K = typed<T>(active_kernels());
    const T* v = static_cast<const T*>(val);
    return residual_chunks<T>(N, C, gp, work, [&](std::size_t r0, std::size_t nr, T* gpart) {
      return K.csr_row_residual(ptr + r0, ind, v, nr, up, bp ? bp + r0 : nullptr, gpart, tp ? tp + r0 : nullptr);
    });
  };
  if (dt == Dtype::f32)
    return run(static_cast<float*>(g), static_cast<const float*>(u), static_cast<const float*>(b),
               static_cast<float*>(t_out));
  return run(static_cast<double*>(g), static_cast<const double*>(u), static_cast<const double*>(b),
             static_cast<double*>(t_out));
}

double csr_row_residual_f32a(const std::int64_t* ptr, const std::int32_t* ind, const float* val, std::int64_t n,
                             std::int64_t d, const double* u, const double* b, double* g, double* t_out) {
  if (d <= 0) return 0.0;
  const Kernels& kern = active_kernels();
  const std::size_t N = static_cast<std::size_t>(std::max<std::int64_t>(n, 0)), C = static_cast<std::size_t>(d);
  return residual_chunks<double>(N, C, g, kCsrEntryWork * (static_cast<std::size_t>(ptr[N]) + N),
                                 [&](std::size_t r0, std::size_t nr, double* gpart) {
                                   return kern.csr_row_residual_f32a(ptr + r0, ind, val, nr, u, b ? b + r0 : nullptr,
                                                                     gpart, t_out ? t_out + r0 : nullptr);
                                 });
}

double row_residual_f32a(const float* a, std::int64_t n, std::int64_t d, const double* u, const double* b, double* g,
                         double* t_out) {
  if (d <= 0) return 0.0;
  const Kernels& kern = active_kernels();
  const std::size_t N = static_cast<std::size_t>(std::max<std::int64_t>(n, 0)), C = static_cast<std::size_t>(d);
  return residual_chunks<double>(N, C, g, 2 * N * C, [&](std::size_t r0, std::size_t nr, double* gpart) {
    return kern.row_residual_f32a(a + r0 * C, nr, C, C, u, b ? b + r0 : nullptr, gpart, t_out ? t_out + r0 : nullptr);
  });
}

void ls_refine_residual_f32a(const float* a, std::int64_t n, std::int64_t d, const double* x, double* r, bool init_r,
                             const double* b, double* f, double* h) {
  if (d <= 0) return;
  const Kernels& kern = active_kernels();
  const std::size_t N = static_cast<std::size_t>(std::max<std::int64_t>(n, 0)), C = static_cast<std::size_t>(d);
  ls_refine_chunks_run(N, C, 8 * N * C, h, [&](std::size_t r0, std::size_t nr, double* pc) {
    kern.ls_refine_rows_f32a(a + r0 * C, nr, C, C, x, r + r0, init_r, b + r0, f + r0, pc, pc + C, pc + 2 * C);
  });
}

void csr_ls_refine_residual(Dtype dt, const std::int64_t* ptr, const std::int32_t* ind, const void* val, std::int64_t n,
                            std::int64_t d, const double* x, double* r, bool init_r, const double* b, double* f,
                            double* h) {
  if (d <= 0) return;
  const Kernels& kern = active_kernels();
  const std::size_t N = static_cast<std::size_t>(std::max<std::int64_t>(n, 0)), C = static_cast<std::size_t>(d);
  const std::size_t work = kCsrEntryWork * (static_cast<std::size_t>(ptr[N]) + N);
  ls_refine_chunks_run(N, C, work, h, [&](std::size_t r0, std::size_t nr, double* pc) {
    if (dt == Dtype::f32)
      kern.csr_ls_refine_rows_f32a(ptr + r0, ind, static_cast<const float*>(val), nr, x, r + r0, init_r, b + r0, f + r0,
                                   pc, pc + C, pc + 2 * C);
    else
      kern.csr_ls_refine_rows(ptr + r0, ind, static_cast<const double*>(val), nr, x, r + r0, init_r, b + r0, f + r0, pc,
                              pc + C, pc + 2 * C);
  });
}

void csr_sketch_apply(Dtype dt, const std::int64_t* ptr, const std::int32_t* ind, const void* val, std::int64_t n,
                      std::int64_t d, const std::int64_t* idx, const std::uint8_t* neg, double scale, std::int64_t s,
                      std::int64_t m, void* y) {
  if (m <= 0 || d <= 0) return;
  const Kernels& kern = active_kernels();
  if (dt == Dtype::f32)
    csr_sketch_impl<float>(ptr, ind, static_cast<const float*>(val), n, d, idx, neg, static_cast<float>(scale), s, m,
                           static_cast<float*>(y), kern.f32.csr_sketch_strip);
  else
    csr_sketch_impl<double>(ptr, ind, static_cast<const double*>(val), n, d, idx, neg, scale, s, m,
                            static_cast<double*>(y), kern.f64.csr_sketch_strip);
}

void csr_sketch_apply_f32a(const std::int64_t* ptr, const std::int32_t* ind, const float* val, std::int64_t n,
                           std::int64_t d, const std::int64_t* idx, const std::uint8_t* neg, double scale,
                           std::int64_t s, std::int64_t m, double* y) {
  if (m <= 0 || d <= 0) return;
  csr_sketch_impl<double>(ptr, ind, val, n, d, idx, neg, scale, s, m, y, active_kernels().csr_sketch_strip_f32a);
}

void ls_refine_merge(const double* parts, std::int64_t nch, std::int64_t d, double* h) {
  // Chunks merge in order, the double-double sums by TwoSum, so the result depends neither on the
  // thread count nor on how the chunks were spread over callers (numkern.dask's row blocks).
  const std::size_t C = static_cast<std::size_t>(d);
  for (std::size_t k = 0; k < C; ++k) {
    double hi = 0.0, lo = 0.0, sf = 0.0;
    for (std::int64_t c = 0; c < nch; ++c) {
      const double* pc = parts + 3 * static_cast<std::size_t>(c) * C;
      const double s = hi + pc[k];
      const double bb = s - hi;
      lo += ((hi - (s - bb)) + (pc[k] - bb)) + pc[C + k];
      hi = s;
      sf += pc[2 * C + k];
    }
    h[k] = hi + (lo + sf);
  }
}

std::int64_t ls_refine_chunks(std::int64_t n) {
  return n <= 0 ? 0 : static_cast<std::int64_t>((static_cast<std::size_t>(n) + kResidualChunk - 1) / kResidualChunk);
}

void ls_refine_partials(const double* a, std::int64_t n, std::int64_t d, const double* x, double* r, bool init_r,
                        const double* b, double* f, double* parts) {
  if (n <= 0 || d <= 0) return;
  ls_refine_partials_impl(a, static_cast<std::size_t>(n), static_cast<std::size_t>(d), x, r, init_r, b, f, parts);
}

void ls_refine_residual(const double* a, std::int64_t n, std::int64_t d, const double* x, double* r, bool init_r,
                        const double* b, double* f, double* h) {
  if (d <= 0) return;
  if (n <= 0) {
    std::fill(h, h + d, 0.0);
    return;
  }
  std::vector<double> parts(static_cast<std::size_t>(3 * ls_refine_chunks(n) * d));
  ls_refine_partials(a, n, d, x, r, init_r, b, f, parts.data());
  ls_refine_merge(parts.data(), ls_refine_chunks(n), d, h);
}

void fwht_cols(Dtype dt, void* x, std::int64_t n, std::int64_t d, double scale) {
  if (n <= 0 || d <= 0) return;
  if (dt == Dtype::f32) {
    if (d == 1)
      fwht_vector<float>(static_cast<float*>(x), n, static_cast<float>(scale));
    else
      fwht_axis0<float>(static_cast<float*>(x), n, d, false, static_cast<float>(scale));
  } else {
    if (d == 1)
      fwht_vector<double>(static_cast<double*>(x), n, scale);
    else
      fwht_axis0<double>(static_cast<double*>(x), n, d, false, scale);
  }
}

void fwht_rows(Dtype dt, void* x, std::int64_t rows, std::int64_t n, double scale) {
  if (rows <= 0 || n <= 0) return;
  auto run = [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    if (rows == 1) {
      fwht_vector<T>(p, n, static_cast<T>(scale));
      return;
    }
    dynamic_for(static_cast<std::size_t>(rows), static_cast<std::size_t>(rows * n) * 4,
                [&](std::size_t r0, std::size_t r1) {
                  for (std::size_t r = r0; r < r1; ++r) fwht_vector<T>(p + r * n, n, static_cast<T>(scale));
                });
  };
  if (dt == Dtype::f32)
    run(static_cast<float*>(x));
  else
    run(static_cast<double*>(x));
}

void srht_apply(Dtype dt, const void* a, std::int64_t n, std::int64_t d, std::int64_t N, const std::int64_t* perm,
                const std::uint8_t* neg, const std::uint32_t* rows, std::int64_t m, double scale, void* y) {
  if (dt == Dtype::f32)
    srht_impl<float>(static_cast<const float*>(a), n, d, N, perm, neg, rows, m, static_cast<float>(scale),
                     static_cast<float*>(y));
  else
    srht_impl<double>(static_cast<const double*>(a), n, d, N, perm, neg, rows, m, scale, static_cast<double*>(y));
}

void gaussian_apply(Dtype dt, const void* a, std::int64_t n, std::int64_t d, std::int64_t m, std::uint64_t key,
                    double scale, void* y, std::uint64_t row0) {
  if (dt == Dtype::f32)
    gaussian_impl<float>(static_cast<const float*>(a), n, d, m, key, static_cast<float>(scale), static_cast<float*>(y),
                         row0);
  else
    gaussian_impl<double>(static_cast<const double*>(a), n, d, m, key, scale, static_cast<double*>(y), row0);
}

void gaussian_apply_pair(Dtype dt, const void* a, std::int64_t d, const void* b, std::int64_t k, std::int64_t n,
                         std::int64_t m, std::uint64_t key, double scale, void* y, std::uint64_t row0) {
  if (dt == Dtype::f32)
    gaussian_impl<float>(static_cast<const float*>(a), n, d, m, key, static_cast<float>(scale), static_cast<float*>(y),
                         row0, static_cast<const float*>(b), k);
  else
    gaussian_impl<double>(static_cast<const double*>(a), n, d, m, key, scale, static_cast<double*>(y), row0,
                          static_cast<const double*>(b), k);
}

void gaussian_rows(std::int64_t i0, std::int64_t cnt, std::int64_t j0, std::int64_t len, std::uint64_t key,
                   float* out) {
  const Kernels& kern = active_kernels();
  for (std::int64_t r = 0; r < cnt; ++r)
    kern.gauss_fill(out + r * len, len, row_key(key, i0 + r), key2_of(key), static_cast<std::uint32_t>(j0));
}

void sparse_apply(Dtype dt, const void* a, std::int64_t n, std::int64_t d, const std::int64_t* idx,
                  const std::uint8_t* neg, double scale, std::int64_t s, std::int64_t m, void* y) {
  if (dt == Dtype::f32)
    sparse_impl<float>(static_cast<const float*>(a), n, d, idx, neg, static_cast<float>(scale), s, m,
                       static_cast<float*>(y));
  else
    sparse_impl<double>(static_cast<const double*>(a), n, d, idx, neg, scale, s, m, static_cast<double*>(y));
}

// Signs picked from a table, not by a branch: random signs mispredict, and multiplying by +-1 is
// exact, so the sums are those of adding and subtracting.
constexpr double kSignOf[2] = {1.0, -1.0};

// S^T v one block of Lb output positions at a time (the transpose of srht_impl's block form): H_N's
// entry (rows[i], b Lb + r) is the block sign (-1)^popcount(hi_i & b) times H_Lb's (lo_i, r), so block
// b is H_Lb applied to the m signed rows of v scattered to their lo_i (in ascending i), each result
// row j = b Lb + r then signed and written to row perm[j] of out. Blocks are independent.
void srht_transpose(const double* v, std::int64_t m, std::int64_t k, std::int64_t N, const std::int64_t* perm,
                    const std::uint8_t* neg, const std::uint32_t* rows, std::int64_t n, double scale, double* out) {
  const Kernels& kern = active_kernels();
  const TypedKernels<double>& K = kern.f64;
  const std::size_t L = lanes<double>(kern), C = static_cast<std::size_t>(k);
  const std::size_t Lb = std::min<std::size_t>(static_cast<std::size_t>(N), kSrhtBlockF64);
  const int lb = ilog2(Lb);
  const auto un = static_cast<std::size_t>(n), um = static_cast<std::size_t>(m);
  const std::size_t nblocks = (un + Lb - 1) / Lb;
  // An output row costs a random write (some 64 element operations' time, as srht_impl's reads).
  const std::size_t work = un * C * static_cast<std::size_t>(lb + 2) + un * 64 + nblocks * um * C;
  dynamic_for(nblocks, work, [&](std::size_t b0, std::size_t b1) {
    std::vector<double> z(Lb * C);
    for (std::size_t b = b0; b < b1; ++b) {
      std::fill(z.begin(), z.end(), 0.0);
      for (std::size_t i = 0; i < um; ++i) {
        double* zr = z.data() + (rows[i] & (Lb - 1)) * C;
        const double* vi = v + i * C;
        const double sg = kSignOf[popcount64((rows[i] >> lb) & b) & 1];
        for (std::size_t c = 0; c < C; ++c) zr[c] += sg * vi[c];
      }
      if (C == 1 && L > 1 && Lb >= L) {
        K.fwht_tile(z.data(), Lb / L, L, L);
        K.fwht_inner(z.data(), Lb / L);
      } else {
        K.fwht_tile(z.data(), Lb, C, C);
      }
      const std::size_t r_end = std::min(Lb, un - b * Lb);
      for (std::size_t r = 0; r < r_end; ++r) {
        const std::size_t j = b * Lb + r;
        const double sg = kSignOf[neg[j] != 0] * scale;
        double* o = out + static_cast<std::size_t>(perm[j]) * C;
        for (std::size_t c = 0; c < C; ++c) o[c] = sg * z[r * C + c];
      }
    }
  });
}

// S^T v by tiles of kTransposeCols columns of G: each tile generates its m rows of G one at a time
// (as gaussian_impl does) and adds v[i] times them into its accumulator in ascending i.
constexpr std::size_t kTransposeCols = 1024;

void gaussian_transpose(const double* v, std::int64_t m, std::int64_t k, std::uint64_t key, std::int64_t n,
                        double scale, double* out) {
  const Kernels& kern = active_kernels();
  const auto un = static_cast<std::size_t>(n), um = static_cast<std::size_t>(m), C = static_cast<std::size_t>(k);
  const std::uint32_t k2 = key2_of(key);
  const std::size_t tiles = (un + kTransposeCols - 1) / kTransposeCols;
  dynamic_for(tiles, um * un * (16 + C), [&](std::size_t t0, std::size_t t1) {
    std::vector<float> g(kTransposeCols);
    std::vector<double> acc(kTransposeCols * C);
    for (std::size_t t = t0; t < t1; ++t) {
      const std::size_t j0 = t * kTransposeCols, len = std::min(kTransposeCols, un - j0);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (std::size_t i = 0; i < um; ++i) {
        kern.gauss_fill(g.data(), len, row_key(key, i), k2, static_cast<std::uint32_t>(j0));
        const double* vi = v + i * C;
        if (C == 1) {
          const double a = vi[0];
          for (std::size_t j = 0; j < len; ++j) acc[j] += a * static_cast<double>(g[j]);
        } else {
          for (std::size_t j = 0; j < len; ++j) {
            const double gj = g[j];
            double* aj = acc.data() + j * C;
            for (std::size_t c = 0; c < C; ++c) aj[c] += vi[c] * gj;
          }
        }
      }
      double* o = out + j0 * C;
      for (std::size_t e = 0; e < len * C; ++e) o[e] = acc[e] * scale;
    }
  });
}

void sparse_transpose(const double* v, std::int64_t m, std::int64_t k, const std::int64_t* idx, const std::uint8_t* neg,
                      std::int64_t s, std::int64_t n, double scale, double* out) {
  (void)m;
  const auto C = static_cast<std::size_t>(k), S = static_cast<std::size_t>(s);
  const std::int64_t grain = std::max<std::int64_t>(1, std::int64_t{1 << 14} / std::max<std::int64_t>(1, s * k));
  parallel_for(n, grain, [&](std::int64_t j0, std::int64_t j1) {
    const auto b = static_cast<std::size_t>(j0), e = static_cast<std::size_t>(j1);
    if (C == 1) {
      for (std::size_t j = b; j < e; ++j) {
        double acc = 0.0;
        for (std::size_t t = 0; t < S; ++t) acc += kSignOf[neg[j * S + t] != 0] * v[idx[j * S + t]];
        out[j] = acc * scale;
      }
      return;
    }
    for (std::size_t j = b; j < e; ++j) {
      double* o = out + j * C;
      std::fill(o, o + C, 0.0);
      for (std::size_t t = 0; t < S; ++t) {
        const double* vi = v + static_cast<std::size_t>(idx[j * S + t]) * C;
        const double sg = kSignOf[neg[j * S + t] != 0];
        for (std::size_t c = 0; c < C; ++c) o[c] += sg * vi[c];
      }
      for (std::size_t c = 0; c < C; ++c) o[c] *= scale;
    }
  });
}

double row_residual(Dtype dt, const void* a, std::int64_t n, std::int64_t d, const void* u, const void* b, void* g,
                    void* t_out) {
  if (dt == Dtype::f32)
    return residual_impl<float>(static_cast<const float*>(a), n, d, static_cast<const float*>(u),
                                static_cast<const float*>(b), static_cast<float*>(g), static_cast<float*>(t_out));
  return residual_impl<double>(static_cast<const double*>(a), n, d, static_cast<const double*>(u),
                               static_cast<const double*>(b), static_cast<double*>(g), static_cast<double*>(t_out));
}

}  // namespace numkern::sketch
