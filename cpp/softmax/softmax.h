// The softmax family: the per-ISA kernel table and the driver entry point.
//
// Kernels work on one contiguous run of a slice; the driver (softmax.cpp) splits slices into runs,
// gathers strided data, threads, merges partial results and chooses the algorithm.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace numkern::softmax {

// A positive sum held as m * 2^e, so that sum(exp(x)) never overflows (Dukhan & Ablavatski 2020).
// e is an integer-valued double. m is NaN if the run held a NaN or +inf.
struct ExtSum {
  double m;
  double e;
};

template <class T>
struct TypedKernels {
  // sum_i exp(x_i) as an ExtSum; no max pass (pass 1 of the two-pass algorithm).
  ExtSum (*raddextexp)(const T* x, std::size_t n);
  // y_i = exp(x_i) * inv_m * 2^(-e), the 2^(n_i - e) factor applied exactly (pass 2).
  void (*vscaleextexp)(const T* x, T* y, std::size_t n, T inv_m, T e);
  // The same with non-temporal stores, for outputs much larger than the last-level cache.
  void (*vscaleextexp_stream)(const T* x, T* y, std::size_t n, T inv_m, T e);
  // max_i x_i, -inf for n == 0. A NaN may be returned or dropped (maxps semantics): callers
  // detect NaN from the sum of exp(x - max), which a NaN input always makes NaN.
  T (*rmax)(const T* x, std::size_t n);
  // y_i = exp(x_i - max); returns sum_i y_i (three-pass with reload).
  double (*raddstoreexpminusmax)(const T* x, T* y, std::size_t n, T max);
  // sum_i exp(x_i - max) (three-pass with recomputation, pass 2).
  double (*raddexpminusmax)(const T* x, std::size_t n, T max);
  // y_i = exp(x_i - max) * scale (three-pass with recomputation, pass 3).
  void (*vscaleexpminusmax)(const T* x, T* y, std::size_t n, T max, T scale);
  // y_i = x_i * scale.
  void (*vscale)(const T* x, T* y, std::size_t n, T scale);
  // y_i = (x_i - hi) - lo: log-softmax's second pass, with the constant split in two parts so the
  // subtraction loses nothing when x_i is close to hi.
  void (*vsubc2)(const T* x, T* y, std::size_t n, T hi, T lo);
  // Whole rows (contiguous, row strides in elements), three-pass with reload / max-based log,
  // special values handled as scipy; for rows short enough to stay in cache between passes.
  void (*softmax_rows)(const T* x, std::ptrdiff_t xstride, T* y, std::ptrdiff_t ystride, std::size_t n,
                       std::size_t rows);
  void (*log_softmax_rows)(const T* x, std::ptrdiff_t xstride, T* y, std::ptrdiff_t ystride, std::size_t n,
                           std::size_t rows);
  // The backward passes. Pass 1: sum_i a_i * b_i, or sum_i a_i, in double across blocks.
  double (*rdot)(const T* a, const T* b, std::size_t n);
  double (*rsum)(const T* a, std::size_t n);
  // Pass 2: dx_i = y_i * (dy_i - s) (softmax), dx_i = dy_i - exp(y_i) * s (log-softmax).
  // stream: dx written with non-temporal stores (each call fences its own).
  void (*vsoftmax_backward)(const T* y, const T* dy, T* dx, std::size_t n, T s, bool stream);
  void (*vlog_softmax_backward)(const T* y, const T* dy, T* dx, std::size_t n, T s, bool stream);
  // where=: y_i = m_i ? x_i : fill (m one byte per element); y may be x.
  void (*vselect)(const T* x, const std::uint8_t* m, T* y, std::size_t n, T fill);
  // The two-pass kernels under a where= mask read in place (x_i taken as -inf where m_i == 0):
  // the select is fused into the load, so a masked slice costs about what an unmasked one does.
  ExtSum (*raddextexp_masked)(const T* x, const std::uint8_t* m, std::size_t n);
  void (*vscaleextexp_masked)(const T* x, const std::uint8_t* m, T* y, std::size_t n, T inv_m, T e, bool stream);
  void (*vsubc2_masked)(const T* x, const std::uint8_t* m, T* y, std::size_t n, T hi, T lo);
};

struct Kernels {
  const char* isa;
  TypedKernels<float> f32;
  TypedKernels<double> f64;
};

extern const Kernels kernels_scalar;
extern const Kernels kernels_avx2;
extern const Kernels kernels_avx512;
extern const Kernels kernels_neon;  // AArch64 builds only

enum class Algorithm : int { auto_select = 0, two_pass = 1, three_pass_reload = 2, three_pass_recompute = 3 };

// Softmax (or log-softmax) of x along `axis`, written to y. x and y have the same shape; strides
// are in bytes and may be negative or zero (x only). y may alias x exactly (same data and strides).
// fresh_output: y was allocated for this call and never written (see stream_output).
void run(Dtype dtype, const void* x, const std::int64_t* x_strides, void* y, const std::int64_t* y_strides,
         const std::int64_t* shape, int ndim, int axis, Algorithm algorithm, bool log, bool fresh_output = false);

// The two passes of the two-pass algorithm as separate calls, so a slice split across machines can
// be reduced in a tree (numkern.dask): pass 1 gives each slice's sum exp(x) = m[i] * 2^e[i] with
// m in [1, 2), exactly as `run` forms it but without the range check; m = 0 (e = -inf) for a slice
// of only -inf, m = NaN for a slice holding a NaN, m = +inf for one holding +inf and no NaN.
// Slices are numbered in C order over the dimensions other than `axis`.
void ext_partials(Dtype dtype, const void* x, const std::int64_t* x_strides, const std::int64_t* shape, int ndim,
                  int axis, double* m, double* e);
// Pass 2 given every slice's merged sum: softmax or log-softmax of the slice's part held in x.
// Slices whose sum is special (m NaN, +inf or 0) get scipy's special values; slices whose exponent
// exceeds the two-pass range (|e| > ext_exponent_limit) are left unwritten for the caller.
void scale_ext(Dtype dtype, const void* x, const std::int64_t* x_strides, void* y, const std::int64_t* y_strides,
               const std::int64_t* shape, int ndim, int axis, const double* m, const double* e, bool log);
constexpr double ext_exponent_limit = 1048576.0;

// As run, with the slices taken over every axis whose bit is set in `axes` (bit d: axis d) at once.
// Axes whose strides merge into one strided run in x and y go through run; others are read in place
// as sub-slices along the innermost of them (no transposed copy).
// mask (where=): null, or one byte per element of x's shape (strides in bytes, 0 where broadcast);
// an element whose byte is 0 takes no part: it is read as -inf, so it gets 0 (log-softmax: -inf),
// and a slice with no element taking part is all 0 (-inf), never NaN.
void run_axes(Dtype dtype, const void* x, const std::int64_t* x_strides, void* y, const std::int64_t* y_strides,
              const std::int64_t* shape, int ndim, std::uint64_t axes, Algorithm algorithm, bool log, bool fresh_output,
              const void* mask = nullptr, const std::int64_t* mask_strides = nullptr);

// Gradient of softmax (log: log-softmax) over the slices along the axes set in `axes`, given its
// output y and the gradient dy of the loss with respect to y: dx = y * (dy - sum(dy * y))
// (softmax), dx = dy - exp(y) * sum(dy) (log-softmax), two passes per slice. y, dy and dx share
// `shape`; strides in bytes (y and dy may have zero or negative strides); dx may alias y or dy
// exactly (same data and strides). With a mask, an element whose byte is 0 is read as y = 0
// (log: -inf) and dy = 0: it adds nothing to the sum and gets dx = 0.
void backward(Dtype dtype, const void* y, const std::int64_t* y_strides, const void* dy, const std::int64_t* dy_strides,
              void* dx, const std::int64_t* dx_strides, const std::int64_t* shape, int ndim, std::uint64_t axes,
              bool log, const void* mask = nullptr, const std::int64_t* mask_strides = nullptr,
              bool fresh_output = false);

// The algorithm "auto" picks for a slice of n elements of the given dtype.
Algorithm auto_algorithm(Dtype dtype, std::int64_t n, bool log);

const Kernels& active_kernels();

}  // namespace numkern::softmax
