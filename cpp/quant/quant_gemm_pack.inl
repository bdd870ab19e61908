// Shared by the SIMD GEMM TUs, included INSIDE their anonymous namespace: SSE2-level helpers that
// gather a K-run of up to 16 columns of B (rows of a row-major matrix), zero padded. They hand
// 128-bit registers of 16 int8 lanes to the byte unpacks of the packing routines: byte-lane work
// the SIMD ops layer deliberately does not wrap, so these are raw SSE2 intrinsics.

// Copies rows [0, rows) x columns [0, n) of b (row stride ldb) into a dense zeroed tile of
// 4 x 16 bytes; used for the ragged edges only.
static void gather_tile(const std::int8_t* b, std::int64_t ldb, std::int64_t rows, std::int64_t n,
                        std::int8_t (&tile)[4][16]) {
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < 16; ++j) tile[r][j] = (r < rows && j < n) ? b[r * ldb + j] : std::int8_t{0};
}

// Loads rows r0..r(R-1) (R <= 4) of 16 columns starting at column j0 of a K-run of B, full or ragged.
template <int R>
static void load_rows(const std::int8_t* b, std::int64_t ldb, std::int64_t k0, std::int64_t k, std::int64_t j0,
                      std::int64_t n, __m128i (&v)[R]) {
  const std::int64_t rows = k - k0, cols = n - j0;
  if (rows >= R && cols >= 16) {
    for (int r = 0; r < R; ++r) v[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + (k0 + r) * ldb + j0));
    return;
  }
  std::int8_t tile[4][16];
  gather_tile(b + k0 * ldb + j0, ldb, rows < 0 ? 0 : rows, cols < 0 ? 0 : cols, tile);
  for (int r = 0; r < R; ++r) v[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tile[r]));
}
