// numkern's thread pool: the task claiming behind parallel.h's loops.
//
// One job slot. A caller that owns it publishes (task function, context, task count, width) and a
// new generation in `ticket`, a 64-bit word [generation:20 | joined workers:12 | next task:32], then
// claims tasks like any worker. Every claim is a compare-and-swap on the whole word, so a claim
// made against a generation that has since ended fails instead of touching the next job; a worker
// joins (takes an index below the width) the same way. The caller waits only until every task is
// done: a task is only ever run by the thread that claimed it, and nothing waits for a worker that
// has not claimed one.
//
// Publishing a job first closes the slot (joined and next at their maxima, a new generation), then
// writes the job's fields, then opens the generation (joined = next = 0). A worker reads the task
// count and width (acquire) after loading the ticket and before its compare-and-swap; a value
// written for the next job is only visible after that job closed the slot, so such a CAS fails.
// The function and context are read only after a successful claim, when the job cannot change.
#include "common/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif
#if !defined(NUMKERN_NO_THREADS) && !defined(_WIN32)
#include <pthread.h>
#define NUMKERN_HAS_ATFORK 1
#endif
#if !defined(NUMKERN_NO_THREADS) && (defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86))
#include <immintrin.h>
#endif

namespace numkern {
namespace {

constexpr int kMaxThreads = 1024;      // workers' indices fit the 12-bit joined field
thread_local bool tl_in_loop = false;  // running a loop's task (pool workers always are)
thread_local int tl_limit = 0;

#ifndef NUMKERN_NO_THREADS
constexpr int kGenShift = 44;
constexpr std::uint64_t kJoinedShift = 32;
constexpr std::uint64_t kNextMask = (std::uint64_t{1} << 32) - 1;
constexpr std::uint64_t kJoinedMask = (std::uint64_t{1} << 12) - 1;
constexpr std::uint64_t kGenMask = (std::uint64_t{1} << 20) - 1;

std::uint64_t gen_of(std::uint64_t t) { return t >> kGenShift; }
std::uint64_t joined_of(std::uint64_t t) { return (t >> kJoinedShift) & kJoinedMask; }
std::uint64_t next_of(std::uint64_t t) { return t & kNextMask; }
std::uint64_t make_ticket(std::uint64_t gen, std::uint64_t joined, std::uint64_t next) {
  return ((gen & kGenMask) << kGenShift) | (joined << kJoinedShift) | next;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
  _mm_pause();
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
  __asm__ __volatile__("yield");
#endif
}

struct Pool {
  std::atomic<std::uint64_t> ticket{make_ticket(0, kJoinedMask, kNextMask)};
  std::atomic<std::int64_t> ntasks{0};
  std::atomic<int> width{0};  // threads the job may use, its caller included
  std::atomic<detail::TaskFn> fn{nullptr};
  std::atomic<void*> ctx{nullptr};
  std::atomic<std::int64_t> done{0};
  std::atomic<bool> busy{false};  // a caller owns the job slot
  std::atomic<int> started{0};    // worker threads started
  std::atomic<int> sleepers{0};
  std::mutex sleep_mutex;
  std::condition_variable wake;
  std::mutex error_mutex;
  std::exception_ptr error;
};

// Leaked on purpose: detached workers may still sleep on it while the process exits, and a forked
// child replaces it (the parent's workers do not exist there).
std::atomic<Pool*> g_pool{nullptr};

#ifdef NUMKERN_HAS_ATFORK
void after_fork_in_child() { g_pool.store(new Pool(), std::memory_order_relaxed); }
#endif

Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p) return *p;
  static std::once_flag once;
  std::call_once(once, [] {
    g_pool.store(new Pool(), std::memory_order_release);
#ifdef NUMKERN_HAS_ATFORK
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
#endif
  });
  return *g_pool.load(std::memory_order_acquire);
}

void record_error(Pool& p) {
  std::lock_guard<std::mutex> lock(p.error_mutex);
  if (!p.error) p.error = std::current_exception();
}

// Claims and runs tasks of generation `gen` until none is left.
void claim_and_run(Pool& p, std::uint64_t gen, int worker) {
  std::uint64_t t = p.ticket.load(std::memory_order_acquire);
  for (;;) {
    if (gen_of(t) != (gen & kGenMask)) return;  // that job has ended
    const std::int64_t n = p.ntasks.load(std::memory_order_acquire);
    if (static_cast<std::int64_t>(next_of(t)) >= n) return;
    if (!p.ticket.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    const auto task = static_cast<std::int64_t>(next_of(t));
    try {
      p.fn.load(std::memory_order_relaxed)(p.ctx.load(std::memory_order_relaxed), worker, task);
    } catch (...) {
      record_error(p);
    }
    p.done.fetch_add(1, std::memory_order_acq_rel);
    t = p.ticket.load(std::memory_order_acquire);
  }
}

bool has_room(Pool& p, std::uint64_t t) {
  return static_cast<std::int64_t>(next_of(t)) < p.ntasks.load(std::memory_order_acquire) &&
         joined_of(t) + 1 < static_cast<std::uint64_t>(p.width.load(std::memory_order_acquire));
}

// Takes a worker index (1 .. width - 1) in the current generation if it has room and tasks left;
// on success `t` holds the ticket it joined, whose generation the worker then claims from.
int try_join(Pool& p, std::uint64_t& t) {
  while (has_room(p, t)) {
    if (p.ticket.compare_exchange_weak(t, t + (std::uint64_t{1} << kJoinedShift), std::memory_order_acq_rel,
                                       std::memory_order_acquire))
      return static_cast<int>(joined_of(t)) + 1;
  }
  return 0;
}

constexpr int kSpinMicros = 50;
constexpr int kYieldMicros = 250;

void worker_main(Pool* p) {
  tl_in_loop = true;
  for (;;) {
    // Wait for the next job (kernels are often called back to back, with some Python in between):
    // spin kSpinMicros, then yield the core in a loop for kYieldMicros (awake, but any thread that
    // wants the core gets it), then sleep until the ticket changes (a caller opening a job notifies
    // the sleepers). Measured on a 2-vCPU VM: with only a 50 us spin, the int8 GEMM called in a loop
    // (1024^3, ~2 ms, a 4 MB output allocated per call) ran at 1.96-3.53 ms, its workers asleep at
    // each call; with the yielding phase, 1.94-1.99 ms, and no case beside a busy torch or numkern
    // process slower at 2 threads than at 1 by more than 1.2x (a 300 us pure spin gave 1.80-1.86 ms
    // but 4 such cases).
    std::uint64_t t = p->ticket.load(std::memory_order_acquire);
    auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    auto yield_until = spin_until + std::chrono::microseconds(kYieldMicros);
    for (int i = 1; !has_room(*p, t); ++i) {
      if ((i & 63) == 0 && std::chrono::steady_clock::now() > spin_until) {
        if (std::chrono::steady_clock::now() < yield_until) {
          std::this_thread::yield();  // awake, but any thread that wants this core gets it
          t = p->ticket.load(std::memory_order_acquire);
          continue;
        }
        const std::uint64_t asleep = t;
        std::unique_lock<std::mutex> lock(p->sleep_mutex);
        p->sleepers.fetch_add(1, std::memory_order_seq_cst);
        p->wake.wait(lock, [&] {
          t = p->ticket.load(std::memory_order_seq_cst);
          return t != asleep;
        });
        p->sleepers.fetch_sub(1, std::memory_order_relaxed);
        spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
        yield_until = spin_until + std::chrono::microseconds(kYieldMicros);
        continue;
      }
      cpu_relax();
      t = p->ticket.load(std::memory_order_acquire);
    }
    const int worker = try_join(*p, t);
    if (worker > 0) claim_and_run(*p, gen_of(t), worker);
  }
}

void start_workers(Pool& p, int wanted) {
  wanted = std::min(wanted, kMaxThreads - 1);
  int have = p.started.load(std::memory_order_relaxed);
  while (have < wanted) {
    try {
      std::thread(worker_main, &p).detach();
    } catch (...) {
      return;  // the OS refused a thread: run with the workers there are
    }
    have = p.started.fetch_add(1, std::memory_order_relaxed) + 1;
  }
}

#endif  // NUMKERN_NO_THREADS

int runtime_default() {
#ifdef NUMKERN_NO_THREADS
  return 1;
#else
  return available_cpus();
#endif
}

std::atomic<int>& configured_threads() {
  static std::atomic<int> n{runtime_default()};
  return n;
}

}  // namespace

int available_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

int num_threads() {
#ifdef NUMKERN_NO_THREADS
  return 1;
#else
  const int n = configured_threads().load(std::memory_order_relaxed);
  return std::max(1, tl_limit > 0 ? std::min(n, tl_limit) : n);
#endif
}

int max_threads() { return configured_threads().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  configured_threads().store(std::min(std::max(1, n), kMaxThreads), std::memory_order_relaxed);
}

int thread_limit() { return tl_limit; }

void set_thread_limit(int n) { tl_limit = std::max(0, n); }

bool threads_available() {
#ifdef NUMKERN_NO_THREADS
  return false;
#else
  return true;
#endif
}

int pool_threads_started() {
#ifdef NUMKERN_NO_THREADS
  return 0;
#else
  Pool* p = g_pool.load(std::memory_order_acquire);
  return p ? p->started.load(std::memory_order_relaxed) : 0;
#endif
}

namespace detail {

void run_tasks(std::int64_t ntasks, int nt, TaskFn fn, void* ctx) {
  // A loop inside a task runs on its thread: the threads of the outer loop are the parallelism.
  struct InLoop {
    bool was = tl_in_loop;
    InLoop() { tl_in_loop = true; }
    ~InLoop() { tl_in_loop = was; }
  } in_loop;
  auto serial = [&] {
    for (std::int64_t t = 0; t < ntasks; ++t) fn(ctx, 0, t);
  };
#ifdef NUMKERN_NO_THREADS
  (void)nt;
  serial();
#else
  nt = std::min(nt, kMaxThreads);
  if (ntasks <= 1 || nt <= 1 || in_loop.was) return serial();
  Pool& p = pool();
  if (p.busy.exchange(true, std::memory_order_acquire)) return serial();  // another loop has the pool
  struct Release {
    Pool& p;
    ~Release() { p.busy.store(false, std::memory_order_release); }
  } release{p};
  start_workers(p, nt - 1);

  // Close the slot under a new generation, write the job, open it (see the top of this file).
  const std::uint64_t gen = gen_of(p.ticket.load(std::memory_order_relaxed)) + 1;
  p.ticket.store(make_ticket(gen, kJoinedMask, kNextMask), std::memory_order_seq_cst);
  p.fn.store(fn, std::memory_order_relaxed);
  p.ctx.store(ctx, std::memory_order_relaxed);
  p.done.store(0, std::memory_order_relaxed);
  p.error = nullptr;
  p.ntasks.store(ntasks, std::memory_order_release);
  p.width.store(nt, std::memory_order_release);
  p.ticket.store(make_ticket(gen, 0, 0), std::memory_order_seq_cst);
  if (p.sleepers.load(std::memory_order_seq_cst) > 0) {
    {
      std::lock_guard<std::mutex> lock(p.sleep_mutex);
    }
    p.wake.notify_all();
  }

  claim_and_run(p, gen, 0);
  // Every task is claimed; wait for those still running elsewhere. Yield after a short spin: the
  // thread running one may be waiting for this core.
  for (int i = 0; p.done.load(std::memory_order_acquire) < ntasks; ++i) {
    if (i < 4096)
      cpu_relax();
    else
      std::this_thread::yield();
  }
  if (p.error) {
    std::exception_ptr e = p.error;
    p.error = nullptr;
    std::rethrow_exception(e);
  }
#endif
}

}  // namespace detail
}  // namespace numkern
