// The parallel loops of every driver: the one place numkern starts threads (never included by an ISA
// translation unit). Built on OpenMP when the compiler has it; without it every loop runs on the
// calling thread and num_threads() is 1.
//
// Splits are deterministic: the ranges a loop hands out depend only on n, the thread count and the
// alignment, never on which thread runs them, so results merged in range order are reproducible.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace numkern {

// Threads a kernel may use now: min(set_num_threads value, the OpenMP limit of the calling thread),
// so threadpoolctl's limit (which sets the OpenMP limit) also caps numkern. 1 without OpenMP.
int num_threads();
void set_num_threads(int n);
// Whether the build has a threading runtime (OpenMP); cpu_info() reports it.
bool threads_available();

namespace detail {
// Runs body(t, T) on nt threads of one team (t < T <= nt; T < nt when the runtime gives fewer).
template <class F>
void team(int nt, F&& body) {
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
  body(omp_get_thread_num(), omp_get_num_threads());
#else
  (void)nt;
  body(0, 1);
#endif
}

inline std::int64_t split_point(std::int64_t n, int parts, int r, std::int64_t align) {
  if (r >= parts) return n;
  const std::int64_t p = n * r / parts;
  return align > 1 ? p / align * align : p;
}
}  // namespace detail

// Calls f(r, begin, end) for every r < parts on the ranges [n*r/parts, n*(r+1)/parts) (boundaries
// rounded down to multiples of `align`; the last range ends at n), on up to `parts` threads. Every r
// is called, with begin == end when its range is empty, so per-range partials can be indexed by r.
template <class F>
void parallel_ranges(std::int64_t n, int parts, F&& f, std::int64_t align = 1) {
  parts = std::max(parts, 1);
  auto range = [&](int r) {
    f(r, detail::split_point(n, parts, r, align), detail::split_point(n, parts, r + 1, align));
  };
  if (parts == 1) {
    range(0);
    return;
  }
  detail::team(parts, [&](int t, int T) {
    for (int r = t; r < parts; r += T) range(r);
  });
}

// Calls f(begin, end) on disjoint ranges covering [0, n), on up to num_threads() threads, with at
// least `grain` items per thread. Ranges are contiguous and depend only on n and the thread count.
template <class F>
void parallel_for(std::int64_t n, std::int64_t grain, F&& f) {
  if (n <= 0) return;
  const std::int64_t by_grain = std::max<std::int64_t>(1, n / std::max<std::int64_t>(1, grain));
  const int nt = static_cast<int>(std::min<std::int64_t>(num_threads(), by_grain));
  parallel_ranges(n, nt, [&](int, std::int64_t begin, std::int64_t end) {
    if (begin < end) f(begin, end);
  });
}

// range_fn(begin, end) -> R over the `parts` ranges of parallel_ranges, merged in range order:
// merge(merge(r0, r1), r2)... The result depends on n, parts and align only.
template <class R, class F, class M>
R parallel_reduce(std::int64_t n, int parts, F&& range_fn, M&& merge, std::int64_t align = 1) {
  parts = std::max(parts, 1);
  if (parts == 1) return range_fn(std::int64_t{0}, n);
  std::vector<R> partial(static_cast<std::size_t>(parts));
  parallel_ranges(
      n, parts, [&](int r, std::int64_t begin, std::int64_t end) { partial[r] = range_fn(begin, end); }, align);
  R result = partial[0];
  for (int r = 1; r < parts; ++r) result = merge(result, partial[r]);
  return result;
}

// Calls f(worker, begin, end) on chunks of [0, n) of `chunk` items handed out on demand to up to
// `nt` threads (worker < nt numbers the thread, for per-thread scratch): for work whose result does
// not depend on which thread runs a chunk, so that a thread the OS deschedules (the machine is
// shared) does not hold the others up as a static split would.
template <class F>
void parallel_chunks(std::int64_t n, int nt, std::int64_t chunk, F&& f) {
  if (n <= 0) return;
  chunk = std::max<std::int64_t>(1, chunk);
  if (nt <= 1 || chunk >= n) {
    f(0, std::int64_t{0}, n);
    return;
  }
  std::atomic<std::int64_t> next{0};
  detail::team(nt, [&](int worker, int) {
    for (;;) {
      const std::int64_t a = next.fetch_add(chunk, std::memory_order_relaxed);
      if (a >= n) break;
      f(worker, a, std::min(a + chunk, n));
    }
  });
}

}  // namespace numkern
