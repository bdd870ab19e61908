// The sketch family: fast Walsh-Hadamard transform, sketch operators and the row-block passes of the
// preconditioned least-squares solver.
//
// Kernels work on cache-resident tiles; the driver (sketch.cpp) plans the memory passes, gathers
// tiles, threads and fixes every summation order so results do not depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace numkern::sketch {

template <class T>
struct TypedKernels {
  // All log2(R) butterfly stages along axis 0 of an R x w tile (row stride ld elements), R a power
  // of two, w arbitrary: x[r] <- sum_r' (-1)^popcount(r & r') x[r'], column by column.
  void (*fwht_tile)(T* x, std::size_t R, std::size_t w, std::size_t ld);
  // The Walsh-Hadamard transform of length `lanes` on each of nvec consecutive vectors.
  void (*fwht_inner)(T* x, std::size_t nvec);
  // fwht_inner on the R vectors of an R x lanes contiguous tile, then fwht_tile on it.
  void (*fwht_tile_vec)(T* x, std::size_t R);
  // x[r, c] *= s on an R x w tile.
  void (*scale_tile)(T* x, std::size_t R, std::size_t w, std::size_t ld, T s);
  // y[i, :w] +/-= buf[rows[i], :w] for i < cnt, subtracting where neg[i] != 0.
  void (*signed_accum)(T* y, std::size_t ldy, const T* buf, std::size_t ldb, const std::uint32_t* rows,
                       const std::uint8_t* neg, std::size_t cnt, std::size_t w);
  // y[r, :w] += sum_{j < nrows} g[r * ldg + j] * a[j, :w] for r < mi (mi <= 4), j in ascending order.
  void (*gauss_accum)(T* y, std::size_t ldy, const T* a, std::size_t lda, std::size_t nrows, std::size_t w,
                      const float* g, std::size_t ldg, std::size_t mi);
  // For each of `rows` rows: t = dot(a_i, u) - (b ? b_i : 0); if g, g += t * a_i; if t_out, t_out[i] = t.
  // Returns sum t^2 (in double).
  double (*row_residual)(const T* a, std::size_t rows, std::size_t d, std::size_t lda, const T* u, const T* b, T* g,
                         T* t_out);
  // row_residual on `rows` CSR rows: row i holds val[k] at column ind[k] for ptr[i] <= k < ptr[i + 1]
  // (ptr indexes ind and val directly). Each dot product is summed in ascending k.
  double (*csr_row_residual)(const std::int64_t* ptr, const std::int32_t* ind, const T* val, std::size_t rows,
                             const T* u, const T* b, T* g, T* t_out);
  // The columns [c0, c1) of a sparse sign sketch of `rows` CSR rows (ptr, ind, val as above, column
  // indices ascending within a row): y[idx[i, t], c] += (neg[i, t] ? -scale : scale) * a_ic for every
  // stored a_ic, rows in ascending order, so each output sums its terms in ascending row order
  // whatever [c0, c1).
  void (*csr_sketch_strip)(T* y, std::size_t ldy, const std::int64_t* ptr, const std::int32_t* ind, const T* val,
                           std::size_t rows, std::int32_t c0, std::int32_t c1, const std::int64_t* idx,
                           const std::uint8_t* neg, T scale, std::size_t s);
  // The rows of a dense tile under a sparse sign sketch: y[idx[j, t], :w] += v * a[j, :w] with
  // v = neg[j, t] ? -scale : scale, for j < rows in ascending order and t < s (a product and a sum,
  // two roundings, as the scalar level does).
  void (*sparse_rows)(T* y, std::size_t ldy, const T* a, std::size_t lda, std::size_t rows, std::size_t w,
                      const std::int64_t* idx, const std::uint8_t* neg, T scale, std::size_t s);
};

struct Kernels {
  const char* isa;
  std::size_t lanes_f32, lanes_f64;  // vector width of fwht_inner
  TypedKernels<float> f32;
  TypedKernels<double> f64;
  // out[t] = standard normal number of the counter (row_key, j0 + t), t < cnt: a keyed 32-bit hash
  // turned into a uniform and mapped through Giles' single-precision inverse error function.
  void (*gauss_fill)(float* out, std::size_t cnt, std::uint32_t row_key, std::uint32_t key2, std::uint32_t j0);
  // One row block of a least-squares refinement step (Bjorck's refinement of the augmented system
  // [I A; A^T 0][r; x] = [b; 0]): f_i = b_i - r_i - dot(a_i, x), accurate as if computed in twice
  // the working precision and rounded once (Ogita, Rump & Oishi's Dot2, via TwoProd and TwoSum);
  // per column, the double-double sum (sr_hi, sr_lo) += a_ij r_i and sf += a_ij f_i. With init_r,
  // r_i is first set to b_i - dot(a_i, x) rounded once (so f_i is its rounding error).
  void (*ls_refine_rows)(const double* a, std::size_t rows, std::size_t d, std::size_t lda, const double* x, double* r,
                         bool init_r, const double* b, double* f, double* sr_hi, double* sr_lo, double* sf);
  // ls_refine_rows on `rows` CSR rows (ptr, ind, val as in csr_row_residual; column indices distinct
  // within a row): the same quantities, each dot product summed in ascending k.
  void (*csr_ls_refine_rows)(const std::int64_t* ptr, const std::int32_t* ind, const double* val, std::size_t rows,
                             const double* x, double* r, bool init_r, const double* b, double* f, double* sr_hi,
                             double* sr_lo, double* sf);
  // The float64 row passes on a float32-stored A (entries converted exactly, all arithmetic and
  // accumulation in float64): f64.row_residual, ls_refine_rows and their CSR forms.
  double (*row_residual_f32a)(const float* a, std::size_t rows, std::size_t d, std::size_t lda, const double* u,
                              const double* b, double* g, double* t_out);
  void (*ls_refine_rows_f32a)(const float* a, std::size_t rows, std::size_t d, std::size_t lda, const double* x,
                              double* r, bool init_r, const double* b, double* f, double* sr_hi, double* sr_lo,
                              double* sf);
  double (*csr_row_residual_f32a)(const std::int64_t* ptr, const std::int32_t* ind, const float* val, std::size_t rows,
                                  const double* u, const double* b, double* g, double* t_out);
  void (*csr_ls_refine_rows_f32a)(const std::int64_t* ptr, const std::int32_t* ind, const float* val, std::size_t rows,
                                  const double* x, double* r, bool init_r, const double* b, double* f, double* sr_hi,
                                  double* sr_lo, double* sf);
  void (*csr_sketch_strip_f32a)(double* y, std::size_t ldy, const std::int64_t* ptr, const std::int32_t* ind,
                                const float* val, std::size_t rows, std::int32_t c0, std::int32_t c1,
                                const std::int64_t* idx, const std::uint8_t* neg, double scale, std::size_t s);
};

extern const Kernels kernels_scalar;
extern const Kernels kernels_avx2;
extern const Kernels kernels_avx512;
extern const Kernels kernels_neon;  // AArch64 builds only

const Kernels& active_kernels();

// Walsh-Hadamard transform along axis 0 of a C-contiguous (n, d) array in place, n a power of two;
// the result is multiplied by `scale`.
void fwht_cols(Dtype dt, void* x, std::int64_t n, std::int64_t d, double scale);
// Walsh-Hadamard transform of each row of a C-contiguous (rows, n) array in place.
void fwht_rows(Dtype dt, void* x, std::int64_t rows, std::int64_t n, double scale);

// Subsampled randomized Hadamard transform of a C-contiguous (n, d) array into (m, d) `y`:
// y[i] = scale * sum_{j < n} H_N[rows[i], j] * sign_j * a[perm[j]], with H_N of size N = 2^k >= n
// (positions >= n are zero padding). `neg[j]` != 0 means sign_j = -1.
void srht_apply(Dtype dt, const void* a, std::int64_t n, std::int64_t d, std::int64_t N, const std::int64_t* perm,
                const std::uint8_t* neg, const std::uint32_t* rows, std::int64_t m, double scale, void* y);

// y (m, d) = scale * G a, G[i, j] the normal number of counter (hash(i, key), row0 + j); G never
// stored. a's rows are summed in tiles of gaussian_tile_rows rows (from row 0 of a), tiles in the
// dyadic tree over tile indices, so a row block starting at a multiple of the tile size gives
// partial sums that merge into exactly the whole-array result (numkern.dask).
constexpr std::int64_t gaussian_tile_rows = 4096;
void gaussian_apply(Dtype dt, const void* a, std::int64_t n, std::int64_t d, std::int64_t m, std::uint64_t key,
                    double scale, void* y, std::uint64_t row0 = 0);
// The same sketch of [a b] without forming it: y (m, d + k) = scale * G [a b], a (n, d) and b (n, k)
// both C-contiguous, G generated once for both. Bit-identical to gaussian_apply on [a b] (with the same
// row0: the rows of a and b are rows row0.. of the global array).
void gaussian_apply_pair(Dtype dt, const void* a, std::int64_t d, const void* b, std::int64_t k, std::int64_t n,
                         std::int64_t m, std::uint64_t key, double scale, void* y, std::uint64_t row0 = 0);
// Rows [i0, i0 + cnt) of G for columns [j0, j0 + len) into out (cnt, len), float32 (for tests).
void gaussian_rows(std::int64_t i0, std::int64_t cnt, std::int64_t j0, std::int64_t len, std::uint64_t key, float* out);

// The transposed sketches, float64 (scipy's LinearOperator rmatvec/rmatmat): out (n, k) = S^T v for
// a C-contiguous v (m, k), S as in srht_apply, gaussian_apply and sparse_apply with the same
// arguments, never formed. Every output element is summed in an order fixed by its index, so the
// result does not depend on the thread count. srht_transpose needs perm to be a permutation of
// [0, n) (each output row is written once).
void srht_transpose(const double* v, std::int64_t m, std::int64_t k, std::int64_t N, const std::int64_t* perm,
                    const std::uint8_t* neg, const std::uint32_t* rows, std::int64_t n, double scale, double* out);
void gaussian_transpose(const double* v, std::int64_t m, std::int64_t k, std::uint64_t key, std::int64_t n,
                        double scale, double* out);
void sparse_transpose(const double* v, std::int64_t m, std::int64_t k, const std::int64_t* idx, const std::uint8_t* neg,
                      std::int64_t s, std::int64_t n, double scale, double* out);

// y (m, d) = sum_j sum_t v[j, t] * e_{idx[j, t]} a[j]^T with v[j, t] = neg[j, t] ? -scale : scale (scale
// rounded to a's dtype): a sparse sign sketch with s nonzeros per column. The nonzeros are never
// stored: a byte per sign, not a value of a's dtype, is read per nonzero.
void sparse_apply(Dtype dt, const void* a, std::int64_t n, std::int64_t d, const std::int64_t* idx,
                  const std::uint8_t* neg, double scale, std::int64_t s, std::int64_t m, void* y);

// One pass over a C-contiguous (n, d) array: t = a u - b (b may be null); g = a^T t if g is not null;
// t written to t_out if not null. Returns ||t||^2. Summation order is fixed (row chunks of constant
// size, merged in order), so the result does not depend on the thread count.
double row_residual(Dtype dt, const void* a, std::int64_t n, std::int64_t d, const void* u, const void* b, void* g,
                    void* t_out);
// row_residual on a float32 (n, d) array with float64 u, b, g, t_out: every product and sum in float64.
double row_residual_f32a(const float* a, std::int64_t n, std::int64_t d, const double* u, const double* b, double* g,
                         double* t_out);
// ls_refine_residual on a float32-stored a (its entries exactly, in float64 and double-double).
void ls_refine_residual_f32a(const float* a, std::int64_t n, std::int64_t d, const double* x, double* r, bool init_r,
                             const double* b, double* f, double* h);

// One pass over a C-contiguous float64 (n, d) array for a refinement step of least squares:
// f = b - r - a x with every entry as accurate as in twice the working precision (rounded once), and
// h = a^T f + a^T r with a^T r summed in double-double. Summation order fixed as in row_residual.
// With init_r, r is an output: b - a x rounded once (first step of a refinement).
void ls_refine_residual(const double* a, std::int64_t n, std::int64_t d, const double* x, double* r, bool init_r,
                        const double* b, double* f, double* h);
// The same pass split in two for callers that hold the rows in pieces (numkern.dask): the per-chunk
// partials (ls_refine_chunks(n) chunks of kResidualChunk rows; per chunk sr_hi, sr_lo, sf, d each),
// then their merge in chunk order. Pieces cut at multiples of the chunk size and merged in row order
// give h bit-identical to ls_refine_residual on the whole array.
std::int64_t ls_refine_chunks(std::int64_t n);
void ls_refine_partials(const double* a, std::int64_t n, std::int64_t d, const double* x, double* r, bool init_r,
                        const double* b, double* f, double* parts);
void ls_refine_merge(const double* parts, std::int64_t nch, std::int64_t d, double* h);

// Columns j0 .. j0 + count of a sparse sign sketch with s nonzeros per column among m rows: for
// column j, s distinct rows idx[j - j0, t] and signs neg[j - j0, t] (1 = negative) from splitmix64 at
// counter (j << 24) + (attempt << 8) + t of the stream `key`, a column whose rows collide redrawn
// whole with the next attempt; rows by Lemire's multiply-shift of the hash's top 32 bits. Needs
// 1 <= s <= m < 2^32 and j0 + count <= 2^32. Threaded; each column depends on (key, j) only.
void sparse_sign_draw(std::uint64_t key, std::int64_t j0, std::int64_t count, std::int64_t m, std::int64_t s,
                      std::int64_t* idx, std::uint8_t* neg);

// A uniformly random permutation of [0, n) into out, a function of (key, n, buckets) only
// (Rao-Sandelius): each element goes, in order, to one of `buckets` buckets chosen by splitmix64 of
// (key, element), and each bucket is then shuffled by Fisher-Yates from its own splitmix64 stream
// with exactly uniform bounded draws (Lemire's method with rejection). Uniform, independent bucket
// choices followed by uniform shuffles give a uniform permutation; the buckets fit in cache, so
// the shuffle makes no random accesses to memory. Needs n < 2^32 and 1 <= buckets <= 2^16. Threaded.
void random_permutation(std::uint64_t key, std::int64_t n, std::int64_t buckets, std::int64_t* out);

// ---- CSR (compressed sparse row) operands: indptr (n + 1) int64, indices (nnz) int32, data (nnz) ----

// Whether (ptr, ind) is a canonical CSR structure of an n x d matrix with nnz stored entries:
// ptr[0] == 0, ptr nondecreasing, ptr[n] == nnz, and column indices in [0, d), strictly increasing
// within each row. O(n + nnz), threaded; the kernels below rely on it.
bool csr_valid(const std::int64_t* ptr, const std::int32_t* ind, std::int64_t n, std::int64_t d, std::int64_t nnz);

// row_residual for a CSR matrix (same chunks and merge order, so thread-count independent).
double csr_row_residual(Dtype dt, const std::int64_t* ptr, const std::int32_t* ind, const void* val, std::int64_t n,
                        std::int64_t d, const void* u, const void* b, void* g, void* t_out);
// ls_refine_residual for a CSR matrix with float64 or float32 entries (vectors float64).
void csr_ls_refine_residual(Dtype dt, const std::int64_t* ptr, const std::int32_t* ind, const void* val, std::int64_t n,
                            std::int64_t d, const double* x, double* r, bool init_r, const double* b, double* f,
                            double* h);
// csr_row_residual on float32 entries with float64 vectors (all arithmetic in float64).
double csr_row_residual_f32a(const std::int64_t* ptr, const std::int32_t* ind, const float* val, std::int64_t n,
                             std::int64_t d, const double* u, const double* b, double* g, double* t_out);
// y (m, d) = S a for a sparse sign sketch (idx, neg, scale as in sparse_apply) and a CSR matrix a (n, d), in
// O(nnz s) multiply-adds: column strips of y run in parallel, each walking the rows in order, so every
// output is summed in ascending row order at any thread count.
void csr_sketch_apply(Dtype dt, const std::int64_t* ptr, const std::int32_t* ind, const void* val, std::int64_t n,
                      std::int64_t d, const std::int64_t* idx, const std::uint8_t* neg, double scale, std::int64_t s,
                      std::int64_t m, void* y);
// The same sketch in float64 of float32 entries (scale and y float64; each entry converted exactly).
void csr_sketch_apply_f32a(const std::int64_t* ptr, const std::int32_t* ind, const float* val, std::int64_t n,
                           std::int64_t d, const std::int64_t* idx, const std::uint8_t* neg, double scale,
                           std::int64_t s, std::int64_t m, double* y);

}  // namespace numkern::sketch
