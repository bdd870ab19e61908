// Softmax driver: walks the slices of an N-d strided array, gathers strided runs into small
// buffers, splits work across threads, merges partial sums and decides when the two-pass
// algorithm must hand a slice to the max-subtracting one.
#include "softmax/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
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

// A slice along one axis, or along several (softmax over axes that do not merge into one): then
// the slice is `n / n1` sub-slices of n1 elements along its innermost axis, at byte offsets
// xoff[k] / yoff[k] from x / y, and element i of the slice is element i % n1 of sub-slice i / n1.
struct Slice {
  const char* x;
  std::int64_t xs;
  char* y;
  std::int64_t ys;
  std::int64_t n;
  std::int64_t n1 = 0;
  const std::int64_t* xoff = nullptr;
  const std::int64_t* yoff = nullptr;
  // where=: one byte per element (nonzero: the element takes part), stride ms bytes (0 when
  // broadcast), sub-slice offsets moff. A masked-out element is read as -inf.
  const char* m = nullptr;
  std::int64_t ms = 0;
  const std::int64_t* moff = nullptr;
};

// f(x_base, y_base, mask_base, j0, j1) for the pieces of the slice's range [a, b) that lie in one
// sub-slice.
template <class F>
void pieces(const Slice& s, std::int64_t a, std::int64_t b, F&& f) {
  if (!s.xoff) return f(s.x, s.y, s.m, a, b);
  for (std::int64_t i = a; i < b;) {
    const std::int64_t k = i / s.n1, j = i - k * s.n1, len = std::min(b - i, s.n1 - j);
    f(s.x + s.xoff[k], s.y ? s.y + s.yoff[k] : nullptr, s.m ? s.m + s.moff[k] : nullptr, j, j + len);
    i += len;
  }
}
inline bool mask_at(const Slice& s, std::int64_t i) {
  if (!s.m) return true;
  if (!s.moff) return s.m[s.ms * i] != 0;
  return s.m[s.moff[i / s.n1] + s.ms * (i % s.n1)] != 0;
}
template <class T>
T x_value(const Slice& s, std::int64_t i) {
  if (!mask_at(s, i)) return -std::numeric_limits<T>::infinity();
  if (!s.xoff) return *element<T>(s.x, s.xs, i);
  return *element<T>(s.x + s.xoff[i / s.n1], s.xs, i % s.n1);
}
// Whether any element of the slice takes part (stops at the first).
inline bool any_selected(const Slice& s) {
  for (std::int64_t i = 0; i < s.n; ++i)
    if (mask_at(s, i)) return true;
  return false;
}

// Contiguous runs of a masked array: x[j0:j1) (stride xs bytes) with the elements whose mask byte
// (stride ms) is 0 replaced by `fill`, passed as f(p, len) through the per-thread run_buffer
// `which` (the mask bytes, when strided, through the byte run_buffer 0).
template <class T, class Select, class F>
void masked_runs(const char* x, std::int64_t xs, const char* m, std::int64_t ms, std::int64_t j0, std::int64_t j1,
                 T fill, int which, Select&& select, F&& f) {
  T* v = run_buffer<T>(which);
  std::uint8_t* mbuf = run_buffer<std::uint8_t>(0);
  for (std::int64_t i = j0; i < j1; i += kStridedRun) {
    const std::int64_t len = std::min(kStridedRun, j1 - i);
    const T* px = element<T>(x, xs, i);
    if (xs != static_cast<std::int64_t>(sizeof(T))) {
      for (std::int64_t j = 0; j < len; ++j) v[j] = *element<T>(x, xs, i + j);
      px = v;
    }
    const auto* pm = reinterpret_cast<const std::uint8_t*>(m + ms * i);
    if (ms != 1) {
      for (std::int64_t j = 0; j < len; ++j) mbuf[j] = static_cast<std::uint8_t>(m[ms * (i + j)]);
      pm = mbuf;
    }
    select(px, pm, v, len, fill);
    f(static_cast<const T*>(v), len);
  }
}
template <class T>
T* y_at(const Slice& s, std::int64_t i) {
  if (!s.yoff) return element<T>(s.y, s.ys, i);
  return element<T>(s.y + s.yoff[i / s.n1], s.ys, i % s.n1);
}

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
        for (std::int64_t i = a; i < b; ++i) *y_at<T>(s, i) = value;
      },
      kSplitAlign, nt);
}

// The writing pass over [0, n) of one slice: f(a, b) on the slice's parts, or, when the output is a
// fresh unit-stride run on several threads, on chunks that end on its 2 MiB pages
// (parallel_output_pages). Only for maps, whose results do not depend on the split.
template <class F>
void write_parts(std::int64_t n, int parts, int nt, const char* out, std::int64_t out_stride, std::int64_t item,
                 bool one_run, bool fresh_output, F&& f) {
  if (fresh_output && one_run && nt > 1 && out_stride == item && n * item >= 2 * kOutputPageBytes)
    return parallel_output_pages(out, n, item, kPartBytes / item, nt, f);
  parallel_ranges(n, parts, [&](int, std::int64_t a, std::int64_t b) { f(a, b); }, kSplitAlign, nt);
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
        const bool stream = stream_output(s_.n * static_cast<std::int64_t>(sizeof(T)), fresh_output_);
        if (fused_mask()) {
          map_masked([&](const T* px, const std::uint8_t* pm, T* py, std::int64_t len) {
            k_.vscaleextexp_masked(px, pm, py, len, inv_m, ve, stream);
          });
          return;
        }
        const auto scale = stream ? k_.vscaleextexp_stream : k_.vscaleextexp;
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
        map(a, b, [&](const T* px, T* py, std::int64_t len) { acc += k_.raddstoreexpminusmax(px, py, len, mx); });
        return acc;
      });
      if (std::isnan(sum)) return fill<T>(s_, parts_, nt_, std::numeric_limits<T>::quiet_NaN());
      const T scale = static_cast<T>(1.0 / sum);
      parallel_ranges(
          s_.n, parts_,
          [&](int, std::int64_t a, std::int64_t b) {
            pieces(s_, a, b, [&](const char*, char* yb, const char*, std::int64_t j0, std::int64_t j1) {
              map_runs<T>(yb, s_.ys, yb, s_.ys, j0, j1,
                          [&](const T* py, T* qy, std::int64_t len) { k_.vscale(py, qy, len, scale); });
            });
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
        if (fused_mask()) {
          map_masked([&](const T* px, const std::uint8_t* pm, T* py, std::int64_t len) {
            k_.vsubc2_masked(px, pm, py, len, hi, lo);
          });
          return;
        }
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
              const T v = x_value<T>(s_, i);
              *y_at<T>(s_, i) = v == mx ? std::numeric_limits<T>::quiet_NaN() : -mx;
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
              const T v = x_value<T>(s_, i);
              *y_at<T>(s_, i) = v == std::numeric_limits<T>::infinity() ? std::numeric_limits<T>::quiet_NaN()
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
          if (fused_mask()) {
            pieces(s_, a, b, [&](const char* xb, char*, const char* mb, std::int64_t j0, std::int64_t j1) {
              for (std::int64_t i = j0; i < j1; i += kContiguousRun) {
                const std::int64_t len = std::min(kContiguousRun, j1 - i);
                const ExtSum part =
                    k_.raddextexp_masked(element<T>(xb, s_.xs, i), reinterpret_cast<const std::uint8_t*>(mb + i), len);
                r.add(part.m, part.e);
              }
            });
            return r;
          }
          read(a, b, [&](const T* px, std::int64_t len) {
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
      if (std::isnan(x_value<T>(s_, i))) return true;
    return false;
  }

  // Max of the slice; NaN may or may not be returned when the slice has a NaN.
  T max() {
    return parallel_reduce<T>(
        s_.n, parts_,
        [&](std::int64_t a, std::int64_t b) {
          T r = -std::numeric_limits<T>::infinity();
          read(a, b, [&](const T* px, std::int64_t len) { r = nan_max(r, k_.rmax(px, len)); });
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
      read(a, b, [&](const T* px, std::int64_t len) { acc += k_.raddexpminusmax(px, len, mx); });
      return acc;
    });
  }

  template <class F>
  void map_x(F&& f) {
    write_parts(s_.n, parts_, nt_, s_.y, s_.ys, sizeof(T), !s_.xoff, fresh_output_,
                [&](std::int64_t a, std::int64_t b) { map(a, b, f); });
  }

  // A where= mask that the fused masked kernels read in place: x, y and the mask unit-stride.
  bool fused_mask() const {
    const std::int64_t unit = sizeof(T);
    return s_.m && s_.ms == 1 && s_.xs == unit && s_.ys == unit;
  }
  // f(px, pm, py, len) over x[a:b) -> y[a:b) with the mask bytes pm, in runs (fused_mask() only).
  template <class F>
  void map_masked(F&& f) {
    parallel_ranges(
        s_.n, parts_,
        [&](int, std::int64_t a, std::int64_t b) {
          pieces(s_, a, b, [&](const char* xb, char* yb, const char* mb, std::int64_t j0, std::int64_t j1) {
            for (std::int64_t i = j0; i < j1; i += kContiguousRun)
              f(element<T>(xb, s_.xs, i), reinterpret_cast<const std::uint8_t*>(mb + i), element<T>(yb, s_.ys, i),
                std::min(kContiguousRun, j1 - i));
          });
        },
        kSplitAlign, nt_);
  }

  // f(px, len) over x[a:b) / f(px, py, len) over x[a:b) -> y[a:b), in contiguous runs.
  template <class F>
  void read(std::int64_t a, std::int64_t b, F&& f) const {
    pieces(s_, a, b, [&](const char* xb, char*, const char* mb, std::int64_t j0, std::int64_t j1) {
      if (!mb) return read_runs<T>(xb, s_.xs, j0, j1, f);
      masked_runs<T>(xb, s_.xs, mb, s_.ms, j0, j1, -std::numeric_limits<T>::infinity(), 0, k_.vselect, f);
    });
  }
  template <class F>
  void map(std::int64_t a, std::int64_t b, F&& f) const {
    pieces(s_, a, b, [&](const char* xb, char* yb, const char* mb, std::int64_t j0, std::int64_t j1) {
      if (!mb) return map_runs<T>(xb, s_.xs, yb, s_.ys, j0, j1, f);
      T* out = run_buffer<T>(1);
      std::int64_t i = j0;
      masked_runs<T>(xb, s_.xs, mb, s_.ms, j0, j1, -std::numeric_limits<T>::infinity(), 0, k_.vselect,
                     [&](const T* px, std::int64_t len) {
                       const bool unit = s_.ys == static_cast<std::int64_t>(sizeof(T));
                       T* py = unit ? element<T>(yb, s_.ys, i) : out;
                       f(px, py, len);
                       if (!unit)
                         for (std::int64_t j = 0; j < len; ++j) *element<T>(yb, s_.ys, i + j) = out[j];
                       i += len;
                     });
    });
  }

  const TypedKernels<T>& k_;
  Slice s_;
  int nt_;
  int parts_;
  bool fresh_output_;
};

// One slice with the chosen algorithm; a one-element slice is exactly 1 (log: 0) for a finite
// value, NaN otherwise, as scipy.
template <class T>
void solve_slice(const TypedKernels<T>& k, const Slice& s, int nt, Algorithm algo, bool log, bool fresh_output) {
  if (s.n == 1) {
    const T v = x_value<T>(s, 0);
    *y_at<T>(s, 0) = std::isfinite(v) ? T(log ? 0 : 1) : std::numeric_limits<T>::quiet_NaN();
    return;
  }
  SliceSolver<T> solver(k, s, nt, fresh_output);
  if (log)
    solver.log_softmax(algo);
  else
    solver.softmax(algo);
}

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

  auto solve = [&](const Slice& s, int nt) { solve_slice(k, s, nt, algo, log, fresh_output); };

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

// The slices of a call over the axes in `mask`, for K arrays of one shape. The other (outer) axes
// are walked in C order. The slice axes either merge into one strided axis in every array (then a
// slice is one strided run: `merged`), or the slice is made of sub-slices along its innermost axis
// (the smallest |stride| in the first array), numbered in C order over the other slice axes.
template <int K>
struct SlicePlan {
  std::int64_t n = 1;      // elements per slice
  std::int64_t n1 = 1;     // elements per sub-slice (n when merged)
  std::int64_t count = 1;  // number of slices
  std::int64_t step[K] = {};
  bool merged = true;
  std::vector<std::int64_t> sub[K];  // sub-slice byte offsets from the slice's start (not merged)
  std::vector<int> outer;
  const std::int64_t* shape = nullptr;
  const std::int64_t* const* strides = nullptr;

  SlicePlan(const std::int64_t* shp, int ndim, std::uint64_t mask, const std::int64_t* const* st)
      : shape(shp), strides(st) {
    std::vector<int> red;
    for (int d = 0; d < ndim; ++d) {
      if (!((mask >> d) & 1)) {
        outer.push_back(d);
        count *= shape[d];
      } else {
        n *= shape[d];
        if (shape[d] != 1) red.push_back(d);
      }
    }
    n1 = n;
    if (red.empty()) return;
    // Outermost first: |stride| of the first array descending (axis order breaks ties).
    std::vector<int> order = red;
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return std::llabs(strides[0][a]) > std::llabs(strides[0][b]); });
    const int inner = order.back();
    for (int k = 0; k < K; ++k) step[k] = strides[k][inner];
    for (std::size_t i = 0; i + 1 < order.size(); ++i)
      for (int k = 0; k < K; ++k)
        merged = merged && strides[k][order[i]] == strides[k][order[i + 1]] * shape[order[i + 1]];
    if (merged) return;
    n1 = shape[inner];
    std::vector<int> others;
    for (int d : red)
      if (d != inner) others.push_back(d);
    const std::int64_t subs = n / n1;
    for (int k = 0; k < K; ++k) sub[k].resize(static_cast<std::size_t>(subs));
    for (std::int64_t c = 0; c < subs; ++c) {
      std::int64_t idx = c;
      std::int64_t off[K] = {};
      for (std::size_t i = others.size(); i-- > 0;) {
        const std::int64_t v = idx % shape[others[i]];
        idx /= shape[others[i]];
        for (int k = 0; k < K; ++k) off[k] += v * strides[k][others[i]];
      }
      for (int k = 0; k < K; ++k) sub[k][static_cast<std::size_t>(c)] = off[k];
    }
  }

  // Byte offsets of slice `index` in each array.
  void at(std::int64_t index, std::int64_t* off) const {
    for (int k = 0; k < K; ++k) off[k] = 0;
    for (std::size_t i = outer.size(); i-- > 0;) {
      const int d = outer[i];
      const std::int64_t v = index % shape[d];
      index /= shape[d];
      for (int k = 0; k < K; ++k) off[k] += v * strides[k][d];
    }
  }
  // Sub-slice offsets of array k; null when the slice is one strided run.
  const std::int64_t* offsets(int k) const { return merged ? nullptr : sub[k].data(); }
};

// f(slice index, threads) for each of `count` slices of n elements: slices split across threads,
// or, when there are fewer slices than threads and they are long, each slice across all threads.
template <class F>
void for_slices(std::int64_t count, std::int64_t n, F&& f) {
  const int threads = num_threads();
  if (count < threads && n >= kParallelSliceMin) {
    for (std::int64_t i = 0; i < count; ++i) f(i, threads);
    return;
  }
  parallel_for(count, std::max<std::int64_t>(1, kParallelWorkMin / std::max<std::int64_t>(1, n)),
               [&](std::int64_t a, std::int64_t b) {
                 for (std::int64_t i = a; i < b; ++i) f(i, 1);
               });
}

// One slice of the backward pass: y and dy read, dx written; sub-slices and mask as in Slice.
struct BackwardSlice {
  const char* y;
  std::int64_t ys;
  const char* dy;
  std::int64_t dys;
  char* dx;
  std::int64_t dxs;
  std::int64_t n;
  std::int64_t n1;
  const std::int64_t* off[4];  // sub-slice offsets of y, dy, dx, mask, or null (one run)
  const char* m;               // where=, or null
  std::int64_t ms;
};

// f(y_base, dy_base, dx_base, mask_base, j0, j1) for the pieces of [a, b) in one sub-slice.
template <class F>
void pieces(const BackwardSlice& s, std::int64_t a, std::int64_t b, F&& f) {
  if (!s.off[0]) return f(s.y, s.dy, s.dx, s.m, a, b);
  for (std::int64_t i = a; i < b;) {
    const std::int64_t k = i / s.n1, j = i - k * s.n1, len = std::min(b - i, s.n1 - j);
    f(s.y + s.off[0][k], s.dy + s.off[1][k], s.dx + s.off[2][k], s.m ? s.m + s.off[3][k] : nullptr, j, j + len);
    i += len;
  }
}

// f(py, pdy, pdx, len) over runs of [j0, j1): y and dy masked (an element whose mask byte is 0 is
// read as y = 0 (log: -inf), dy = 0, so it adds nothing to the sum and gets dx = 0), dx written
// back where strided.
template <class T, class F>
void masked_backward_runs(const TypedKernels<T>& k, const BackwardSlice& s, const char* yb, const char* dyb, char* dxb,
                          const char* mb, std::int64_t j0, std::int64_t j1, bool log, F&& f) {
  T* out = run_buffer<T>(3);
  const T yfill = log ? -std::numeric_limits<T>::infinity() : T(0);
  for (std::int64_t i = j0; i < j1; i += kStridedRun) {
    const std::int64_t len = std::min(kStridedRun, j1 - i);
    const T* py = nullptr;
    const T* pdy = nullptr;
    masked_runs<T>(yb, s.ys, mb, s.ms, i, i + len, yfill, 1, k.vselect, [&](const T* p, std::int64_t) { py = p; });
    masked_runs<T>(dyb, s.dys, mb, s.ms, i, i + len, T(0), 2, k.vselect, [&](const T* p, std::int64_t) { pdy = p; });
    const bool unit = s.dxs == static_cast<std::int64_t>(sizeof(T));
    T* pdx = dxb ? (unit ? element<T>(dxb, s.dxs, i) : out) : nullptr;
    f(py, pdy, pdx, len);
    if (dxb && !unit)
      for (std::int64_t j = 0; j < len; ++j) *element<T>(dxb, s.dxs, i + j) = out[j];
  }
}

// Both passes of one slice on nt threads; the slice's parts, hence its sums and results, depend on
// its length only.
template <class T>
void backward_slice(const TypedKernels<T>& k, const BackwardSlice& s, int nt, bool log, bool stream,
                    bool fresh_output) {
  const int parts = slice_parts(s.n, sizeof(T));
  const double sum = parallel_reduce<double>(
      s.n, parts,
      [&](std::int64_t a, std::int64_t b) {
        double acc = 0.0;
        pieces(s, a, b, [&](const char* yb, const char* dyb, char*, const char* mb, std::int64_t j0, std::int64_t j1) {
          if (mb)
            masked_backward_runs<T>(k, s, yb, dyb, nullptr, mb, j0, j1, log,
                                    [&](const T* py, const T* pdy, T*, std::int64_t len) {
                                      acc += log ? k.rsum(pdy, len) : k.rdot(py, pdy, len);
                                    });
          else if (log)
            read_runs<T>(dyb, s.dys, j0, j1, [&](const T* pdy, std::int64_t len) { acc += k.rsum(pdy, len); });
          else
            read_runs2<T>(yb, s.ys, dyb, s.dys, j0, j1,
                          [&](const T* py, const T* pdy, std::int64_t len) { acc += k.rdot(py, pdy, len); });
        });
        return acc;
      },
      [](double a, double b) { return a + b; }, kSplitAlign, nt);
  const T st = static_cast<T>(sum);
  const auto pass2 = log ? k.vlog_softmax_backward : k.vsoftmax_backward;
  write_parts(s.n, parts, nt, s.dx, s.dxs, sizeof(T), !s.off[0], fresh_output, [&](std::int64_t a, std::int64_t b) {
    pieces(s, a, b, [&](const char* yb, const char* dyb, char* dxb, const char* mb, std::int64_t j0, std::int64_t j1) {
      if (mb) {
        masked_backward_runs<T>(
            k, s, yb, dyb, dxb, mb, j0, j1, log,
            [&](const T* py, const T* pdy, T* pdx, std::int64_t len) { pass2(py, pdy, pdx, len, st, false); });
        return;
      }
      // Streamed only where dx is written in place (a strided dx goes through a buffer).
      const bool direct = stream && s.dxs == static_cast<std::int64_t>(sizeof(T));
      map_runs2<T>(yb, s.ys, dyb, s.dys, dxb, s.dxs, j0, j1,
                   [&](const T* py, const T* pdy, T* pdx, std::int64_t len) { pass2(py, pdy, pdx, len, st, direct); });
    });
  });
}

template <class T, int K>
void backward_plan(const TypedKernels<T>& k, const char* y, const char* dy, char* dx, const char* mask,
                   const SlicePlan<K>& plan, bool log, bool fresh_output) {
  // dx far larger than the cache, and already mapped: non-temporal stores skip reading it first.
  const bool stream = stream_output(plan.count * plan.n * static_cast<std::int64_t>(sizeof(T)), fresh_output);
  for_slices(plan.count, plan.n, [&](std::int64_t i, int nt) {
    std::int64_t o[K];
    plan.at(i, o);
    BackwardSlice s{y + o[0],
                    plan.step[0],
                    dy + o[1],
                    plan.step[1],
                    dx + o[2],
                    plan.step[2],
                    plan.n,
                    plan.n1,
                    {plan.offsets(0), plan.offsets(1), plan.offsets(2), nullptr},
                    nullptr,
                    0};
    if constexpr (K == 4) {
      s.m = mask + o[3];
      s.ms = plan.step[3];
      s.off[3] = plan.offsets(3);
    }
    backward_slice(k, s, nt, log, stream, fresh_output);
  });
}

template <class T>
void backward_typed(const TypedKernels<T>& k, const char* y, const std::int64_t* yst, const char* dy,
                    const std::int64_t* dyst, char* dx, const std::int64_t* dxst, const std::int64_t* shape, int ndim,
                    std::uint64_t axes, bool log, const char* mask, const std::int64_t* mst, bool fresh_output) {
  if (mask) {
    const std::int64_t* const strides[4] = {yst, dyst, dxst, mst};
    const SlicePlan<4> plan(shape, ndim, axes, strides);
    if (plan.n == 0 || plan.count == 0) return;
    return backward_plan<T, 4>(k, y, dy, dx, mask, plan, log, fresh_output);
  }
  const std::int64_t* const strides[3] = {yst, dyst, dxst};
  const SlicePlan<3> plan(shape, ndim, axes, strides);
  if (plan.n == 0 || plan.count == 0) return;
  backward_plan<T, 3>(k, y, dy, dx, nullptr, plan, log, fresh_output);
}

// Softmax over the slices of a plan (axes that do not merge into one, or a where= mask): each
// slice through its sub-slices. K = 3: the third array is the mask.
template <class T, int K>
void run_plan(const TypedKernels<T>& k, const char* x, char* y, const char* mask, const SlicePlan<K>& plan,
              Algorithm algo, bool log, bool fresh_output) {
  if (algo == Algorithm::auto_select) algo = auto_algorithm(sizeof(T) == 4 ? Dtype::f32 : Dtype::f64, plan.n, log);
  for_slices(plan.count, plan.n, [&](std::int64_t i, int nt) {
    std::int64_t o[K];
    plan.at(i, o);
    Slice s{x + o[0], plan.step[0], y + o[1], plan.step[1], plan.n, plan.n1, plan.offsets(0), plan.offsets(1)};
    if constexpr (K == 3) {
      s.m = mask + o[2];
      s.ms = plan.step[2];
      s.moff = plan.offsets(2);
      if (!any_selected(s))  // nothing takes part: 0 (log: -inf), never NaN
        return fill<T>(s, slice_parts(s.n, sizeof(T)), nt, log ? -std::numeric_limits<T>::infinity() : T(0));
    }
    solve_slice(k, s, nt, algo, log, fresh_output);
  });
}

}  // namespace

void backward(Dtype dtype, const void* y, const std::int64_t* y_strides, const void* dy, const std::int64_t* dy_strides,
              void* dx, const std::int64_t* dx_strides, const std::int64_t* shape, int ndim, std::uint64_t axes,
              bool log, const void* mask, const std::int64_t* mask_strides, bool fresh_output) {
  const Kernels& k = active_kernels();
  const char *yc = static_cast<const char*>(y), *dyc = static_cast<const char*>(dy);
  const char* mc = static_cast<const char*>(mask);
  char* dxc = static_cast<char*>(dx);
  if (dtype == Dtype::f32)
    backward_typed<float>(k.f32, yc, y_strides, dyc, dy_strides, dxc, dx_strides, shape, ndim, axes, log, mc,
                          mask_strides, fresh_output);
  else
    backward_typed<double>(k.f64, yc, y_strides, dyc, dy_strides, dxc, dx_strides, shape, ndim, axes, log, mc,
                           mask_strides, fresh_output);
}

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

void run_axes(Dtype dtype, const void* x, const std::int64_t* x_strides, void* y, const std::int64_t* y_strides,
              const std::int64_t* shape, int ndim, std::uint64_t axes, Algorithm algorithm, bool log, bool fresh_output,
              const void* mask, const std::int64_t* mask_strides) {
  const Kernels& k = active_kernels();
  const char* xc = static_cast<const char*>(x);
  char* yc = static_cast<char*>(y);
  if (mask) {
    const std::int64_t* const strides[3] = {x_strides, y_strides, mask_strides};
    const SlicePlan<3> plan(shape, ndim, axes, strides);
    if (plan.n == 0 || plan.count == 0) return;
    const char* mc = static_cast<const char*>(mask);
    if (dtype == Dtype::f32)
      run_plan<float, 3>(k.f32, xc, yc, mc, plan, algorithm, log, fresh_output);
    else
      run_plan<double, 3>(k.f64, xc, yc, mc, plan, algorithm, log, fresh_output);
    return;
  }
  const std::int64_t* const strides[2] = {x_strides, y_strides};
  const SlicePlan<2> plan(shape, ndim, axes, strides);
  if (plan.n == 0 || plan.count == 0) return;
  if (plan.merged) {  // one strided axis: the single-axis driver, rows kernels included
    std::vector<std::int64_t> shp, xs, ys;
    for (int d : plan.outer) {
      shp.push_back(shape[d]);
      xs.push_back(x_strides[d]);
      ys.push_back(y_strides[d]);
    }
    shp.push_back(plan.n);
    xs.push_back(plan.step[0]);
    ys.push_back(plan.step[1]);
    return run(dtype, x, xs.data(), y, ys.data(), shp.data(), static_cast<int>(shp.size()),
               static_cast<int>(shp.size()) - 1, algorithm, log, fresh_output);
  }
  if (dtype == Dtype::f32)
    run_plan<float, 2>(k.f32, xc, yc, nullptr, plan, algorithm, log, fresh_output);
  else
    run_plan<double, 2>(k.f64, xc, yc, nullptr, plan, algorithm, log, fresh_output);
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
