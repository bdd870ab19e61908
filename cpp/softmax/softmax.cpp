// Softmax driver: walks the slices of an N-d strided array, gathers strided runs into small
// buffers, splits work across threads, merges partial sums and decides when the two-pass
// algorithm must hand a slice to the max-subtracting one.
#include "softmax/softmax.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/isa.h"
#include "common/parallel.h"

namespace numkern::softmax {

const Kernels& active_kernels() {
  static const Kernels* const tables[kIsaCount] = {&kernels_scalar, &kernels_avx2, &kernels_avx512};
  return pick(tables);
}

namespace {

constexpr std::int64_t kContiguousRun = 1 << 16;  // bounds the terms a kernel sums in one call
constexpr std::int64_t kStridedRun = 2048;        // gather buffer length for strided slices
// Below these sizes a fork/join costs more than the second core gives back (and on a loaded
// machine a descheduled team member stalls every barrier).
constexpr std::int64_t kParallelSliceMin = 1 << 18;
constexpr std::int64_t kParallelWorkMin = 1 << 16;
constexpr std::int64_t kRowsKernelMaxBytes = 64 << 10;
// Outputs at least this large are written with non-temporal stores by the two-pass kernel.
constexpr std::int64_t kStreamMinBytes = 8 << 20;
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
std::vector<T>& scratch(int which) {
  static thread_local std::vector<T> buffers[2];
  auto& b = buffers[which];
  if (b.size() < static_cast<std::size_t>(kStridedRun)) b.resize(kStridedRun);
  return b;
}

template <class T>
const T* at(const char* base, std::int64_t stride, std::int64_t i) {
  return reinterpret_cast<const T*>(base + stride * i);
}
template <class T>
T* at(char* base, std::int64_t stride, std::int64_t i) {
  return reinterpret_cast<T*>(base + stride * i);
}

// f(px, len) over contiguous runs holding src[a:b).
template <class T, class F>
void read_runs(const char* src, std::int64_t ss, std::int64_t a, std::int64_t b, F&& f) {
  if (ss == static_cast<std::int64_t>(sizeof(T))) {
    for (std::int64_t i = a; i < b; i += kContiguousRun) f(at<T>(src, ss, i), std::min(kContiguousRun, b - i));
    return;
  }
  T* buf = scratch<T>(0).data();
  for (std::int64_t i = a; i < b; i += kStridedRun) {
    const std::int64_t len = std::min(kStridedRun, b - i);
    for (std::int64_t j = 0; j < len; ++j) buf[j] = *at<T>(src, ss, i + j);
    f(static_cast<const T*>(buf), len);
  }
}

// f(px, py, len) reading src[a:b) and writing dst[a:b), through buffers where strided.
template <class T, class F>
void map_runs(const char* src, std::int64_t ss, char* dst, std::int64_t ds, std::int64_t a, std::int64_t b, F&& f) {
  const std::int64_t unit = static_cast<std::int64_t>(sizeof(T));
  if (ss == unit && ds == unit) {
    for (std::int64_t i = a; i < b; i += kContiguousRun)
      f(at<T>(src, ss, i), at<T>(dst, ds, i), std::min(kContiguousRun, b - i));
    return;
  }
  T* in = scratch<T>(0).data();
  T* out = scratch<T>(1).data();
  for (std::int64_t i = a; i < b; i += kStridedRun) {
    const std::int64_t len = std::min(kStridedRun, b - i);
    const T* px = ss == unit ? at<T>(src, ss, i) : in;
    T* py = ds == unit ? at<T>(dst, ds, i) : out;
    if (ss != unit)
      for (std::int64_t j = 0; j < len; ++j) in[j] = *at<T>(src, ss, i + j);
    f(px, py, len);
    if (ds != unit)
      for (std::int64_t j = 0; j < len; ++j) *at<T>(dst, ds, i + j) = out[j];
  }
}

// Runs range_fn over [0, n) split into `nt` cache-line aligned ranges and merges the results.
template <class R, class F, class M>
R split_reduce(std::int64_t n, int nt, F&& range_fn, M&& merge) {
  if (nt <= 1) return range_fn(std::int64_t{0}, n);
  std::vector<R> parts(nt);
#pragma omp parallel num_threads(nt)
  {
    const std::int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    const std::int64_t a = (n * t / T) & ~std::int64_t{63}, b = t + 1 == T ? n : (n * (t + 1) / T) & ~std::int64_t{63};
    parts[t] = range_fn(a, b);
  }
  R r = parts[0];
  for (int t = 1; t < nt; ++t) r = merge(r, parts[t]);
  return r;
}

template <class F>
void split_map(std::int64_t n, int nt, F&& range_fn) {
  split_reduce<int>(n, nt, [&](std::int64_t a, std::int64_t b) { range_fn(a, b); return 0; },
                    [](int, int) { return 0; });
}

template <class T>
T nan_max(T a, T b) {
  if (std::isnan(a)) return a;
  if (std::isnan(b)) return b;
  return a > b ? a : b;
}

template <class T>
void fill(const Slice& s, int nt, T value) {
  split_map(s.n, nt, [&](std::int64_t a, std::int64_t b) {
    for (std::int64_t i = a; i < b; ++i) *at<T>(s.y, s.ys, i) = value;
  });
}

template <class T>
class SliceSolver {
 public:
  SliceSolver(const TypedKernels<T>& k, const Slice& s, int nt) : k_(k), s_(s), nt_(nt) {}

  void softmax(Algorithm algo) {
    if (algo == Algorithm::two_pass) {
      double m, e;
      if (ext_sum(m, e)) {
        const T inv_m = static_cast<T>(1.0 / m), ve = static_cast<T>(e);
        const auto scale = s_.n * static_cast<std::int64_t>(sizeof(T)) >= kStreamMinBytes ? k_.vscaleextexp_stream
                                                                                           : k_.vscaleextexp;
        map_x([&](const T* px, T* py, std::int64_t len) { scale(px, py, len, inv_m, ve); });
        return;
      }
      algo = Algorithm::three_pass_recompute;
    }
    const T mx = max();
    if (!std::isfinite(mx)) return fill<T>(s_, nt_, std::numeric_limits<T>::quiet_NaN());
    if (algo == Algorithm::three_pass_reload) {
      const double sum = reduce_sum([&](std::int64_t a, std::int64_t b) {
        double acc = 0.0;
        map_runs<T>(s_.x, s_.xs, s_.y, s_.ys, a, b,
                    [&](const T* px, T* py, std::int64_t len) { acc += k_.raddstoreexpminusmax(px, py, len, mx); });
        return acc;
      });
      if (std::isnan(sum)) return fill<T>(s_, nt_, std::numeric_limits<T>::quiet_NaN());
      const T scale = static_cast<T>(1.0 / sum);
      split_map(s_.n, nt_, [&](std::int64_t a, std::int64_t b) {
        map_runs<T>(s_.y, s_.ys, s_.y, s_.ys, a, b,
                    [&](const T* py, T* qy, std::int64_t len) { k_.vscale(py, qy, len, scale); });
      });
      return;
    }
    const double sum = sum_exp_minus(mx);
    if (std::isnan(sum)) return fill<T>(s_, nt_, std::numeric_limits<T>::quiet_NaN());
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
      return fill<T>(s_, nt_, std::numeric_limits<T>::quiet_NaN());
    if (mx == std::numeric_limits<T>::infinity() && !has_nan()) {
      // As scipy: x - log(sum(exp(x))) with an infinite sum: -inf, and NaN at the +inf entries.
      split_map(s_.n, nt_, [&](std::int64_t a, std::int64_t b) {
        for (std::int64_t i = a; i < b; ++i) {
          const T v = *at<T>(s_.x, s_.xs, i);
          *at<T>(s_.y, s_.ys, i) = v == mx ? std::numeric_limits<T>::quiet_NaN() : -mx;
        }
      });
      return;
    }
    const double sum = mx == std::numeric_limits<T>::infinity() ? NAN : sum_exp_minus(mx);
    if (std::isnan(sum)) return fill<T>(s_, nt_, std::numeric_limits<T>::quiet_NaN());
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
      fill<T>(s_, nt_, std::numeric_limits<T>::quiet_NaN());
      return true;
    }
    if (m == std::numeric_limits<double>::infinity()) {  // log-softmax with +inf and no NaN, as scipy
      split_map(s_.n, nt_, [&](std::int64_t a, std::int64_t b) {
        for (std::int64_t i = a; i < b; ++i) {
          const T v = *at<T>(s_.x, s_.xs, i);
          *at<T>(s_.y, s_.ys, i) = v == std::numeric_limits<T>::infinity() ? std::numeric_limits<T>::quiet_NaN()
                                                                           : -std::numeric_limits<T>::infinity();
        }
      });
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
    return split_reduce<ExtAcc>(
        s_.n, nt_,
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
        });
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
      // ln2 = C1 + C2 with C1 of 32 significant bits: e * C1 is exact for |e| <= 2^20.
      const double c1 = 0x1.62e42fee00000p-1, c2 = 0x1.a39ef35793c76p-33;
      hi = static_cast<T>(e * c1);
      lo = static_cast<T>(e * c2 + std::log(m));
    }
  }

  // Only on the rare +inf path: rmax may drop a NaN (maxps semantics); a NaN in a finite-max
  // slice shows up in the sum of exps instead.
  bool has_nan() const {
    for (std::int64_t i = 0; i < s_.n; ++i)
      if (std::isnan(*at<T>(s_.x, s_.xs, i))) return true;
    return false;
  }

  // Max of the slice; NaN may or may not be returned when the slice has a NaN.
  T max() {
    return split_reduce<T>(
        s_.n, nt_,
        [&](std::int64_t a, std::int64_t b) {
          T r = -std::numeric_limits<T>::infinity();
          read_runs<T>(s_.x, s_.xs, a, b, [&](const T* px, std::int64_t len) { r = nan_max(r, k_.rmax(px, len)); });
          return r;
        },
        [](T a, T b) { return nan_max(a, b); });
  }

  template <class F>
  double reduce_sum(F&& range_fn) {
    return split_reduce<double>(s_.n, nt_, range_fn, [](double a, double b) { return a + b; });
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
    split_map(s_.n, nt_, [&](std::int64_t a, std::int64_t b) { map_runs<T>(s_.x, s_.xs, s_.y, s_.ys, a, b, f); });
  }

  const TypedKernels<T>& k_;
  Slice s_;
  int nt_;
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
void for_each_slice(const char* x, const std::int64_t* xst, char* y, const std::int64_t* yst,
                    const std::int64_t* shape, int ndim, int axis, F&& f) {
  const std::int64_t n = shape[axis];
  std::int64_t slices = 1;
  for (int d = 0; d < ndim; ++d)
    if (d != axis) slices *= shape[d];
  if (slices == 0) return;
  auto slice_at = [&](std::int64_t index) {
    std::int64_t xo = 0, yo = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      if (d == axis) continue;
      const std::int64_t i = index % shape[d];
      index /= shape[d];
      xo += i * xst[d];
      if (y) yo += i * yst[d];
    }
    return Slice{x + xo, xst[axis], y ? y + yo : nullptr, y ? yst[axis] : 0, n};
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
               const std::int64_t* shape, int ndim, int axis, Algorithm algo, bool log) {
  const std::int64_t n = shape[axis];
  std::int64_t slices = 1;
  for (int d = 0; d < ndim; ++d)
    if (d != axis) slices *= shape[d];
  if (n == 0 || slices == 0) return;
  if (algo == Algorithm::auto_select) algo = auto_algorithm(sizeof(T) == 4 ? Dtype::f32 : Dtype::f64, n, log);

  auto solve = [&](const Slice& s, int nt) {
    if (n == 1) {  // exactly 1 (log: 0) for a finite value; NaN otherwise, as scipy
      const T v = *at<T>(s.x, s.xs, 0);
      *at<T>(s.y, s.ys, 0) = std::isfinite(v) ? T(log ? 0 : 1) : std::numeric_limits<T>::quiet_NaN();
      return;
    }
    SliceSolver<T> solver(k, s, nt);
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
  for_each_slice<T>(x, xst, nullptr, nullptr, shape, ndim, axis, [&](const Slice& s, std::int64_t i, int nt) {
    SliceSolver<T>(k, s, nt).partial(m[i], e[i]);
  });
}

template <class T>
void scale_ext_typed(const TypedKernels<T>& k, const char* x, const std::int64_t* xst, char* y,
                     const std::int64_t* yst, const std::int64_t* shape, int ndim, int axis, const double* m,
                     const double* e, bool log) {
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
         const std::int64_t* shape, int ndim, int axis, Algorithm algorithm, bool log) {
  const Kernels& k = active_kernels();
  const char* xc = static_cast<const char*>(x);
  char* yc = static_cast<char*>(y);
  if (dtype == Dtype::f32)
    run_typed<float>(k.f32, xc, x_strides, yc, y_strides, shape, ndim, axis, algorithm, log);
  else
    run_typed<double>(k.f64, xc, x_strides, yc, y_strides, shape, ndim, axis, algorithm, log);
}

}  // namespace numkern::softmax
