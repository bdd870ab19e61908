// Norm driver: walks the slices of an N-d strided array, gathers strided slices into per-thread
// buffers, threads over slices, and turns each slice's reductions into the constants the
// elementwise kernels apply. A slice is read once from memory; the later passes hit cache.
#include "norm/norm.h"

#include <cmath>
#include <limits>
#include <vector>

#include "common/isa.h"
#include "common/parallel.h"
#include "common/portable.h"
#include "common/strided.h"

namespace numkern::norm {

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

constexpr std::int64_t kParallelWorkMin = 1 << 15;  // elements per thread before threading pays
// Mean as hi + lo in T, and the reciprocal of the spread (mean |d| + eps, or sqrt(var + eps)).
template <class T>
struct Stats {
  T mhi, mlo, scale;
};

template <class T>
Stats<T> slice_stats(const TypedKernels<T>& k, Kind kind, const T* x, std::int64_t n, double eps) {
  if (!centered(kind)) {  // mean |x| or mean x^2 about 0: one pass, no mean to correct
    const double sp = is_l1(kind) ? k.rsumabsdev(x, n, T(0), T(0)) / static_cast<double>(n)
                                  : k.rsumsqdev(x, n, T(0), T(0)) / static_cast<double>(n);
    // An infinite spread (an inf in the slice, or finite data whose sums overflow) gives a NaN
    // scale: the whole slice is NaN as for the centred kinds, or is rescaled (rescale_if_needed).
    const double scale = !std::isfinite(sp) ? std::numeric_limits<double>::quiet_NaN()
                         : is_l1(kind)      ? 1.0 / (sp + eps)
                                            : 1.0 / std::sqrt(sp + eps);
    return {T(0), T(0), static_cast<T>(scale)};
  }
  double mean = k.rsum(x, n) / static_cast<double>(n);
  T mhi = static_cast<T>(mean);
  T mlo = static_cast<T>(mean - static_cast<double>(mhi));
  if (sizeof(T) == sizeof(double) && n > 1) {
    // float64: the sum itself has rounding error of order eps * sum|x|; one more pass over the
    // cached slice adds mean(x - mean) back (the corrected two-pass algorithm, Chan et al. 1983).
    const double c = k.rsumdev(x, n, mhi, mlo) / static_cast<double>(n);
    if (c == c) {
      mean += c;
      mhi = static_cast<T>(mean);
      mlo = static_cast<T>(mean - static_cast<double>(mhi));
    }
  }
  auto spread = [&] {  // mean |d| (L1) or the variance (L2), without eps
    return is_l1(kind) ? k.rsumabsdev(x, n, mhi, mlo) / static_cast<double>(n)
                       : k.rsumsqdev(x, n, mhi, mlo) / static_cast<double>(n);
  };
  double sp = spread();
  if (sizeof(T) == sizeof(float) && n > 1) {
    // float32 sums the slice in float within blocks: on a (near-)constant slice the mean's rounding
    // error -mlo is the whole spread, and a constant slice would not give x - mean == 0 (fuzzing
    // found l1_norm(full(1000, 1.514f)) = 0.024, not 0). Only then, correct the mean as above.
    // The block sums' error is below ~64 ulp of the mean, so a spread above 2^-12 |mean| is safe.
    const double level = is_l1(kind) ? sp : std::sqrt(sp);
    if (level <= 0x1p-12 * std::fabs(mean)) {
      const double c = k.rsumdev(x, n, mhi, mlo) / static_cast<double>(n);
      if (c == c) {
        mean += c;
        mhi = static_cast<T>(mean);
        mlo = static_cast<T>(mean - static_cast<double>(mhi));
        // Within 1/64 ulp of a float: the data cannot resolve the rest, and dropping it makes a
        // constant slice give d == 0 exactly (b for eps > 0, NaN for eps == 0, as documented).
        if (std::fabs(static_cast<double>(mlo)) <= 0x1p-30 * std::fabs(static_cast<double>(mhi))) mlo = T(0);
        sp = spread();
      }
    }
  }
  const double scale = is_l1(kind) ? 1.0 / (sp + eps) : 1.0 / std::sqrt(sp + eps);
  return {mhi, mlo, static_cast<T>(scale)};
}

// The reductions sum in T within blocks, so a finite slice can overflow them (|x| near T's max, or
// |x - mean| > ~1.8e19 in float32 for the squares of the L2 spread), and a slice of denormals can
// give a reciprocal spread that overflows T. Such a slice is redone on the exactly scaled copy
// x * 2^-e (max |x * 2^-e| in [0.5, 1)) with eps scaled alike (2^-e for L1, 2^-2e for L2): x_hat is
// unchanged, and the true reciprocal spread is scale * 2^-e. Returns e, or 0 when the stats are fine
// (or the slice holds inf/NaN, whose outputs are NaN as documented).
template <class T, int B>
int rescale_if_needed(const TypedKernels<T>& k, Kind kind, const T*& x, std::int64_t n, double eps, Stats<T>& st,
                      SliceBuf<T, B>& buf) {
  const bool fine = std::isfinite(st.mhi) && st.scale > T(0) && std::isfinite(st.scale);
  if (fine) return 0;
  T big = T(0);
  for (std::int64_t i = 0; i < n; ++i) {
    const T a = std::fabs(x[i]);
    if (!(a <= std::numeric_limits<T>::max())) return 0;  // inf or NaN
    if (a > big) big = a;
  }
  if (big == T(0)) return 0;
  int e;
  std::frexp(big, &e);
  if (e == 0) return 0;
  T* scratch = buf.scratch(n);  // allocated only on this rare path
  for (std::int64_t i = 0; i < n; ++i) scratch[i] = std::ldexp(x[i], -e);
  x = scratch;
  st = slice_stats(k, kind, x, n, std::ldexp(eps, is_l1(kind) ? -e : -2 * e));
  return e;
}

// Slices per chunk of the forward passes: about 16 chunks per thread, so that the chunks handed out
// last are short.
std::int64_t chunk_for(std::int64_t slices, int nt) {
  return std::max<std::int64_t>(1, slices / (std::int64_t{16} * nt));
}

int threads_for(std::int64_t slices, std::int64_t n) {
  const std::int64_t by_work = std::max<std::int64_t>(1, slices * n / kParallelWorkMin);
  return static_cast<int>(std::min<std::int64_t>({num_threads(), by_work, slices}));
}

template <class T>
void forward_typed(const TypedKernels<T>& k, Kind kind, const char* x, const std::int64_t* xst, char* y,
                   const std::int64_t* yst, const std::int64_t* shape, int ndim, int axis, const T* w, const T* b,
                   double eps, bool fresh_output, const Residual* res) {
  const SliceWalker walk{shape, ndim, axis};
  const std::int64_t n = shape[axis], slices = walk.slices();
  if (n == 0 || slices == 0) return;
  const char* r = res ? static_cast<const char*>(res->r) : nullptr;
  char* h = res ? static_cast<char*>(res->h) : nullptr;
  const std::int64_t* const strides[4] = {xst, yst, res ? res->r_strides : xst, res ? res->h_strides : xst};
  const std::int64_t bytes = slices * n * static_cast<std::int64_t>(sizeof(T));
  const bool stream = yst[axis] == static_cast<std::int64_t>(sizeof(T)) && stream_output(bytes, fresh_output);
  // A streamed h is kept for the statistics and the output in a per-thread buffer: a line just
  // written with a non-temporal store has left the cache.
  const bool stream_h =
      res && res->h_strides[axis] == static_cast<std::int64_t>(sizeof(T)) && stream_output(bytes, res->fresh_h);
  const int nt = threads_for(slices, n);
  auto rows = [&](std::int64_t a, std::int64_t e) {
    SliceBuf<T, 4> buf;
    for (std::int64_t s = a; s < e; ++s) {
      std::int64_t off[4];
      walk.at(s, strides, off);
      const T* px = buf.in(x + off[0], xst[axis], n, 0);
      if (res) {
        // h = x + r is formed and written first; the statistics and the output then read h from
        // cache. y (which may alias x or r) is written only after both were read.
        const T* pr = buf.in(r + off[2], strides[2][axis], n, 2);
        if (stream_h) {
          T* ph = buf.own(n, 3);
          k.vadd(px, pr, ph, reinterpret_cast<T*>(h + off[3]), n);
          px = ph;
        } else {
          T* ph = buf.out(h + off[3], strides[3][axis], n, 3);
          k.vadd(px, pr, ph, nullptr, n);
          SliceBuf<T, 4>::scatter(ph, h + off[3], strides[3][axis], n);
          px = ph;
        }
      }
      T* py = buf.out(y + off[1], yst[axis], n, 1);
      Stats<T> st = slice_stats(k, kind, px, n, eps);
      rescale_if_needed(k, kind, px, n, eps, st, buf);
      k.vnormalize(px, py, n, st.mhi, st.mlo, st.scale, w, b, stream);
      SliceBuf<T, 4>::scatter(py, y + off[1], yst[axis], n);
    }
    if (stream || stream_h) store_fence();  // once per chunk: a fence waits for the streamed lines
  };
  const std::int64_t chunk = chunk_for(slices, nt);
  if (fresh_output && nt > 1 && bytes >= 2 * kOutputPageBytes &&
      slices_in_order(shape, yst, ndim, axis, static_cast<std::int64_t>(sizeof(T))))
    return parallel_output_pages(y, slices, n * static_cast<std::int64_t>(sizeof(T)), chunk, nt, rows);
  parallel_chunks(slices, nt, chunk, [&](int, std::int64_t a, std::int64_t e) { rows(a, e); });
}

// dx = scale * (g - mean(g) - mean(g * xhat) * f'), g = dy * w, with f' = xhat (L2) or
// sign(d) - mean(sign(d)) (L1, the derivative of mean|d| with respect to x).
template <class T>
void backward_typed(const TypedKernels<T>& k, Kind kind, const char* dy, const std::int64_t* dyst, const char* x,
                    const std::int64_t* xst, char* dx, const std::int64_t* dxst, const std::int64_t* shape, int ndim,
                    int axis, const T* w, T* dw, T* db, double eps) {
  const SliceWalker walk{shape, ndim, axis};
  const std::int64_t n = shape[axis], slices = walk.slices();
  const bool params = dw != nullptr || db != nullptr;
  if (n == 0) return;
  const int nt = slices == 0 ? 1 : threads_for(slices, n);
  std::vector<std::vector<double>> pdw(params ? nt : 0), pdb(params ? nt : 0);
  const std::int64_t* const strides[3] = {dyst, xst, dxst};
  if (slices > 0)
    parallel_ranges(slices, nt, [&](int t, std::int64_t a, std::int64_t e) {
      if (a == e) return;  // an empty range leaves its partials empty; the merge skips them
      SliceBuf<T, 4> buf;  // one type of buffer for the whole driver (forward uses the fourth)
      if (params) {
        pdw[t].assign(n, 0.0);
        pdb[t].assign(n, 0.0);
      }
      for (std::int64_t s = a; s < e; ++s) {
        std::int64_t off[3];
        walk.at(s, strides, off);
        const T* pdy = buf.in(dy + off[0], dyst[axis], n, 0);
        const T* px = buf.in(x + off[1], xst[axis], n, 1);
        Stats<T> st = slice_stats(k, kind, px, n, eps);
        const int e = rescale_if_needed(k, kind, px, n, eps, st, buf);
        double sums[3];
        k.rbackward(pdy, px, w, n, st.mhi, st.mlo, sums);
        const double inv_n = 1.0 / static_cast<double>(n), sc = st.scale;
        // The uncentred kinds have no mean: neither mean(g) nor mean(sign(d)) enters their dx.
        const double mean_g = centered(kind) ? sums[0] * inv_n : 0.0, mean_gx = sums[1] * sc * inv_n;
        const double mean_sign = centered(kind) ? sums[2] * inv_n : 0.0;
        if (params) k.raccparams(pdy, px, n, st.mhi, st.mlo, st.scale, pdw[t].data(), pdb[t].data());
        T* pdx = buf.out(dx + off[2], dxst[axis], n, 2);
        // p * (g + q + r f(d)): the bracket is formed at the scale of g, then multiplied by the
        // (possibly huge, ~1/eps) reciprocal spread, so nothing cancels after the scaling.
        // On a rescaled slice x_hat and the bracket are unchanged; only the final factor is 2^-e.
        const T outer = static_cast<T>(std::ldexp(sc, -e));
        if (is_l1(kind))
          k.vbackward_l1(pdy, px, w, pdx, n, st.mhi, st.mlo, outer, static_cast<T>(mean_gx * mean_sign - mean_g),
                         static_cast<T>(-mean_gx));
        else
          k.vbackward_l2(pdy, px, w, pdx, n, st.mhi, st.mlo, outer, static_cast<T>(-mean_g),
                         static_cast<T>(-sc * mean_gx));
        SliceBuf<T, 4>::scatter(pdx, dx + off[2], dxst[axis], n);
      }
    });
  if (!params) return;
  for (std::int64_t i = 0; i < n; ++i) {
    double sw = 0.0, sb = 0.0;
    for (std::size_t t = 0; t < pdw.size(); ++t) {
      if (pdw[t].empty()) continue;
      sw += pdw[t][i];
      sb += pdb[t][i];
    }
    if (dw) dw[i] = static_cast<T>(sw);
    if (db) db[i] = static_cast<T>(sb);
  }
}

int bit_length(u128 v) {
  const std::uint64_t hi = high64(v), lo = low64(v);
  if (hi) return 128 - clz64(hi);
  return lo ? 64 - clz64(lo) : 0;
}

// Per-slice constants of the integer path (exact integer arithmetic but one reciprocal):
//   S = sum x, t = floor(S / n), r = S - t n, so x - S/n = u - r/n with u = x - t;
//   T = sum |n x - S| = 2 (n A - S p), A / p = sum / count of the x > t (exactly those with n x > S);
//   y = round(gamma (u - r/n)), gamma = 2^s n^2 / T = num / T, evaluated in int32 as
//   (u G - C + 2^(k-1)) >> k with G = round(gamma 2^k), C = round(gamma 2^k r / n), both from the
//   one reciprocal R = floor(2^97 / T), and u clamped to +-u_max, past which every output saturates.
// Bounds for n <= 2^16, |x| <= 128, s <= 7: |S| <= 2^23, A <= 2^23, n A and S p <= 2^39, T < 2^40;
// gamma <= 2^s n^2 / (2 (n - 1)) <= 2^23; u_max <= 130 / gamma + 2 so gamma (u_max + 1) <= 130 + 3 gamma;
// k is chosen so that gamma (u_max + 1) 2^k < 2^30: every |u G - C| < 2^31 and 1 <= k <= 31.
// Error of (u G - C) / 2^k against gamma (u - r/n) where the output is not saturated (|u| <= u_max):
// (u_max / 2 + 1) / 2^k + O(2^-60) <= (130 / gamma + 4) gamma (u_max + 1) / 2^30 < 0.1, so the
// result is within 1 of the correctly rounded one, and equal to it except within 0.1 of a tie.
// The 256 int8 values in table order (index = the value's byte, as uint8).
struct ByteValues {
  std::int8_t v[256];
  constexpr ByteValues() : v() {
    for (int i = 0; i < 256; ++i) v[i] = static_cast<std::int8_t>(i < 128 ? i : i - 256);
  }
};
constexpr ByteValues kByteValues{};

// Longer slices apply a 256-entry table built with the same kernel instead of the arithmetic.
constexpr std::int64_t kLutMinSlice = 1024;
bool g_int8_lut_enabled = true;

bool lut_available(const Int8Kernels& k8) {
  return k8.vlut != nullptr && cpu_features().avx512vbmi && g_int8_lut_enabled;
}

bool use_lut(const Int8Kernels& k8, std::int64_t n) { return n >= kLutMinSlice && lut_available(k8); }

void int8_slice(const Int8Kernels& k8, const std::int8_t* x, std::int8_t* y, std::int64_t n, int s, bool centered,
                bool stream) {
  const std::int64_t S = k8.rsum(x, n);
  std::int64_t t = 0, r = 0, A = 0, p = 0, T = 0;
  if (centered) {
    t = S / n;
    if (t * n > S) --t;  // floor division
    r = S - t * n;
    k8.rsumabove(x, n, static_cast<std::int32_t>(t), &A, &p);
    T = 2 * (n * A - S * p);
  } else {
    // Not centred: d = n x, T = n sum|x| = n (2 A - S) with A the sum of the x > 0, so gamma =
    // 2^s n / sum|x| and u = x, r = 0 in the formula above. The bounds hold: n sum|x| <= 2^39,
    // gamma <= 2^(s+16) <= 2^23.
    k8.rsumabove(x, n, 0, &A, &p);
    T = n * (2 * A - S);
  }
  if (T == 0) {  // a constant slice (all zeros when not centred): every deviation is 0
    for (std::int64_t i = 0; i < n; ++i) y[i] = 0;
    return;
  }
  const u128 num = static_cast<u128>(n) * static_cast<u128>(n) << s;
  // gamma (u_max - 1) >= 130: floor(130 T / num) >= 130 / gamma - 1 (130 T < 2^48, num < 2^47).
  const std::int64_t u_max = std::min<std::int64_t>(
      256, static_cast<std::int64_t>(static_cast<std::uint64_t>(130 * T) / static_cast<std::uint64_t>(num)) + 2);
  const u128 span = num * static_cast<u128>(u_max + 1);  // gamma (u_max + 1) = span / T
  int k = 29 - bit_length(span) + bit_length(static_cast<u128>(T));
  k = k < 1 ? 1 : (k > 31 ? 31 : k);
  const u128 R = (static_cast<u128>(1) << 97) / static_cast<u128>(T);  // the one reciprocal
  const u128 half = static_cast<u128>(1) << 96;
  const std::int64_t G = static_cast<std::int64_t>(((num << k) * R + half) >> 97);
  const u128 num_r = static_cast<u128>(n) * static_cast<u128>(r) << s;
  const std::int64_t C = static_cast<std::int64_t>(((num_r << k) * R + half) >> 97);
  const std::int64_t c = C - (std::int64_t{1} << (k - 1));
  if (use_lut(k8, n)) {
    alignas(64) std::int8_t lut[256];
    k8.vrequant(kByteValues.v, lut, 256, static_cast<std::int32_t>(t), static_cast<std::int32_t>(u_max),
                static_cast<std::int32_t>(G), static_cast<std::int32_t>(c), k, false);
    k8.vlut(x, y, n, lut, stream);
    return;
  }
  k8.vrequant(x, y, n, static_cast<std::int32_t>(t), static_cast<std::int32_t>(u_max), static_cast<std::int32_t>(G),
              static_cast<std::int32_t>(c), k, stream);
}

}  // namespace

void forward(Dtype dtype, Kind kind, const void* x, const std::int64_t* x_strides, void* y,
             const std::int64_t* y_strides, const std::int64_t* shape, int ndim, int axis, const void* w, const void* b,
             double eps, bool fresh_output, const Residual* residual) {
  const Kernels& k = active_kernels();
  const char* xc = static_cast<const char*>(x);
  char* yc = static_cast<char*>(y);
  if (dtype == Dtype::f32)
    forward_typed<float>(k.f32, kind, xc, x_strides, yc, y_strides, shape, ndim, axis, static_cast<const float*>(w),
                         static_cast<const float*>(b), eps, fresh_output, residual);
  else
    forward_typed<double>(k.f64, kind, xc, x_strides, yc, y_strides, shape, ndim, axis, static_cast<const double*>(w),
                          static_cast<const double*>(b), eps, fresh_output, residual);
}

void backward(Dtype dtype, Kind kind, const void* dy, const std::int64_t* dy_strides, const void* x,
              const std::int64_t* x_strides, void* dx, const std::int64_t* dx_strides, const std::int64_t* shape,
              int ndim, int axis, const void* w, void* dw, void* db, double eps) {
  const Kernels& k = active_kernels();
  const char* dyc = static_cast<const char*>(dy);
  const char* xc = static_cast<const char*>(x);
  char* dxc = static_cast<char*>(dx);
  if (dtype == Dtype::f32)
    backward_typed<float>(k.f32, kind, dyc, dy_strides, xc, x_strides, dxc, dx_strides, shape, ndim, axis,
                          static_cast<const float*>(w), static_cast<float*>(dw), static_cast<float*>(db), eps);
  else
    backward_typed<double>(k.f64, kind, dyc, dy_strides, xc, x_strides, dxc, dx_strides, shape, ndim, axis,
                           static_cast<const double*>(w), static_cast<double*>(dw), static_cast<double*>(db), eps);
}

bool int8_lut_active() { return lut_available(active_kernels().i8); }

bool set_int8_lut(bool enabled) {
  const bool old = g_int8_lut_enabled;
  g_int8_lut_enabled = enabled;
  return old;
}

void forward_int8(const std::int8_t* x, const std::int64_t* x_strides, std::int8_t* y, const std::int64_t* y_strides,
                  const std::int64_t* shape, int ndim, int axis, int out_shift, bool centered) {
  const Int8Kernels& k8 = active_kernels().i8;
  const SliceWalker walk{shape, ndim, axis};
  const std::int64_t n = shape[axis], slices = walk.slices();
  if (n == 0 || slices == 0) return;
  const std::int64_t* const strides[2] = {x_strides, y_strides};
  const char* xc = reinterpret_cast<const char*>(x);
  char* yc = reinterpret_cast<char*>(y);
  const bool stream = y_strides[axis] == 1 && slices * n >= kStreamMinBytes;
  const int nt = threads_for(slices, n);
  parallel_chunks(slices, nt, chunk_for(slices, nt), [&](int, std::int64_t a, std::int64_t e) {
    SliceBuf<std::int8_t> buf;
    for (std::int64_t s = a; s < e; ++s) {
      std::int64_t off[2];
      walk.at(s, strides, off);
      const std::int8_t* px = buf.in(xc + off[0], x_strides[axis], n, 0);
      std::int8_t* py = buf.out(yc + off[1], y_strides[axis], n, 1);
      int8_slice(k8, px, py, n, out_shift, centered, stream);
      SliceBuf<std::int8_t>::scatter(py, yc + off[1], y_strides[axis], n);
    }
    if (stream) store_fence();
  });
}

}  // namespace numkern::norm
