// Packing of the NEON GEMM levels, included INSIDE the anonymous namespace of each quant_neon*.cpp
// after the unit defines MR, NR (rows / columns of a micro-tile), KU (the K step of one pass of the
// micro-kernel: 2, 4 for sdot quads, 8 for smmla octets), KQ (the run of consecutive K one row of A
// or column of B contributes to a register: 1 for smlal by lane, 4 for sdot, 8 for smmla) and GROUP
// (how many consecutive rows, or columns, sit side by side per run: 1, 1 and 2 for smmla's 2 x 8).
//
// Layout of both panels: [k / KQ][panel width / GROUP][GROUP][KQ] bytes, k zero padded to a
// multiple of KU and rows (columns) past m (n) zero, so padding adds nothing to any dot product.
// Plain byte loops: packing is O(MK + KN) against the kernel's O(MNK), and the same code serves
// every NEON level.

template <int W>
inline void pack_panel(const std::int8_t* src, std::int64_t row_step, std::int64_t col_step, std::int64_t width,
                       std::int64_t k, std::int8_t* out) {
  const std::int64_t kpad = (k + KU - 1) / KU * KU;
  for (std::int64_t p0 = 0; p0 < kpad; p0 += KQ)
    for (int g = 0; g < W; g += GROUP)
      for (int e = 0; e < GROUP; ++e)
        for (int u = 0; u < KQ; ++u) {
          const std::int64_t p = p0 + u, w = g + e;
          *out++ = (p < k && w < width) ? src[w * row_step + p * col_step] : std::int8_t{0};
        }
}

void pack_a(const std::int8_t* a, std::int64_t lda, std::int64_t m, std::int64_t k, void* out) {
  pack_panel<MR>(a, lda, 1, m, k, static_cast<std::int8_t*>(out));
}

void pack_b(const std::int8_t* b, std::int64_t ldb, std::int64_t n, std::int64_t k, void* out, std::int64_t stride) {
  for (std::int64_t j0 = 0; j0 < n; j0 += NR)
    pack_panel<NR>(b + j0, 1, ldb, n - j0, k, static_cast<std::int8_t*>(out) + (j0 / NR) * stride);
}
