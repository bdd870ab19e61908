// dp driver: packs queries into coordinate-major groups, blocks X so a chunk stays in L2 while
// every group passes over it, and threads over groups (many queries) or over X (few queries).
#include "dp/dp.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/isa.h"
#include "common/parallel.h"

namespace numkern::dp {

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

constexpr std::int64_t kChunkBytes = 192 * 1024;  // X rows per chunk: fits L2 next to the packed queries

std::int64_t chunk_rows(std::int64_t d) {
  return std::max<std::int64_t>(16, kChunkBytes / (8 * std::max<std::int64_t>(1, d)));
}

}  // namespace

void pair_sum(const double* X, std::int64_t nx, const double* Y, std::int64_t ny, std::int64_t d, const double* w,
              int kind, double p, double* out) {
  const Kernels& k = active_kernels();
  const std::int64_t G = static_cast<std::int64_t>(k.y_group);
  const std::int64_t groups = (ny + G - 1) / G;
  if (groups == 0) return;
  std::vector<double> Yp(static_cast<std::size_t>(groups * G * std::max<std::int64_t>(d, 1)), 0.0);
  // Packing a large query set is a full pass over it: on the pool, not in front of it.
  parallel_for(groups, std::max<std::int64_t>(1, (1 << 16) / std::max<std::int64_t>(1, G * d)),
               [&](std::int64_t g0, std::int64_t g1) {
                 for (std::int64_t j = g0 * G; j < std::min(ny, g1 * G); ++j)
                   for (std::int64_t c = 0; c < d; ++c) Yp[(j / G) * G * d + c * G + j % G] = Y[j * d + c];
               });
  const std::int64_t chunk = chunk_rows(d);
  const int nt = num_threads();
  const std::int64_t work = nx * ny * std::max<std::int64_t>(d, 1);
  std::vector<double> acc(static_cast<std::size_t>(groups * G), 0.0);

  auto run = [&](std::int64_t x0, std::int64_t x1, std::int64_t g0, std::int64_t g1, double* dst) {
    for (std::int64_t c = x0; c < x1; c += chunk) {
      const std::int64_t rows = std::min(chunk, x1 - c);
      for (std::int64_t g = g0; g < g1; ++g)
        k.pair_sum(X + c * d, rows, d, w ? w + c : nullptr, Yp.data() + g * G * d, kind, p, dst + g * G);
    }
  };

  if (ny * 2 < G && nx >= G) {
    // Few queries: most query lanes would be padding, so swap roles. X is packed G rows at a time as
    // the "queries" and each y is the one "row"; lane t then holds f(y, x_t), weighted and summed here.
    const std::int64_t xgroups = (nx + G - 1) / G;
    // Partial sums per range of X groups, merged in range order. The range count depends on the
    // sizes only (several per thread, claimed on demand, so a thread that joins late still takes
    // a share), and the result does not depend on the thread count.
    const int nparts = work < (1 << 16) ? 1 : static_cast<int>(std::min<std::int64_t>(xgroups, 16));
    std::vector<std::vector<double>> parts(static_cast<std::size_t>(nparts), std::vector<double>(ny, 0.0));
    auto run_t = [&](std::int64_t g0, std::int64_t g1, double* dst) {
      std::vector<double> Xp(static_cast<std::size_t>(G * std::max<std::int64_t>(d, 1)));
      double lanes[64];
      for (std::int64_t g = g0; g < g1; ++g) {
        const std::int64_t r0 = g * G, rows = std::min(G, nx - r0);
        std::fill(Xp.begin(), Xp.end(), 0.0);
        for (std::int64_t t = 0; t < rows; ++t)
          for (std::int64_t c = 0; c < d; ++c) Xp[c * G + t] = X[(r0 + t) * d + c];
        for (std::int64_t j = 0; j < ny; ++j) {
          std::fill(lanes, lanes + G, 0.0);
          k.pair_sum(Y + j * d, 1, d, nullptr, Xp.data(), kind, p, lanes);
          double s = 0.0;
          for (std::int64_t t = 0; t < rows; ++t) s += w ? w[r0 + t] * lanes[t] : lanes[t];
          dst[j] += s;
        }
      }
    };
    parallel_ranges(
        xgroups, nparts, [&](int r, std::int64_t g0, std::int64_t g1) { run_t(g0, g1, parts[r].data()); }, 1, nt);
    for (const auto& part : parts)
      for (std::int64_t j = 0; j < ny; ++j) out[j] = (&part == &parts[0] ? 0.0 : out[j]) + part[j];
    return;
  }
  if (nt <= 1 || work < (1 << 16)) {
    run(0, nx, 0, groups, acc.data());
  } else if (groups >= 4 * nt) {
    parallel_for(groups, 1, [&](std::int64_t g0, std::int64_t g1) { run(0, nx, g0, g1, acc.data()); });
  } else {
    // Few queries: each thread sums a contiguous range of X; partial sums merge in range order.
    std::vector<std::vector<double>> parts(nt);
    parallel_ranges(nx, nt, [&](int r, std::int64_t x0, std::int64_t x1) {
      parts[r].assign(acc.size(), 0.0);
      run(x0, x1, 0, groups, parts[r].data());
    });
    for (const auto& part : parts)
      for (std::size_t j = 0; j < part.size(); ++j) acc[j] += part[j];
  }
  std::copy(acc.begin(), acc.begin() + ny, out);
}

void rff_sum(const double* X, std::int64_t nx, std::int64_t d, const double* Wt, const double* b, std::int64_t m,
             double scale, std::int64_t* acc) {
  const Kernels& k = active_kernels();
  std::fill(acc, acc + m, std::int64_t{0});
  if (nx == 0) return;
  // Wt is packed in blocks of kBlock features (d x kBlock each, contiguous), so a block is read
  // sequentially: with one d x m matrix of power-of-two m the kernel's walk down a column strode m * 8
  // bytes, a new page (and the same cache sets) at every step, and a 1024 x 2048 matrix ran at
  // DRAM latency. A block (d * 256 bytes) stays in L1/L2 while every row of a chunk passes over it;
  // the chunk (~2 MB of X) bounds how often all of Wt is streamed.
  const std::int64_t dd = std::max<std::int64_t>(1, d);
  const std::int64_t chunk = std::max<std::int64_t>(8, (2 << 20) / (8 * dd));
  const std::int64_t blocks = m / kBlock;
  const int nt = static_cast<int>(std::min<std::int64_t>(num_threads(), std::max<std::int64_t>(1, nx / 64)));
  std::vector<std::vector<std::int64_t>> parts(std::max(nt, 1));
  auto run = [&](std::int64_t x0, std::int64_t x1, std::int64_t* dst) {
    for (std::int64_t c = x0; c < x1; c += chunk)
      for (std::int64_t q = 0; q < blocks; ++q)
        k.rff_sum(X + c * d, std::min(chunk, x1 - c), d, Wt + q * d * kBlock, kBlock, b + q * kBlock, kBlock, scale,
                  dst + q * kBlock);
  };
  if (nt <= 1) {
    run(0, nx, acc);
    return;
  }
  parallel_ranges(nx, nt, [&](int r, std::int64_t x0, std::int64_t x1) {
    parts[r].assign(static_cast<std::size_t>(m), 0);
    run(x0, x1, parts[r].data());
  });
  // Integer sums: the result is the same for every thread count.
  for (const auto& part : parts)
    for (std::int64_t j = 0; j < m && !part.empty(); ++j)
      acc[j] = static_cast<std::int64_t>(static_cast<std::uint64_t>(acc[j]) + static_cast<std::uint64_t>(part[j]));
}

void rff_features(const double* Y, std::int64_t ny, std::int64_t d, const double* Wt, const double* b, std::int64_t m,
                  double* out) {
  const Kernels& k = active_kernels();
  const int nt = num_threads();
  const std::int64_t blocks = m / kBlock;
  const std::int64_t dd = std::max<std::int64_t>(1, d);
  // Rows of Y per pass over the blocks of Wt: ~256 KB of queries next to one block.
  const std::int64_t rows = std::max<std::int64_t>(2, (256 * 1024) / (8 * dd));
  auto run = [&](std::int64_t y0, std::int64_t y1, std::int64_t q0, std::int64_t q1) {
    for (std::int64_t c = y0; c < y1; c += rows)
      for (std::int64_t q = q0; q < q1; ++q)
        k.rff_features(Y + c * d, std::min(rows, y1 - c), d, Wt + q * d * kBlock, kBlock, b + q * kBlock, kBlock,
                       out + c * m + q * kBlock, m);
  };
  if (ny < 2 * nt && blocks >= 2 * nt && m * (d + 8) >= (1 << 23)) {
    // One or few large queries: split the feature blocks, not the rows, across threads. Only for
    // ~1.5 ms of work and more: waking the second thread costs ~20 us on a quiet machine (m=4096,
    // d=32: 40 us on one thread vs 59 us on two) and up to a scheduler time slice on a loaded one
    // (d=1024, m=2048: 0.38 ms on one thread, 10-16 ms on two at load average 6).
    parallel_for(blocks, 1, [&](std::int64_t a, std::int64_t e) { run(0, ny, a, e); });
    return;
  }
  const std::int64_t grain = std::max<std::int64_t>(4, (1 << 18) / std::max<std::int64_t>(1, m * (d + 8)));
  parallel_for(ny, grain, [&](std::int64_t a, std::int64_t e) { run(a, e, 0, blocks); });
}

void l1_histogram(const double* X, std::int64_t n, std::int64_t d, const double* lo, const double* inv_width,
                  std::int64_t L, std::int64_t* counts) {
  const std::size_t size = static_cast<std::size_t>(d * L);
  std::fill(counts, counts + size, std::int64_t{0});
  const int nt = static_cast<int>(std::min<std::int64_t>(num_threads(), std::max<std::int64_t>(1, n * d / (1 << 16))));
  std::vector<std::vector<std::int64_t>> parts(static_cast<std::size_t>(nt));
  const double top = static_cast<double>(L - 1);
  auto run = [&](std::int64_t a, std::int64_t b, std::int64_t* dst) {
    for (std::int64_t i = a; i < b; ++i)
      for (std::int64_t k = 0; k < d; ++k) {
        double t = (X[i * d + k] - lo[k]) * inv_width[k];
        t = t > 0.0 ? (t < top ? t : top) : 0.0;
        ++dst[k * L + static_cast<std::int64_t>(t)];
      }
  };
  if (nt <= 1) {
    run(0, n, counts);
    return;
  }
  parallel_ranges(n, nt, [&](int r, std::int64_t a, std::int64_t b) {
    parts[r].assign(size, 0);
    run(a, b, parts[r].data());
  });
  for (const auto& part : parts)
    for (std::size_t j = 0; j < part.size(); ++j) counts[j] += part[j];
}

void l1_query(const double* table, const double* lo, const double* hi, const double* width, const double* inv_width,
              const double* N, std::int64_t d, std::int64_t L, double cst, const double* Y, std::int64_t q,
              double* out) {
  parallel_for(q, std::max<std::int64_t>(1, (1 << 14) / std::max<std::int64_t>(1, d)),
               [&](std::int64_t a, std::int64_t b) {
                 for (std::int64_t i = a; i < b; ++i) {
                   double area = 0.0, rest = 0.0;
                   for (std::int64_t k = 0; k < d; ++k) {
                     const double y = Y[i * d + k];
                     const double c = y < lo[k] ? lo[k] : (y > hi[k] ? hi[k] : y);
                     const double u = (c - lo[k]) * inv_width[k];
                     std::int64_t j = static_cast<std::int64_t>(u);
                     if (j > L - 1) j = L - 1;
                     const double f = u - static_cast<double>(j);
                     const double* t = table + (k * L + j) * 3;
                     area += t[2] + width[k] * f * (t[0] + 0.5 * f * t[1]);
                     rest += N[k] * (std::fabs(y - c) - c);
                   }
                   out[i] = 2.0 * area + cst + rest;
                 }
               });
}

}  // namespace numkern::dp
