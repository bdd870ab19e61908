// The parallel loops of every driver: the one place numkern starts threads (never included by an ISA
// translation unit). They run on numkern's own pool (parallel.cpp), built for machines that are busy:
//
// - A loop is a set of tasks claimed one at a time from a shared counter. The calling thread claims
//   and runs tasks itself; pool workers join when they get a core. The call returns when every task
//   is done, waiting only for tasks that some thread has claimed, never for a worker that has not
//   started: a worker the OS schedules late finds nothing left and goes back to sleep. (An OpenMP
//   region instead ends in a barrier that waits for every thread of the team, so one descheduled
//   thread costs the whole call a scheduler time slice.)
// - One loop owns the pool at a time. A loop started while another runs (a second Python thread, or
//   a loop inside a task) runs on its calling thread alone, so concurrent callers never start more
//   than num_threads() - 1 pool threads in total.
//
// Splits are deterministic: the ranges a loop hands out depend only on n, the part count and the
// alignment, never on which thread runs them, so results merged in range order are reproducible.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace numkern {

// Threads a kernel may use now: min(set_num_threads value, the calling thread's limit). 1 in a
// build without threads.
int num_threads();
// Process-wide thread count (at least 1, at most 1024).
int max_threads();
void set_num_threads(int n);
// The calling thread's own cap (threadpoolctl's limit and numkern.dask's per-task limit use it);
// 0 means none.
int thread_limit();
void set_thread_limit(int n);
// CPUs this process may run on (its affinity mask where the OS has one).
int available_cpus();
// Whether the build runs loops on several threads; cpu_info() reports it.
bool threads_available();
// Pool threads started so far (tests check that concurrent callers do not start more).
int pool_threads_started();

namespace detail {
using TaskFn = void (*)(void* ctx, int worker, std::int64_t task);

// Runs fn(ctx, worker, t) for every t < ntasks on the calling thread (worker 0) and up to nt - 1
// pool threads (workers 1 .. nt - 1), each task exactly once; returns when all are done. An
// exception thrown by a task is rethrown here once every claimed task has finished.
void run_tasks(std::int64_t ntasks, int nt, TaskFn fn, void* ctx);
constexpr std::int64_t kMaxTasks = std::int64_t{1} << 30;

template <class F>
void run(std::int64_t ntasks, int nt, F& f) {
  if (ntasks <= 0) return;
  if (nt <= 1 || ntasks == 1) {
    for (std::int64_t t = 0; t < ntasks; ++t) f(0, t);
    return;
  }
  if (ntasks > kMaxTasks) {  // the pool counts tasks in 32 bits: hand out blocks of tasks instead
    const std::int64_t per = (ntasks + kMaxTasks - 1) / kMaxTasks;
    auto block = [&](int worker, std::int64_t b) {
      for (std::int64_t t = b * per, e = std::min(ntasks, t + per); t < e; ++t) f(worker, t);
    };
    using B = decltype(block);
    run_tasks((ntasks + per - 1) / per, nt,
              [](void* c, int worker, std::int64_t b) { (*static_cast<B*>(c))(worker, b); }, &block);
    return;
  }
  run_tasks(ntasks, nt, [](void* c, int worker, std::int64_t t) { (*static_cast<F*>(c))(worker, t); }, &f);
}

inline std::int64_t split_point(std::int64_t n, std::int64_t parts, std::int64_t r, std::int64_t align) {
  if (r >= parts) return n;
  const std::int64_t p = n / parts * r + n % parts * r / parts;  // n * r / parts without overflow
  return align > 1 ? p / align * align : p;
}

// Tasks per thread for loops whose results do not depend on the split: small enough that a thread
// the OS preempts in the middle of a task holds up little of the work.
constexpr std::int64_t kTasksPerThread = 8;
}  // namespace detail

// Calls f(r, begin, end) for every r < parts on the ranges [n*r/parts, n*(r+1)/parts) (boundaries
// rounded down to multiples of `align`; the last range ends at n), on up to min(parts,
// num_threads(), max_threads) threads. Every r is called, with begin == end when its range is
// empty, so per-range partials can be indexed by r. The ranges are handed out on demand, so more
// parts than threads balance the load (and a part count that depends on n only makes a reduction
// independent of the thread count).
template <class F>
void parallel_ranges(std::int64_t n, int parts, F&& f, std::int64_t align = 1, int max_threads = 1 << 30) {
  parts = std::max(parts, 1);
  auto range = [&](int, std::int64_t r) {
    f(static_cast<int>(r), detail::split_point(n, parts, r, align), detail::split_point(n, parts, r + 1, align));
  };
  detail::run(parts, std::min({parts, num_threads(), max_threads}), range);
}

// Calls f(begin, end) on disjoint contiguous ranges covering [0, n), on up to num_threads()
// threads, with at least `grain` items per range. For work whose results do not depend on where
// the ranges split: the ranges are handed out on demand, several per thread.
template <class F>
void parallel_for(std::int64_t n, std::int64_t grain, F&& f) {
  if (n <= 0) return;
  const std::int64_t by_grain = std::max<std::int64_t>(1, n / std::max<std::int64_t>(1, grain));
  const int nt = static_cast<int>(std::min<std::int64_t>(num_threads(), by_grain));
  if (nt <= 1) {
    f(std::int64_t{0}, n);
    return;
  }
  const std::int64_t tasks = std::min<std::int64_t>(by_grain, nt * detail::kTasksPerThread);
  auto range = [&](int, std::int64_t r) {
    const std::int64_t b = detail::split_point(n, tasks, r, 1), e = detail::split_point(n, tasks, r + 1, 1);
    if (b < e) f(b, e);
  };
  detail::run(tasks, nt, range);
}

// range_fn(begin, end) -> R over the `parts` ranges of parallel_ranges, merged in range order:
// merge(merge(r0, r1), r2)... The result depends on n, parts and align only.
template <class R, class F, class M>
R parallel_reduce(std::int64_t n, int parts, F&& range_fn, M&& merge, std::int64_t align = 1,
                  int max_threads = 1 << 30) {
  parts = std::max(parts, 1);
  if (parts == 1) return range_fn(std::int64_t{0}, n);
  std::vector<R> partial(static_cast<std::size_t>(parts));
  parallel_ranges(
      n, parts, [&](int r, std::int64_t begin, std::int64_t end) { partial[r] = range_fn(begin, end); }, align,
      max_threads);
  R result = partial[0];
  for (int r = 1; r < parts; ++r) result = merge(result, partial[r]);
  return result;
}

// Calls f(worker, begin, end) on chunks of [0, n) of `chunk` items handed out on demand to up to
// `nt` threads (worker < nt numbers the thread, for per-thread scratch): for work whose result does
// not depend on which thread runs a chunk.
template <class F>
void parallel_chunks(std::int64_t n, int nt, std::int64_t chunk, F&& f) {
  if (n <= 0) return;
  chunk = std::max<std::int64_t>(1, chunk);
  const std::int64_t tasks = (n + chunk - 1) / chunk;
  nt = static_cast<int>(std::min<std::int64_t>({nt, num_threads(), tasks}));
  if (nt <= 1) {
    f(0, std::int64_t{0}, n);
    return;
  }
  auto task = [&](int worker, std::int64_t t) { f(worker, t * chunk, std::min(n, (t + 1) * chunk)); };
  detail::run(tasks, nt, task);
}

// Writing a fresh output: its pages are mapped by the first store to each, and NumPy asks the OS for
// 2 MiB pages on large arrays. Two threads storing into the same unmapped 2 MiB page wait for one
// fault (one thread zeroes the page while the other blocks), so a pass that writes a fresh output in
// interleaved parts of a few hundred KiB gains little from a second thread. These chunks end on
// 2 MiB boundaries of the output (and of 4 KiB pages where those are used), so each fault is taken
// by one thread alone.
constexpr std::int64_t kOutputPageBytes = std::int64_t{2} << 20;

// Calls f(begin, end) on chunks of [0, n) handed out on demand to up to `nt` threads, where item i
// of the output starts at byte `out + i * item_bytes`: every chunk boundary but the first is the first
// item at or after a multiple of kOutputPageBytes, with chunks of at least `min_items` items. For
// maps whose results do not depend on the split.
template <class F>
void parallel_output_pages(const void* out, std::int64_t n, std::int64_t item_bytes, std::int64_t min_items, int nt,
                           F&& f) {
  if (n <= 0) return;
  item_bytes = std::max<std::int64_t>(1, item_bytes);
  const std::int64_t page_items = std::max<std::int64_t>(1, kOutputPageBytes / item_bytes);
  const std::int64_t per = (std::max<std::int64_t>(1, min_items) + page_items - 1) / page_items * page_items;
  const auto addr = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(out) % kOutputPageBytes);
  // Items before the first page boundary, rounded up: that boundary item starts the second chunk.
  const std::int64_t head = ((kOutputPageBytes - addr) % kOutputPageBytes + item_bytes - 1) / item_bytes % per;
  const std::int64_t first = head > 0 ? head : per;  // end of chunk 0
  const std::int64_t tasks = first >= n ? 1 : 1 + (n - first + per - 1) / per;
  nt = static_cast<int>(std::min<std::int64_t>({nt, num_threads(), tasks}));
  auto task = [&](int, std::int64_t t) {
    const std::int64_t b = t == 0 ? 0 : std::min(n, first + (t - 1) * per);
    const std::int64_t e = std::min(n, first + t * per);
    if (b < e) f(b, e);
  };
  detail::run(tasks, nt, task);
}

}  // namespace numkern
