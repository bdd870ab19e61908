// The dp family: exact pairwise similarity sums (the non-private baseline and building block of
// numkern.kernel_sum / numkern.distance_sum) and the random-feature kernels beneath
// numkern.dp.KernelDensity. The per-ISA tables hold micro-kernels over packed, contiguous float64
// blocks; the driver (dp.cpp) packs, blocks over X and Y, and threads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace numkern::dp {

// What pair_sum accumulates for one pair (x, y), s = ||x - y||_2^2 and a = ||x - y||_1:
// gaussian exp(-s * p), laplacian exp(-sqrt(s) * p), cauchy 1 / (1 + s * p), l1 a, l2 sqrt(s),
// sqeuclidean s. p is 1/h^2 (gaussian, cauchy) or 1/h (laplacian).
enum Kind : int { gaussian = 0, laplacian = 1, cauchy = 2, l1 = 3, l2 = 4, sqeuclidean = 5 };

struct Kernels {
  const char* isa;
  // Queries per packed group: the driver packs Y as groups of y_group queries, coordinate-major
  // (Yp[k * y_group + t] = y_t[k]), zero-padded past the last query.
  std::size_t y_group;
  // out[t] += sum_{i < nx} w_i * f(x_i, y_t) for the y_group queries of one packed group. X is
  // row-major with d columns; w may be null (all ones).
  void (*pair_sum)(const double* X, std::size_t nx, std::size_t d, const double* w, const double* Yp, int kind,
                   double p, double* out);
  // acc[j] += sum_{i < nx} round(scale * clamp(cos(x_i . W[:, j] + b[j]), -1, 1)) for j < m, exactly in int64
  // (two's complement). Wt is d x m with row stride ldw, m a multiple of 32, scale a power of two <= 2^40.
  void (*rff_sum)(const double* X, std::size_t nx, std::size_t d, const double* Wt, std::size_t ldw, const double* b,
                  std::size_t m, double scale, std::int64_t* acc);
  // out[i * ldo + j] = cos(y_i . W[:, j] + b[j]) for j < m; m a multiple of 32.
  void (*rff_features)(const double* Y, std::size_t ny, std::size_t d, const double* Wt, std::size_t ldw,
                       const double* b, std::size_t m, double* out, std::size_t ldo);
  // The ChaCha20 key stream of nblocks consecutive blocks (dp_chacha.inl: state layout, 64-bit counter
  // in words 12-13); out holds 16 * nblocks words.
  void (*chacha20)(const std::uint32_t* state, std::size_t nblocks, std::uint32_t* out);
};

extern const Kernels kernels_scalar;
extern const Kernels kernels_avx2;
extern const Kernels kernels_avx512;
extern const Kernels kernels_neon;  // AArch64 builds only

const Kernels& active_kernels();

// out[j] = sum_i w_i f(x_i, y_j) (j < ny). X (nx x d) and Y (ny x d) are contiguous float64.
void pair_sum(const double* X, std::int64_t nx, const double* Y, std::int64_t ny, std::int64_t d, const double* w,
              int kind, double p, double* out);
// The drivers take the frequencies packed in blocks of kBlock features: block q is the contiguous
// d x kBlock matrix Wt[q][k][t] = W[k, q * kBlock + t]; m is a multiple of kBlock (and of every
// ISA's tile, which the per-ISA kernels see as a d x kBlock matrix with row stride kBlock).
constexpr std::int64_t kBlock = 32;

// acc[j] = sum_i round(scale * cos(x_i . W[:, j] + b[j])) in int64; m a multiple of 32.
void rff_sum(const double* X, std::int64_t nx, std::int64_t d, const double* Wt, const double* b, std::int64_t m,
             double scale, std::int64_t* acc);
void rff_features(const double* Y, std::int64_t ny, std::int64_t d, const double* Wt, const double* b, std::int64_t m,
                  double* out);

// l1 structure support (driver only, scalar): per-coordinate cell counts of the records, cell
// t = clamp(floor((x - lo_k) * inv_width_k), 0, L - 1), counts is d x L, zeroed here.
void l1_histogram(const double* X, std::int64_t n, std::int64_t d, const double* lo, const double* inv_width,
                  std::int64_t L, std::int64_t* counts);
// out[i] = sum_k (2 * area_k(y_ik) + N_k * (|y_ik - c| - c)) + cst with c = clip(y_ik, lo_k, hi_k) and
// area = I_j + w f (P_j + f dP_j / 2) from table[(k * L + j) * 3 + {0, 1, 2}] = {P_j, dP_j, I_j}.
void l1_query(const double* table, const double* lo, const double* hi, const double* width, const double* inv_width,
              const double* N, std::int64_t d, std::int64_t L, double cst, const double* Y, std::int64_t q,
              double* out);

// --- Noise (dp_noise.cpp): exact discrete Laplace and discrete Gaussian samples from ChaCha20 ---------
//
// A key (8 words) selects a family of independent streams: the samples of chunk c (kNoiseChunk
// consecutive outputs) come from the ChaCha20 stream with id c, so every output depends on the key and
// its index only (never on the thread count). Samplers (Canonne, Kamath & Steinke 2020, Algorithms 1-3)
// use exact integer arithmetic: pmf proportional to exp(-|z| / t) for the Laplace (integer t), to
// exp(-z^2 / (2 S)) for the Gaussian (integer variance parameter S).
enum Mechanism : int { noise_laplace = 0, noise_gaussian = 1 };
constexpr std::int64_t kNoiseChunk = 4096;
constexpr std::uint64_t kMaxLaplaceScale = std::uint64_t{1} << 52;
constexpr std::uint64_t kMaxGaussianVariance = std::uint64_t{1} << 56;

// The key stream through the active ISA's kernel.
void chacha20(const std::uint32_t* state, std::int64_t nblocks, std::uint32_t* out);
// out[i] = an independent sample, i < n (param: t for laplace, S for gaussian; 1 <= param <= the max).
void noise_samples(const std::uint32_t* key, int mechanism, std::uint64_t param, std::int64_t n, std::int64_t* out);
// out[i] = (rint(x[i] * 2^-e) + z_i) * 2^e with z_i = noise_samples(...)[i], for contiguous x of n values.
// Returns 0, or 1 if some x[i] is not finite, or 2 if some |x[i] * 2^-e| >= 2^62 (out is then partial).
// -1000 <= e <= 1000.
int add_noise(const double* x, std::int64_t n, int e, const std::uint32_t* key, int mechanism, std::uint64_t param,
              double* out);
int add_noise(const float* x, std::int64_t n, int e, const std::uint32_t* key, int mechanism, std::uint64_t param,
              float* out);

}  // namespace numkern::dp
