// Softmax driver: walks the slices of an N-d strided array, gathers strided runs into small
// buffers, splits work across threads, merges partial sums and decides when the two-pass
// algorithm must hand a slice to the max-subtracting one.
#include "softmax/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/isa.h"
#include "common/parallel.h"
#include "common/simd_base.h"
#include "common/strided.h"

namespace numkern::softmax {

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

// Below these sizes waking a second thread costs more than the second core gives back.
constexpr std::int64_t kParallelSliceMin = 1 << 18;
constexpr std::int64_t kParallelWorkMin = 1 << 16;
constexpr std::int64_t kRowsKernelMaxBytes = 64 << 10;
// A long slice is split in parts of about kPartBytes, cut at multiples of kSplitAlign elements
// (whole cache lines where the slice is line-aligned); the parts, and the order their partial
// results merge in, depend only on the slice length.
constexpr std::int64_t kSplitAlign = 64;
constexpr std::int64_t kPartBytes = 256 * 1024;
// The two-pass kernels keep n = round(x*log2e) exact and the reduction accurate while |n| <= 2^20;
// a sum whose exponent is beyond that (|x| above about 7e5, or -inf/+inf/NaN) goes max-based.
constexpr double kExtExponentLimit = ext_exponent_limit;
constexpr double kLn2 = 0.69314718055994530942;

struct Slice {
  const char* x;
  std::int64_t xs;
  char* y;
  std::int64_t ys;
  std::int64_t n;
};

// A sum m * 2^e merged in extended precision across runs and threads.
struct ExtAcc {
  long double m = 0.0L;
  double e = -std::numeric_limits<double>::infinity();
  void add(long double m2, double e2) {
    if (std::isnan(static_cast<double>(m2)) || std::isnan(static_cast<double>(m))) {
      m = std::numeric_limits<long double>::quiet_NaN();
      return;
    }
    if (m2 == 0.0L) return;
    if (m == 0.0L) {
      m = m2;
      e = e2;
      return;
    }
    const double e_new = std::max(e, e2);
    auto shift = [](double d) { return d < -20000.0 ? -20000 : static_cast<int>(d); };
    m = std::ldexp(m, shift(e - e_new)) + std::ldexp(m2, shift(e2 - e_new));
    e = e_new;
  }
  void add(const ExtAcc& o) { add(o.m, o.e); }
};

template <class T>
T nan_max(T a, T b) {
  if (std::isnan(a)) return a;
  if (std::isnan(b)) return b;
  return a > b ? a : b;
}

template <class T>
void fill(const Slice& s, int parts, int nt, T value) {
  parallel_ranges(
      s.n, parts,
      [&](int, std::int64_t a, std::int64_t b) {
        for (std::int64_t i = a; i < b; ++i) *element<T>(s.y, s.ys, i) = value;
      },
      kSplitAlign, nt);
}

// Parts of one long slice: a function of its length only, a few hundred KiB each, so that a thread
// the OS preempts holds up little of the work and the result does not depend on the thread count.
inline int slice_parts(std::int64_t n, std::size_t item) {
  if (n < kParallelSliceMin) return 1;
  return static_cast<int>(std::clamp<std::int64_t>(n * static_cast<std::int64_t>(item) / kPartBytes, 1, 256));
}

template <class T>
class SliceSolver {
 public:
  // nt: threads for this slice. The slice is split in parts by its length alone (slice_parts), so
  // its merged sums, and so its results, are the same at any thread count.
  SliceSolver(const TypedKernels<T>& k, const Slice& s, int nt, bool fresh_output = false)
      : k_(k), s_(s), nt_(nt), parts_(slice_parts(s.n, sizeof(T))), fresh_output_(fresh_output) {}

  void softmax(Algorithm algo) {
    if (algo == Algorithm::two_pass) {
      double m, e;
      if (ext_sum(m, e)) {
        const T inv_m = static_cast<T>(1.0 / m), ve = static_cast<T>(e);
        const auto scale = stream_output(s_.n * static_cast<std::int64_t>(sizeof(T)), fresh_output_)
                               ? k_.vscaleextexp_stream
                               : k_.vscaleextexp;
        map_x([&](const T* px, T* py, std::int64_t len) { scale(px, py, len, inv_m, ve); });
        return;
      }
      algo = Algorithm::three_pass_recompute;
    }
    const T mx = max();
    if (!std::isfinite(mx)) return fill<T>(s_, parts_, nt_, std::numeric_limits<T>::quiet_NaN());
    if (algo == Algorithm::three_pass_reload) {
      const double sum = reduce_sum([&](std::int64_t a, std::int64_t b) {
        double acc = 0.0;
        map_runs<T>(s_.x, s_.xs, s_.y, s_.ys, a, b,
                    [&](const T* px, T* py, std::int64_t len) { acc += k_.raddstoreexpminusmax(px, py, len, mx); });
        return acc;
      });
      if (std::isnan(sum)) return fill<T>(s_, parts_, nt_, std::numeric_limits<T>::quiet_NaN());
      const T scale = static_cast<T>(1.0 / sum);
      parallel_ranges(
          s_.n, parts_,
          [&](int, std::int64_t a, std::int64_t b) {
            map_runs<T>(s_.y, s_.ys, s_.y, s_.ys, a, b,
                        [&](const T* py, T* qy, std::int64_t len) { k_.vscale(py, qy, len, scale); });
          },
          kSplitAlign, nt_);
      return;
    }
    const double sum = sum_exp_minus(mx);
    if (std::isnan(sum)) return fill<T>(s_, parts_, nt_, std::numeric_limits<T>::quiet_NaN());
    const T scale = static_cast<T>(1.0 / sum);
    map_x([&](const T* px, T* py, std::int64_t len) { k_.vscaleexpminusmax(px, py, len, mx, scale); });
  }

  void log_softmax(Algorithm algo) {
    if (algo == Algorithm::two_pass) {
      double m, e;
      if (ext_sum(m, e)) {
        T hi, lo;
        split_log_sum(m, e, hi, lo);
        map_x([&](const T* px, T* py, std::int64_t len) { k_.vsubc2(px, py, len, hi, lo); });
        return;
      }
    }
    const T mx = max();
    if (std::isnan(mx) || mx == -std::numeric_limits<T>::infinity())
      return fill<T>(s_, parts_, nt_, std::numeric_limits<T>::quiet_NaN());
    if (mx == std::numeric_limits<T>::infinity() && !has_nan()) {
      // As scipy: x - log(sum(exp(x))) with an infinite sum: -inf, and NaN at the +inf entries.
      parallel_ranges(
          s_.n, parts_,
          [&](int, std::int64_t a, std::int64_t b) {
            for (std::int64_t i = a; i < b; ++i) {
              const T v = *element<T>(s_.x, s_.xs, i);
              *element<T>(s_.y, s_.ys, i) = v == mx ? std::numeric_limits<T>::quiet_NaN() : -mx;
            }
          },
          kSplitAlign, nt_);
      return;
    }
    const double sum = mx == std::numeric_limits<T>::infinity() ? NAN : sum_exp_minus(mx);
    if (std::isnan(sum)) return fill<T>(s_, parts_, nt_, std::numeric_limits<T>::quiet_NaN());
    const T log_sum = static_cast<T>(std::log(sum));
    map_x([&](const T* px, T* py, std::int64_t len) { k_.vsubc2(px, py, len, mx, log_sum); });
  }

  // Pass 1 without the range check, in the encoding of ext_partials.
  void partial(double& m, double& e) {
    const ExtAcc acc = ext_acc();
    e = acc.e;
    if (std::isnan(static_cast<double>(acc.m))) {
      m = has_nan() ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
    } else if (acc.m <= 0) {
      m = 0.0;
      e = -std::numeric_limits<double>::infinity();
    } else {
      int shift = 0;
      const long double frac = std::frexp(acc.m, &shift);
      m = static_cast<double>(2.0L * frac);
      e = acc.e + shift - 1;
    }
  }

  // Pass 2 with a sum merged elsewhere (encoding of ext_partials); false if |e| is out of range.
  bool scale_with(double m, double e, bool log) {
    if (std::isnan(m) || m <= 0 || (m == std::numeric_limits<double>::infinity() && !log)) {
      fill<T>(s_, parts_, nt_, std::numeric_limits<T>::quiet_NaN());
      return true;
    }
    if (m == std::numeric_limits<double>::infinity()) {  // log-softmax with +inf and no NaN, as scipy
      parallel_ranges(
          s_.n, parts_,
          [&](int, std::int64_t a, std::int64_t b) {
            for (std::int64_t i = a; i < b; ++i) {
              const T v = *element<T>(s_.x, s_.xs, i);
              *element<T>(s_.y, s_.ys, i) = v == std::numeric_limits<T>::infinity()
                                                ? std::numeric_limits<T>::quiet_NaN()
                                                : -std::numeric_limits<T>::infinity();
            }
          },
          kSplitAlign, nt_);
      return true;
    }
    if (!(std::fabs(e) <= kExtExponentLimit)) return false;
    if (log) {
      T hi, lo;
      split_log_sum(m, e, hi, lo);
      map_x([&](const T* px, T* py, std::int64_t len) { k_.vsubc2(px, py, len, hi, lo); });
    } else {
      const T inv_m = static_cast<T>(1.0 / m), ve = static_cast<T>(e);
      map_x([&](const T* px, T* py, std::int64_t len) { k_.vscaleextexp(px, py, len, inv_m, ve); });
    }
    return true;
  }

 private:
  ExtAcc ext_acc() {
    return parallel_reduce<ExtAcc>(
        s_.n, parts_,
        [&](std::int64_t a, std::int64_t b) {
          ExtAcc r;
          read_runs<T>(s_.x, s_.xs, a, b, [&](const T* px, std::int64_t len) {
            const ExtSum part = k_.raddextexp(px, len);
            r.add(part.m, part.e);
          });
          return r;
        },
        [](ExtAcc a, const ExtAcc& b) {
          a.add(b);
          return a;
        },
        kSplitAlign, nt_);
  }

  // Pass 1 of the two-pass algorithm. Returns false when the slice needs the max-based path;
  // otherwise sum exp(x) = m * 2^e with m in [1, 2).
  bool ext_sum(double& m, double& e) {
    const ExtAcc acc = ext_acc();
    if (!std::isfinite(static_cast<double>(acc.m)) || acc.m <= 0 || !(std::fabs(acc.e) <= kExtExponentLimit))
      return false;
    int shift = 0;
    const long double frac = std::frexp(acc.m, &shift);  // acc.m = frac * 2^shift, frac in [0.5, 1)
    m = static_cast<double>(2.0L * frac);
    e = acc.e + shift - 1;
    return std::fabs(e) <= kExtExponentLimit;
  }

  // log(m * 2^e) as hi + lo in T, accurate enough that (x - hi) - lo is the correctly rounded
  // log-softmax up to an ulp of max(1, |result|).
  static void split_log_sum(double m, double e, T& hi, T& lo) {
    if (sizeof(T) == sizeof(float)) {
      const double lse = std::log(m) + e * kLn2;
      hi = static_cast<T>(lse);
      lo = static_cast<T>(lse - static_cast<double>(hi));
    } else {
      // Cody-Waite split of ln2: e * kLn2Hi32 is exact for |e| <= 2^20.
      hi = static_cast<T>(e * simd::kLn2Hi32);
      lo = static_cast<T>(e * simd::kLn2Lo32 + std::log(m));
    }
  }

  // Only on the rare +inf path: rmax may drop a NaN (maxps semantics); a NaN in a finite-max
  // slice shows up in the sum of exps instead.
  bool has_nan() const {
    for (std::int64_t i = 0; i < s_.n; ++i)
      if (std::isnan(*element<T>(s_.x, s_.xs, i))) return true;
    return false;
  }

  // Max of the slice; NaN may or may not be returned when the slice has a NaN.
  T max() {
    return parallel_reduce<T>(
        s_.n, parts_,
        [&](std::int64_t a, std::int64_t b) {
          T r = -std::numeric_limits<T>::infinity();
          read_runs<T>(s_.x, s_.xs, a, b, [&](const T* px, std::int64_t len) { r = nan_max(r, k_.rmax(px, len)); });
          return r;
        },
        [](T a, T b) { return nan_max(a, b); }, kSplitAlign, nt_);
  }

  template <class F>
  double reduce_sum(F&& range_fn) {
    return parallel_reduce<double>(s_.n, parts_, range_fn, [](double a, double b) { return a + b; }, kSplitAlign, nt_);
  }

  double sum_exp_minus(T mx) {
    return reduce_sum([&](std::int64_t a, std::int64_t b) {
      double acc = 0.0;
      read_runs<T>(s_.x, s_.xs, a, b, [&](const T* px, std::int64_t len) { acc += k_.raddexpminusmax(px, len, mx); });
      return acc;
    });
  }

  template <class F>
  void map_x(F&& f) {
    parallel_ranges(
        s_.n, parts_, [&](int, std::int64_t a, std::int64_t b) { map_runs<T>(s_.x, s_.xs, s_.y, s_.ys, a, b, f); },
        kSplitAlign, nt_);
  }

  const TypedKernels<T>& k_;
  Slice s_;
  int nt_;
  int parts_;
  bool fresh_output_;
};

// True if the slices of an array start at base + i * stride for one stride (the dimensions other
// than `axis` collapse into one); size-1 dimensions are ignored.
bool uniform_outer_stride(const std::int64_t* shape, const std::int64_t* strides, int ndim, int axis,
                          std::int64_t& stride) {
  stride = 0;
  std::int64_t expected = 0;
  bool first = true;
  for (int d = ndim - 1; d >= 0; --d) {
    if (d == axis || shape[d] == 1) continue;
    if (first) {
      stride = strides[d];
      first = false;
    } else if (strides[d] != expected) {
      return false;
    }
    expected = strides[d] * shape[d];
  }
  return true;
}

// Short slices whose algorithm has a whole-row kernel (cache-resident, so the number of passes
// does not matter but the per-slice overhead does).
bool uses_rows_kernel(Algorithm algo, bool log, std::int64_t slice_bytes) {
  if (slice_bytes > kRowsKernelMaxBytes) return false;
  return log ? algo != Algorithm::two_pass : algo == Algorithm::three_pass_reload;
}

// f(slice, index, threads) for every slice: slices split across threads, or, when there are fewer
// slices than threads and they are long, each slice split across all threads.
template <class T, class F>
void for_each_slice(const char* x, const std::int64_t* xst, char* y, const std::int64_t* yst, const std::int64_t* shape,
                    int ndim, int axis, F&& f) {
  const SliceWalker walk{shape, ndim, axis};
  const std::int64_t n = walk.length(), slices = walk.slices();
  if (slices == 0) return;
  auto slice_at = [&](std::int64_t index) {
    if (!y) {  // ext_partials: input only
      const std::int64_t* const strides[1] = {xst};
      std::int64_t off[1];
      walk.at(index, strides, off);
      return Slice{x + off[0], xst[axis], nullptr, 0, n};
    }
    const std::int64_t* const strides[2] = {xst, yst};
    std::int64_t off[2];
    walk.at(index, strides, off);
    return Slice{x + off[0], xst[axis], y + off[1], yst[axis], n};
  };
  const int threads = num_threads();
  if (slices < threads && n >= kParallelSliceMin) {
    for (std::int64_t i = 0; i < slices; ++i) f(slice_at(i), i, threads);
    return;
  }
  parallel_for(slices, std::max<std::int64_t>(1, kParallelWorkMin / std::max<std::int64_t>(1, n)),
               [&](std::int64_t a, std::int64_t b) {
                 for (std::int64_t i = a; i < b; ++i) f(slice_at(i), i, 1);
               });
}

template <class T>
void run_typed(const TypedKernels<T>& k, const char* x, const std::int64_t* xst, char* y, const std::int64_t* yst,
               const std::int64_t* shape, int ndim, int axis, Algorithm algo, bool log, bool fresh_output) {
  const SliceWalker walk{shape, ndim, axis};
  const std::int64_t n = walk.length(), slices = walk.slices();
  if (n == 0 || slices == 0) return;
  if (algo == Algorithm::auto_select) algo = auto_algorithm(sizeof(T) == 4 ? Dtype::f32 : Dtype::f64, n, log);

  auto solve = [&](const Slice& s, int nt) {
    if (n == 1) {  // exactly 1 (log: 0) for a finite value; NaN otherwise, as scipy
      const T v = *element<T>(s.x, s.xs, 0);
      *element<T>(s.y, s.ys, 0) = std::isfinite(v) ? T(log ? 0 : 1) : std::numeric_limits<T>::quiet_NaN();
      return;
    }
    SliceSolver<T> solver(k, s, nt, fresh_output);
    if (log)
      solver.log_softmax(algo);
    else
      solver.softmax(algo);
  };

  std::int64_t row_xs = 0, row_ys = 0;
  if (n >= 2 && xst[axis] == static_cast<std::int64_t>(sizeof(T)) && yst[axis] == xst[axis] &&
      uses_rows_kernel(algo, log, n * static_cast<std::int64_t>(sizeof(T))) &&
      uniform_outer_stride(shape, xst, ndim, axis, row_xs) && uniform_outer_stride(shape, yst, ndim, axis, row_ys) &&
      row_xs % static_cast<std::int64_t>(sizeof(T)) == 0 && row_ys % static_cast<std::int64_t>(sizeof(T)) == 0) {
    const auto rows_kernel = log ? k.log_softmax_rows : k.softmax_rows;
    const std::int64_t unit = sizeof(T);
    parallel_for(slices, std::max<std::int64_t>(1, kParallelWorkMin / n), [&](std::int64_t a, std::int64_t b) {
      rows_kernel(reinterpret_cast<const T*>(x + a * row_xs), row_xs / unit, reinterpret_cast<T*>(y + a * row_ys),
                  row_ys / unit, n, b - a);
    });
    return;
  }
  for_each_slice<T>(x, xst, y, yst, shape, ndim, axis, [&](const Slice& s, std::int64_t, int nt) { solve(s, nt); });
}

template <class T>
void ext_partials_typed(const TypedKernels<T>& k, const char* x, const std::int64_t* xst, const std::int64_t* shape,
                        int ndim, int axis, double* m, double* e) {
  for_each_slice<T>(x, xst, nullptr, nullptr, shape, ndim, axis,
                    [&](const Slice& s, std::int64_t i, int nt) { SliceSolver<T>(k, s, nt).partial(m[i], e[i]); });
}

template <class T>
void scale_ext_typed(const TypedKernels<T>& k, const char* x, const std::int64_t* xst, char* y, const std::int64_t* yst,
                     const std::int64_t* shape, int ndim, int axis, const double* m, const double* e, bool log) {
  if (shape[axis] == 0) return;
  for_each_slice<T>(x, xst, y, yst, shape, ndim, axis, [&](const Slice& s, std::int64_t i, int nt) {
    SliceSolver<T>(k, s, nt).scale_with(m[i], e[i], log);
  });
}

}  // namespace

void ext_partials(Dtype dtype, const void* x, const std::int64_t* x_strides, const std::int64_t* shape, int ndim,
                  int axis, double* m, double* e) {
  const Kernels& k = active_kernels();
  const char* xc = static_cast<const char*>(x);
  if (dtype == Dtype::f32)
    ext_partials_typed<float>(k.f32, xc, x_strides, shape, ndim, axis, m, e);
  else
    ext_partials_typed<double>(k.f64, xc, x_strides, shape, ndim, axis, m, e);
}

void scale_ext(Dtype dtype, const void* x, const std::int64_t* x_strides, void* y, const std::int64_t* y_strides,
               const std::int64_t* shape, int ndim, int axis, const double* m, const double* e, bool log) {
  const Kernels& k = active_kernels();
  const char* xc = static_cast<const char*>(x);
  char* yc = static_cast<char*>(y);
  if (dtype == Dtype::f32)
    scale_ext_typed<float>(k.f32, xc, x_strides, yc, y_strides, shape, ndim, axis, m, e, log);
  else
    scale_ext_typed<double>(k.f64, xc, x_strides, yc, y_strides, shape, ndim, axis, m, e, log);
}

Algorithm auto_algorithm(Dtype dtype, std::int64_t n, bool log) {
  // Measured crossovers (BENCHMARKS.md): reload wins up to 2^14-2^15 floats per slice; beyond,
  // and for every row size once the whole array streams from memory (1024 x 32000), two passes.
  // Up to 64 KiB a slice also goes through the whole-row kernels.
  const std::int64_t bytes = n * (dtype == Dtype::f32 ? 4 : 8);
  if (bytes > kRowsKernelMaxBytes) return Algorithm::two_pass;
  return log ? Algorithm::three_pass_recompute : Algorithm::three_pass_reload;
}

void run(Dtype dtype, const void* x, const std::int64_t* x_strides, void* y, const std::int64_t* y_strides,
         const std::int64_t* shape, int ndim, int axis, Algorithm algorithm, bool log, bool fresh_output) {
  const Kernels& k = active_kernels();
  const char* xc = static_cast<const char*>(x);
  char* yc = static_cast<char*>(y);
  if (dtype == Dtype::f32)
    run_typed<float>(k.f32, xc, x_strides, yc, y_strides, shape, ndim, axis, algorithm, log, fresh_output);
  else
    run_typed<double>(k.f64, xc, x_strides, yc, y_strides, shape, ndim, axis, algorithm, log, fresh_output);
}

}  // namespace numkern::softmax
