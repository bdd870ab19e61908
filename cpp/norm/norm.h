// The norm family: L1 (mean absolute deviation) and L2 layer normalization, their uncentred forms
// (x / mean|x| and RMS norm), forward and backward, in float32/float64, with an optional fused
// residual add, and the integer-only int8 L1 normalization (centred or not).
//
// Kernels work on one contiguous slice (or part of one); the driver (norm.cpp) gathers strided
// slices into buffers, threads over slices and turns the reductions into per-slice constants.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace numkern::norm {

template <class T>
struct TypedKernels {
  // sum_i x_i, accumulated in T over short blocks and in double across blocks.
  double (*rsum)(const T* x, std::size_t n);
  // sum_i |x_i - m| and sum_i (x_i - m)^2 with m = mhi + mlo (mlo carries what T(m) rounded off).
  double (*rsumabsdev)(const T* x, std::size_t n, T mhi, T mlo);
  double (*rsumsqdev)(const T* x, std::size_t n, T mhi, T mlo);
  // sum_i (x_i - m): the correction term of the corrected two-pass mean (float64 only).
  double (*rsumdev)(const T* x, std::size_t n, T mhi, T mlo);
  // y_i = ((x_i - mhi) - mlo) * scale, then * w_i and + b_i where w / b are not null. `stream`
  // writes y with non-temporal stores (for outputs far larger than the cache); the caller issues
  // store_fence() (common/isa.h) after its last streaming call.
  void (*vnormalize)(const T* x, T* y, std::size_t n, T mhi, T mlo, T scale, const T* w, const T* b, bool stream);
  // With g_i = dy_i * w_i (dy_i if w is null) and d_i = (x_i - mhi) - mlo:
  // out[0] = sum g_i, out[1] = sum g_i * d_i, out[2] = sum sign(d_i).
  void (*rbackward)(const T* dy, const T* x, const T* w, std::size_t n, T mhi, T mlo, double* out);
  // dx_i = p * (g_i + q + r * f(d_i)), f = sign (l1) or the identity (l2).
  void (*vbackward_l1)(const T* dy, const T* x, const T* w, T* dx, std::size_t n, T mhi, T mlo, T p, T q, T r);
  void (*vbackward_l2)(const T* dy, const T* x, const T* w, T* dx, std::size_t n, T mhi, T mlo, T p, T q, T r);
  // dw_i += dy_i * d_i * scale, db_i += dy_i (double accumulators, one set per thread).
  void (*raccparams)(const T* dy, const T* x, std::size_t n, T mhi, T mlo, T scale, double* dw, double* db);
  // h_i = x_i + r_i (the fused residual add; h may be x or r itself). When hs is not null, the
  // sums are also written to hs with non-temporal stores (fenced by the caller as for vnormalize).
  void (*vadd)(const T* x, const T* r, T* h, T* hs, std::size_t n);
};

// Integer-only kernels of l1_norm_int8. All arithmetic is on integers.
struct Int8Kernels {
  // sum_i x_i for n <= 2^24 (exact: int32 lane sums are widened before they can overflow).
  std::int64_t (*rsum)(const std::int8_t* x, std::size_t n);
  // sum and count of the x_i > t, for n <= 2^24.
  void (*rsumabove)(const std::int8_t* x, std::size_t n, std::int32_t t, std::int64_t* sum, std::int64_t* count);
  // y_i = sat_int8((clamp(x_i - t, -u_max, u_max) * g - c) >> k), an arithmetic (floor) shift, all in
  // int32: the caller guarantees |u * g - c| < 2^31 for |u| <= u_max and 1 <= k <= 31. `stream` as above.
  void (*vrequant)(const std::int8_t* x, std::int8_t* y, std::size_t n, std::int32_t t, std::int32_t u_max,
                   std::int32_t g, std::int32_t c, int k, bool stream);
  // y_i = lut[(uint8)x_i] (VBMI byte permutes); null where the level has no such kernel. The driver
  // calls it only when the CPU reports AVX512-VBMI. The table is built by vrequant, so both paths
  // give identical results.
  void (*vlut)(const std::int8_t* x, std::int8_t* y, std::size_t n, const std::int8_t* lut, bool stream);
};

struct Kernels {
  const char* isa;
  TypedKernels<float> f32;
  TypedKernels<double> f64;
  Int8Kernels i8;
};

extern const Kernels kernels_scalar;
extern const Kernels kernels_avx2;
extern const Kernels kernels_avx512;
extern const Kernels kernels_neon;  // AArch64 builds only

const Kernels& active_kernels();

// The spread a slice is divided by: mean |x - mean| (l1), sqrt(var + eps) (l2), and the uncentred
// forms mean |x| (l1_uncentered) and sqrt(mean x^2 + eps) (rms), which take no mean.
enum class Kind : int { l1 = 0, l2 = 1, l1_uncentered = 2, rms = 3 };
constexpr bool centered(Kind k) { return k == Kind::l1 || k == Kind::l2; }
constexpr bool is_l1(Kind k) { return k == Kind::l1 || k == Kind::l1_uncentered; }

// The fused residual add of forward(): h = x + r is written to h and normalized (null: no residual).
struct Residual {
  const void* r;
  const std::int64_t* r_strides;
  void* h;
  const std::int64_t* h_strides;
  bool fresh_h;  // h was allocated for this call (see fresh_output)
};

// Normalizes x along `axis` into y (same shape; byte strides, any sign; y may alias x exactly).
// w and b are contiguous arrays of shape[axis] elements or null.
// fresh_output: y was allocated for this call and never written (see stream_output in strided.h).
// With a residual, y = norm(x + r) and h = x + r (h may alias x or r exactly, y may alias x or r
// exactly, y and h do not overlap).
void forward(Dtype dtype, Kind kind, const void* x, const std::int64_t* x_strides, void* y,
             const std::int64_t* y_strides, const std::int64_t* shape, int ndim, int axis, const void* w, const void* b,
             double eps, bool fresh_output = false, const Residual* residual = nullptr);

// dx of the normalization (see norm.cpp for the formula); dw / db (contiguous, shape[axis]) are
// written when not null. dy, x and dx share the shape; dx may alias dy exactly.
void backward(Dtype dtype, Kind kind, const void* dy, const std::int64_t* dy_strides, const void* x,
              const std::int64_t* x_strides, void* dx, const std::int64_t* dx_strides, const std::int64_t* shape,
              int ndim, int axis, const void* w, void* dw, void* db, double eps);

// Integer-only L1 normalization of int8 slices: y = sat(round(2^out_shift * n * d / T)) with
// d = n*x - sum(x), T = sum|d| (centered), or d = n*x, T = n sum|x| (not centered).
void forward_int8(const std::int8_t* x, const std::int64_t* x_strides, std::int8_t* y, const std::int64_t* y_strides,
                  const std::int64_t* shape, int ndim, int axis, int out_shift, bool centered = true);

// Enables / disables the table path of forward_int8 (for tests of the arithmetic kernel); returns
// the previous setting.
bool set_int8_lut(bool enabled);
// True when forward_int8 uses the table path for long slices at the active ISA level.
bool int8_lut_active();

}  // namespace numkern::norm
