#include "common/parallel.h"

namespace numkern {
namespace {

int runtime_limit() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

std::atomic<int>& configured_threads() {
  static std::atomic<int> n{runtime_limit()};
  return n;
}

}  // namespace

int num_threads() {
  return std::max(1, std::min(configured_threads().load(std::memory_order_relaxed), runtime_limit()));
}

void set_num_threads(int n) { configured_threads().store(std::max(1, n), std::memory_order_relaxed); }

bool threads_available() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace numkern
