// Portable dp kernels (the baseline of any target): one lane, libm's exp/cos/sqrt through __builtin_*.
//
// It does not instantiate the vector kernels (dp_kernels.inl) over the layer's one-lane F64/I64:
// those compute exp and cos with their own polynomials and FMA range reductions (the one-lane layer
// has neither FMA nor the same reduction) and sum two rows per step, so this level's results would
// change; it keeps libm's exp/cos and the row-by-row sums. The levels agree to rounding, not bit for bit.
#include <cstddef>
#include <cstdint>

#include "common/simd_scalar.h"
#include "dp/dp.h"

namespace numkern::dp {
namespace {

constexpr std::size_t G = 4;

template <int K>
double finish(double s, double p) {
  if constexpr (K == gaussian) return __builtin_exp(-s * p);
  if constexpr (K == laplacian) return __builtin_exp(-__builtin_sqrt(s) * p);
  if constexpr (K == cauchy) return 1.0 / (1.0 + s * p);
  if constexpr (K == l2) return __builtin_sqrt(s);
  return s;
}

template <int K>
void pair_sum_k(const double* X, std::size_t nx, std::size_t d, const double* w, const double* Yp, double p,
                double* out) {
  double s[G] = {0, 0, 0, 0};
  for (std::size_t i = 0; i < nx; ++i) {
    const double* x = X + i * d;
    double a[G] = {0, 0, 0, 0};
    for (std::size_t k = 0; k < d; ++k)
      for (std::size_t t = 0; t < G; ++t) {
        const double diff = x[k] - Yp[k * G + t];
        a[t] += K == l1 ? __builtin_fabs(diff) : diff * diff;
      }
    const double wi = w ? w[i] : 1.0;
    for (std::size_t t = 0; t < G; ++t) s[t] += finish<K>(a[t], p) * wi;
  }
  for (std::size_t t = 0; t < G; ++t) out[t] += s[t];
}

void pair_sum(const double* X, std::size_t nx, std::size_t d, const double* w, const double* Yp, int kind, double p,
              double* out) {
  switch (kind) {
    case gaussian:
      return pair_sum_k<gaussian>(X, nx, d, w, Yp, p, out);
    case laplacian:
      return pair_sum_k<laplacian>(X, nx, d, w, Yp, p, out);
    case cauchy:
      return pair_sum_k<cauchy>(X, nx, d, w, Yp, p, out);
    case l1:
      return pair_sum_k<l1>(X, nx, d, w, Yp, p, out);
    case l2:
      return pair_sum_k<l2>(X, nx, d, w, Yp, p, out);
    default:
      return pair_sum_k<sqeuclidean>(X, nx, d, w, Yp, p, out);
  }
}

double project(const double* x, std::size_t d, const double* Wt, std::size_t ldw, const double* b, std::size_t j) {
  double a = b[j];
  for (std::size_t k = 0; k < d; ++k) a += x[k] * Wt[k * ldw + j];
  return a;
}

// round(scale * clamp(c, -1, 1)) exactly: c * scale is exact (scale is a power of two <= 2^40) and
// round_to_i64 rounds it to an integer.
std::int64_t fixed(double c, double scale) {
  c = c < -1.0 ? -1.0 : (c > 1.0 ? 1.0 : c);
  return simd::round_to_i64(c * scale);
}

void rff_sum(const double* X, std::size_t nx, std::size_t d, const double* Wt, std::size_t ldw, const double* b,
             std::size_t m, double scale, std::int64_t* acc) {
  for (std::size_t i = 0; i < nx; ++i)
    for (std::size_t j = 0; j < m; ++j)
      acc[j] = static_cast<std::int64_t>(
          static_cast<std::uint64_t>(acc[j]) +
          static_cast<std::uint64_t>(fixed(__builtin_cos(project(X + i * d, d, Wt, ldw, b, j)), scale)));
}

void rff_features(const double* Y, std::size_t ny, std::size_t d, const double* Wt, std::size_t ldw, const double* b,
                  std::size_t m, double* out, std::size_t ldo) {
  for (std::size_t i = 0; i < ny; ++i)
    for (std::size_t j = 0; j < m; ++j) out[i * ldo + j] = __builtin_cos(project(Y + i * d, d, Wt, ldw, b, j));
}

#include "dp/dp_chacha.inl"

}  // namespace

const Kernels kernels_scalar = {"scalar", G, &pair_sum, &rff_sum, &rff_features, &ChaCha<simd::I32>::blocks};

}  // namespace numkern::dp
