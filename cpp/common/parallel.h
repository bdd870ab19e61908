// Thread helpers for the drivers (never included by an ISA translation unit).
#pragma once

#include <algorithm>
#include <cstdint>

#include <omp.h>

namespace numkern {

// Threads a kernel may use now: min(set_num_threads value, the OpenMP limit of the calling thread),
// so threadpoolctl's limit (which sets the OpenMP limit) also caps numkern.
int num_threads();
void set_num_threads(int n);

// Calls f(begin, end) on disjoint ranges covering [0, n), on up to num_threads() threads, with at
// least `grain` items per thread. Ranges are contiguous and depend only on n and the thread count.
template <class F>
void parallel_for(std::int64_t n, std::int64_t grain, F&& f) {
  if (n <= 0) return;
  const std::int64_t by_grain = std::max<std::int64_t>(1, n / std::max<std::int64_t>(1, grain));
  const int nt = static_cast<int>(std::min<std::int64_t>(num_threads(), by_grain));
  if (nt <= 1) {
    f(std::int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const std::int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    const std::int64_t begin = n * t / T, end = n * (t + 1) / T;
    if (begin < end) f(begin, end);
  }
}

}  // namespace numkern
