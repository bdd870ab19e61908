// Stress driver for cpp/common/parallel.*, built with ThreadSanitizer by tools/tsan_pool.sh: many
// callers at once, loops of every kind back to back (workers caught spinning and asleep), nested
// loops, exceptions from tasks, a fork (without TSan, which does not support threads after fork), and a check of every result. Exits non-zero on a wrong
// result; TSan reports races.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/parallel.h"

namespace {

std::atomic<int> failures{0};

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "pool_stress: %s\n", what);
    failures.fetch_add(1);
  }
}

void one_round(std::int64_t n, int parts) {
  using namespace numkern;
  std::vector<std::int64_t> hits(static_cast<std::size_t>(n), 0);
  parallel_for(n, 7, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) hits[i] += 1;
  });
  check(std::all_of(hits.begin(), hits.end(), [](std::int64_t h) { return h == 1; }), "parallel_for coverage");

  const std::int64_t sum = parallel_reduce<std::int64_t>(
      n, parts,
      [&](std::int64_t b, std::int64_t e) {
        std::int64_t s = 0;
        for (std::int64_t i = b; i < e; ++i) s += i;
        return s;
      },
      [](std::int64_t a, std::int64_t b) { return a + b; });
  check(sum == n * (n - 1) / 2, "parallel_reduce sum");

  std::vector<std::int64_t> per_worker(64, 0);
  parallel_chunks(n, parts, 13, [&](int w, std::int64_t b, std::int64_t e) {
    // Nested loop inside a task: runs on this thread.
    std::int64_t inner = 0;
    parallel_for(e - b, 1, [&](std::int64_t x, std::int64_t y) { inner += y - x; });
    per_worker[static_cast<std::size_t>(w)] += inner;
  });
  check(std::accumulate(per_worker.begin(), per_worker.end(), std::int64_t{0}) == n, "parallel_chunks coverage");
}

}  // namespace

int main() {
  using namespace numkern;
  set_num_threads(4);
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([c] {
      for (int i = 0; i < 300; ++i) one_round(1000 + 37 * i + c, 2 + (i + c) % 5);
    });
  for (auto& t : callers) t.join();

  bool thrown = false;
  try {
    parallel_for(1000, 1, [](std::int64_t b, std::int64_t) {
      if (b > 500) throw std::runtime_error("task failure");
    });
  } catch (const std::runtime_error&) {
    thrown = true;
  }
  check(thrown, "exception from a task reaches the caller");
  one_round(5000, 4);  // the pool still works after an exception

  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers asleep
  one_round(3000, 3);

#if !defined(__SANITIZE_THREAD__)  // TSan does not support threads started after a fork
  const pid_t pid = fork();
  if (pid == 0) {
    one_round(4000, 4);  // the child starts its own workers
    std::_Exit(failures.load() == 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "loops in a forked child");
#endif
  check(pool_threads_started() <= 3, "no more than num_threads() - 1 workers");
  std::printf("pool_stress: %s (%d workers)\n", failures.load() ? "FAILED" : "ok", pool_threads_started());
  return failures.load() ? 1 : 0;
}
