#include "common/parallel.h"

#include <atomic>

namespace numkern {
namespace {
std::atomic<int>& configured_threads() {
  static std::atomic<int> n{omp_get_max_threads()};
  return n;
}
}  // namespace

int num_threads() {
  return std::max(1, std::min(configured_threads().load(std::memory_order_relaxed), omp_get_max_threads()));
}

void set_num_threads(int n) { configured_threads().store(std::max(1, n), std::memory_order_relaxed); }

}  // namespace numkern
