// Sketch kernels written once over the SIMD ops layer (common/simd_<isa>.h); #included inside an
// anonymous namespace of each ISA translation unit, so every instance has internal linkage and its
// TU's instruction set.
//
// F is a float ops type (simd::F32 or simd::F64); the normal-number generator also takes the 32-bit
// integer ops type I (simd::I32) of the same width. See common/simd_scalar.h for what each op does.

template <class F>
struct Full {
  using Vec = typename F::V;
  static Vec ld(const typename F::T* p, std::size_t) { return F::load(p); }
  static void st(typename F::T* p, Vec v, std::size_t) { F::store(p, v); }
};

template <class F>
struct Part {
  using Vec = typename F::V;
  static Vec ld(const typename F::T* p, std::size_t k) { return F::loadn(p, k); }
  static void st(typename F::T* p, Vec v, std::size_t k) { F::storen(p, v, k); }
};

// Rows of A in their stored type TA: F's own type, or float under F64 (float32-stored A, computed in
// float64; the conversion is exact). A partial load goes through a zero-padded buffer.
template <class F, class TA>
inline typename F::V load_a(const TA* p) {
  if constexpr (std::is_same_v<TA, typename F::T>) {
    return F::load(p);
  } else {
    return F::load_f32(p);
  }
}
template <class F, class TA>
inline typename F::V loadn_a(const TA* p, std::size_t k) {
  if constexpr (std::is_same_v<TA, typename F::T>) {
    return F::loadn(p, k);
  } else {
    float tmp[F::L] = {};
    for (std::size_t i = 0; i < k; ++i) tmp[i] = p[i];
    return F::load_f32(tmp);
  }
}

// Three stages (h, 2h, 4h) on rows p, p + h*ld, ..., p + 7h*ld, columns [c, c + k).
template <class F, class M>
inline void radix8(typename F::T* p, std::size_t s, std::size_t c, std::size_t k) {
  using Vec = typename F::V;
  Vec x0 = M::ld(p + c, k), x1 = M::ld(p + s + c, k), x2 = M::ld(p + 2 * s + c, k), x3 = M::ld(p + 3 * s + c, k);
  Vec x4 = M::ld(p + 4 * s + c, k), x5 = M::ld(p + 5 * s + c, k), x6 = M::ld(p + 6 * s + c, k),
      x7 = M::ld(p + 7 * s + c, k);
  Vec a0 = F::add(x0, x1), a1 = F::sub(x0, x1), a2 = F::add(x2, x3), a3 = F::sub(x2, x3);
  Vec a4 = F::add(x4, x5), a5 = F::sub(x4, x5), a6 = F::add(x6, x7), a7 = F::sub(x6, x7);
  Vec b0 = F::add(a0, a2), b2 = F::sub(a0, a2), b1 = F::add(a1, a3), b3 = F::sub(a1, a3);
  Vec b4 = F::add(a4, a6), b6 = F::sub(a4, a6), b5 = F::add(a5, a7), b7 = F::sub(a5, a7);
  M::st(p + c, F::add(b0, b4), k);
  M::st(p + 4 * s + c, F::sub(b0, b4), k);
  M::st(p + s + c, F::add(b1, b5), k);
  M::st(p + 5 * s + c, F::sub(b1, b5), k);
  M::st(p + 2 * s + c, F::add(b2, b6), k);
  M::st(p + 6 * s + c, F::sub(b2, b6), k);
  M::st(p + 3 * s + c, F::add(b3, b7), k);
  M::st(p + 7 * s + c, F::sub(b3, b7), k);
}

template <class F, class M>
inline void radix4(typename F::T* p, std::size_t s, std::size_t c, std::size_t k) {
  using Vec = typename F::V;
  Vec x0 = M::ld(p + c, k), x1 = M::ld(p + s + c, k), x2 = M::ld(p + 2 * s + c, k), x3 = M::ld(p + 3 * s + c, k);
  Vec a0 = F::add(x0, x1), a1 = F::sub(x0, x1), a2 = F::add(x2, x3), a3 = F::sub(x2, x3);
  M::st(p + c, F::add(a0, a2), k);
  M::st(p + 2 * s + c, F::sub(a0, a2), k);
  M::st(p + s + c, F::add(a1, a3), k);
  M::st(p + 3 * s + c, F::sub(a1, a3), k);
}

template <class F, class M>
inline void radix2(typename F::T* p, std::size_t s, std::size_t c, std::size_t k) {
  using Vec = typename F::V;
  Vec x0 = M::ld(p + c, k), x1 = M::ld(p + s + c, k);
  M::st(p + c, F::add(x0, x1), k);
  M::st(p + s + c, F::sub(x0, x1), k);
}

// One radix-r step (stages h .. r*h) over all row groups of the tile, every column.
template <class F, int r>
void fwht_step(typename F::T* x, std::size_t R, std::size_t w, std::size_t ld, std::size_t h) {
  constexpr std::size_t L = F::L;
  const std::size_t wf = w - w % L, s = h * ld;
  for (std::size_t base = 0; base < R; base += r * h) {
    for (std::size_t j = 0; j < h; ++j) {
      typename F::T* p = x + (base + j) * ld;
      std::size_t c = 0;
      for (; c < wf; c += L) {
        if constexpr (r == 8)
          radix8<F, Full<F>>(p, s, c, L);
        else if constexpr (r == 4)
          radix4<F, Full<F>>(p, s, c, L);
        else
          radix2<F, Full<F>>(p, s, c, L);
      }
      if (c < w) {
        if constexpr (r == 8)
          radix8<F, Part<F>>(p, s, c, w - c);
        else if constexpr (r == 4)
          radix4<F, Part<F>>(p, s, c, w - c);
        else
          radix2<F, Part<F>>(p, s, c, w - c);
      }
    }
  }
}

template <class F>
void fwht_stages(typename F::T* x, std::size_t R, std::size_t w, std::size_t ld, std::size_t h) {
  while (h * 8 <= R) {
    fwht_step<F, 8>(x, R, w, ld, h);
    h *= 8;
  }
  if (h * 4 <= R) {
    fwht_step<F, 4>(x, R, w, ld, h);
    h *= 4;
  }
  if (h * 2 <= R) fwht_step<F, 2>(x, R, w, ld, h);
}

// The L-point Walsh-Hadamard transform inside one register: the butterflies of lanes 1, 2, ..., L/2
// apart, in that order (nothing for one lane).
template <class F, int D = 1>
inline typename F::V hadamard_lanes(typename F::V v) {
  if constexpr (static_cast<std::size_t>(D) < F::L) {
    return hadamard_lanes<F, 2 * D>(F::template butterfly<D>(v));
  } else {
    return v;
  }
}

template <class F>
void fwht_inner(typename F::T* x, std::size_t nvec) {
  for (std::size_t i = 0; i < nvec; ++i) F::store(x + i * F::L, hadamard_lanes<F>(F::load(x + i * F::L)));
}

// A vector viewed as R rows of one register each: the in-register stages run on each L1-sized
// sub-block right before its axis-0 stages, saving a sweep over the L2-resident tile.
template <class F>
void fwht_tile_vec(typename F::T* x, std::size_t R) {
  constexpr std::size_t L = F::L, kL1Bytes = 24 * 1024;
  std::size_t Rs = 1;
  while (Rs * 2 <= R && Rs * 2 * L * sizeof(typename F::T) <= kL1Bytes) Rs *= 2;
  if (Rs >= 64 && Rs < R) {
    for (std::size_t r0 = 0; r0 < R; r0 += Rs) {
      fwht_inner<F>(x + r0 * L, Rs);
      fwht_stages<F>(x + r0 * L, Rs, L, L, 1);
    }
    fwht_stages<F>(x, R, L, L, Rs);
  } else {
    fwht_inner<F>(x, R);
    fwht_stages<F>(x, R, L, L, 1);
  }
}

// Stages on L1-sized sub-blocks first (they are independent there), then the rest on the tile, so
// the L2-resident tile is swept fewer times.
template <class F>
void fwht_tile(typename F::T* x, std::size_t R, std::size_t w, std::size_t ld) {
  constexpr std::size_t kL1Bytes = 24 * 1024;
  std::size_t Rs = 1;
  while (Rs * 2 <= R && Rs * 2 * ld * sizeof(typename F::T) <= kL1Bytes) Rs *= 2;
  if (Rs >= 64 && Rs < R) {
    for (std::size_t r0 = 0; r0 < R; r0 += Rs) fwht_stages<F>(x + r0 * ld, Rs, w, ld, 1);
    fwht_stages<F>(x, R, w, ld, Rs);
  } else {
    fwht_stages<F>(x, R, w, ld, 1);
  }
}

template <class F>
void scale_tile(typename F::T* x, std::size_t R, std::size_t w, std::size_t ld, typename F::T s) {
  constexpr std::size_t L = F::L;
  const auto vs = F::set1(s);
  const std::size_t wf = w - w % L;
  for (std::size_t r = 0; r < R; ++r) {
    typename F::T* p = x + r * ld;
    std::size_t c = 0;
    for (; c < wf; c += L) F::store(p + c, F::mul(F::load(p + c), vs));
    if (c < w) F::storen(p + c, F::mul(F::loadn(p + c, w - c), vs), w - c);
  }
}

template <class F>
void signed_accum(typename F::T* y, std::size_t ldy, const typename F::T* buf, std::size_t ldb,
                  const std::uint32_t* rows, const std::uint8_t* neg, std::size_t cnt, std::size_t w) {
  constexpr std::size_t L = F::L;
  const std::size_t wf = w - w % L;
  for (std::size_t i = 0; i < cnt; ++i) {
    typename F::T* py = y + i * ldy;
    const typename F::T* pb = buf + static_cast<std::size_t>(rows[i]) * ldb;
    std::size_t c = 0;
    if (neg[i]) {
      for (; c < wf; c += L) F::store(py + c, F::sub(F::load(py + c), F::load(pb + c)));
      if (c < w) F::storen(py + c, F::sub(F::loadn(py + c, w - c), F::loadn(pb + c, w - c)), w - c);
    } else {
      for (; c < wf; c += L) F::store(py + c, F::add(F::load(py + c), F::load(pb + c)));
      if (c < w) F::storen(py + c, F::add(F::loadn(py + c, w - c), F::loadn(pb + c, w - c)), w - c);
    }
  }
}

// Register block: up to 4 output rows x 2 vectors of columns, accumulated over j in ascending order.
template <class F, class M, int NV>
inline void gauss_block(typename F::T* y, std::size_t ldy, const typename F::T* a, std::size_t lda, std::size_t nrows,
                        std::size_t c, std::size_t k, const float* g, std::size_t ldg, std::size_t mi) {
  using Vec = typename F::V;
  using T = typename F::T;
  Vec acc[4][NV];
  for (std::size_t r = 0; r < 4; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = r < mi ? M::ld(y + r * ldy + c + v * F::L, k) : F::set1(T(0));
  if (mi == 4) {
    for (std::size_t j = 0; j < nrows; ++j) {
      Vec av[NV];
      for (int v = 0; v < NV; ++v) av[v] = M::ld(a + j * lda + c + v * F::L, k);
      for (std::size_t r = 0; r < 4; ++r) {
        const Vec gr = F::set1(static_cast<T>(g[r * ldg + j]));
        for (int v = 0; v < NV; ++v) acc[r][v] = F::fma(gr, av[v], acc[r][v]);
      }
    }
  } else {
    for (std::size_t j = 0; j < nrows; ++j) {
      Vec av[NV];
      for (int v = 0; v < NV; ++v) av[v] = M::ld(a + j * lda + c + v * F::L, k);
      for (std::size_t r = 0; r < mi; ++r) {
        const Vec gr = F::set1(static_cast<T>(g[r * ldg + j]));
        for (int v = 0; v < NV; ++v) acc[r][v] = F::fma(gr, av[v], acc[r][v]);
      }
    }
  }
  for (std::size_t r = 0; r < mi; ++r)
    for (int v = 0; v < NV; ++v) M::st(y + r * ldy + c + v * F::L, acc[r][v], k);
}

template <class F>
void gauss_accum(typename F::T* y, std::size_t ldy, const typename F::T* a, std::size_t lda, std::size_t nrows,
                 std::size_t w, const float* g, std::size_t ldg, std::size_t mi) {
  constexpr std::size_t L = F::L;
  std::size_t c = 0;
  for (; c + 2 * L <= w; c += 2 * L) gauss_block<F, Full<F>, 2>(y, ldy, a, lda, nrows, c, L, g, ldg, mi);
  for (; c + L <= w; c += L) gauss_block<F, Full<F>, 1>(y, ldy, a, lda, nrows, c, L, g, ldg, mi);
  if (c < w) gauss_block<F, Part<F>, 1>(y, ldy, a, lda, nrows, c, w - c, g, ldg, mi);
}

template <class F, class TA = typename F::T>
double row_residual(const TA* a, std::size_t rows, std::size_t d, std::size_t lda, const typename F::T* u,
                    const typename F::T* b, typename F::T* g, typename F::T* t_out) {
  using T = typename F::T;
  using Vec = typename F::V;
  constexpr std::size_t L = F::L;
  const std::size_t df = d - d % L;
  double ss = 0.0;
  // t_i = a_i . u - b_i, and its square added to ss (rows in order).
  auto residual = [&](std::size_t i) {
    const TA* p = a + i * lda;
    Vec acc0 = F::set1(T(0)), acc1 = F::set1(T(0));
    std::size_t c = 0;
    for (; c + 2 * L <= df; c += 2 * L) {
      acc0 = F::fma(load_a<F>(p + c), F::load(u + c), acc0);
      acc1 = F::fma(load_a<F>(p + c + L), F::load(u + c + L), acc1);
    }
    for (; c < df; c += L) acc0 = F::fma(load_a<F>(p + c), F::load(u + c), acc0);
    if (c < d) acc1 = F::fma(loadn_a<F>(p + c, d - c), F::loadn(u + c, d - c), acc1);
    T t = F::reduce_add(F::add(acc0, acc1));
    if (b) t -= b[i];
    if (t_out) t_out[i] = t;
    ss += static_cast<double>(t) * static_cast<double>(t);
    return t;
  };
  std::size_t i = 0;
  if (g) {
    // g += t_i a_i four rows at a time: each vector of g is loaded and stored once per four rows,
    // with the four fused multiply-adds in row order (the same roundings as one row at a time).
    for (; i + 4 <= rows; i += 4) {
      const T t[4] = {residual(i), residual(i + 1), residual(i + 2), residual(i + 3)};
      const TA* p = a + i * lda;
      const Vec v0 = F::set1(t[0]), v1 = F::set1(t[1]), v2 = F::set1(t[2]), v3 = F::set1(t[3]);
      std::size_t c = 0;
      for (; c < df; c += L) {
        Vec acc = F::fma(v0, load_a<F>(p + c), F::load(g + c));
        acc = F::fma(v1, load_a<F>(p + lda + c), acc);
        acc = F::fma(v2, load_a<F>(p + 2 * lda + c), acc);
        F::store(g + c, F::fma(v3, load_a<F>(p + 3 * lda + c), acc));
      }
      if (c < d) {
        const std::size_t k = d - c;
        Vec acc = F::fma(v0, loadn_a<F>(p + c, k), F::loadn(g + c, k));
        acc = F::fma(v1, loadn_a<F>(p + lda + c, k), acc);
        acc = F::fma(v2, loadn_a<F>(p + 2 * lda + c, k), acc);
        F::storen(g + c, F::fma(v3, loadn_a<F>(p + 3 * lda + c, k), acc), k);
      }
    }
  }
  for (; i < rows; ++i) {
    const T t = residual(i);
    if (g) {
      const TA* p = a + i * lda;
      const Vec vt = F::set1(t);
      std::size_t c = 0;
      for (; c < df; c += L) F::store(g + c, F::fma(vt, load_a<F>(p + c), F::load(g + c)));
      if (c < d) F::storen(g + c, F::fma(vt, loadn_a<F>(p + c, d - c), F::loadn(g + c, d - c)), d - c);
    }
  }
  return ss;
}

// Rows of sparse problems hold a few entries of random count: a loop over each row's entries
// mispredicts its exit on most rows. Blocks of such rows run entry by entry instead, with every
// entry's row number expanded from the row pointers first; the sums are formed in the same order
// (each row's entries ascending), so both ways give the same bits.
constexpr std::size_t kCsrBlockRows = 1024, kCsrShortEntries = 4 * kCsrBlockRows;

template <class F, class TV = typename F::T>
double csr_row_residual(const std::int64_t* ptr, const std::int32_t* ind, const TV* val, std::size_t rows,
                        const typename F::T* u, const typename F::T* b, typename F::T* g, typename F::T* t_out) {
  using T = typename F::T;
  double ss = 0.0;
  std::int32_t row_of[kCsrShortEntries + 1];
  T tb[kCsrBlockRows];
  for (std::size_t i0 = 0; i0 < rows; i0 += kCsrBlockRows) {
    const std::size_t nr = std::min(kCsrBlockRows, rows - i0);
    const std::int64_t kb = ptr[i0], ne = ptr[i0 + nr] - kb;
    if (ne > static_cast<std::int64_t>(kCsrShortEntries)) {
      for (std::size_t i = i0; i < i0 + nr; ++i) {
        const std::int64_t k0 = ptr[i], k1 = ptr[i + 1];
        T t = T(0);
        for (std::int64_t k = k0; k < k1; ++k) t += static_cast<T>(val[k]) * u[ind[k]];
        if (b) t -= b[i];
        if (t_out) t_out[i] = t;
        ss += static_cast<double>(t) * static_cast<double>(t);
        if (g)
          for (std::int64_t k = k0; k < k1; ++k) g[ind[k]] += t * static_cast<T>(val[k]);
      }
      continue;
    }
    // row_of[e]: the block row of entry kb + e (the count of rows starting at or before it).
    std::fill(row_of, row_of + ne + 1, 0);
    for (std::size_t i = 1; i < nr; ++i) row_of[ptr[i0 + i] - kb] += 1;
    for (std::int64_t e = 1; e < ne; ++e) row_of[e] += row_of[e - 1];
    const std::int32_t* ik = ind + kb;
    const TV* vk = val + kb;
    std::fill(tb, tb + nr, T(0));
    for (std::int64_t e = 0; e < ne; ++e) tb[row_of[e]] += static_cast<T>(vk[e]) * u[ik[e]];
    for (std::size_t i = 0; i < nr; ++i) {
      const T t = b ? tb[i] - b[i0 + i] : tb[i];
      tb[i] = t;
      if (t_out) t_out[i0 + i] = t;
      ss += static_cast<double>(t) * static_cast<double>(t);
    }
    if (g)
      for (std::int64_t e = 0; e < ne; ++e) g[ik[e]] += tb[row_of[e]] * static_cast<T>(vk[e]);
  }
  return ss;
}

template <class F, class TV = typename F::T>
void csr_sketch_strip(typename F::T* y, std::size_t ldy, const std::int64_t* ptr, const std::int32_t* ind,
                      const TV* val, std::size_t rows, std::int32_t c0, std::int32_t c1, const std::int64_t* idx,
                      const std::uint8_t* neg, typename F::T scale, std::size_t s) {
  using T = typename F::T;
  for (std::size_t i = 0; i < rows; ++i) {
    std::int64_t k = ptr[i];
    const std::int64_t k1 = ptr[i + 1];
    while (k < k1 && ind[k] < c0) ++k;
    const std::int64_t* bi = idx + i * s;
    const std::uint8_t* ni = neg + i * s;
    const T sv[2] = {scale, -scale};  // by table lookup: random signs would mispredict a branch
    for (; k < k1 && ind[k] < c1; ++k) {
      const T v = static_cast<T>(val[k]);
      T* yc = y + ind[k];
      for (std::size_t t = 0; t < s; ++t) yc[static_cast<std::size_t>(bi[t]) * ldy] += sv[ni[t] != 0] * v;
    }
  }
}

// TwoSum (Knuth): s + t == a + b exactly, s = fl(a + b). Needs no FMA contraction (see CMakeLists).
template <class F>
void two_sum(typename F::V a, typename F::V b, typename F::V& s, typename F::V& t) {
  s = F::add(a, b);
  const typename F::V bb = F::sub(s, a);
  t = F::add(F::sub(a, F::sub(s, bb)), F::sub(b, bb));
}

inline void two_sum1(double a, double b, double& s, double& t) {
  s = a + b;
  const double bb = s - a;
  t = (a - (s - bb)) + (b - bb);
}

template <class F, class TA = double>
void ls_refine_rows(const TA* a, std::size_t rows, std::size_t d, std::size_t lda, const double* x, double* r,
                    bool init_r, const double* b, double* f, double* sr_hi, double* sr_lo, double* sf) {
  using Vec = typename F::V;
  constexpr std::size_t L = F::L;
  const std::size_t df = d - d % L;
  for (std::size_t i = 0; i < rows; ++i) {
    const TA* p = a + i * lda;
    // Lane-wise Dot2 of a_i and x: the products' rounding errors (TwoProd) and the sums' (TwoSum)
    // are gathered in e, so s + e carries the dot product to about twice the working precision.
    Vec s = F::set1(0.0), e = F::set1(0.0);
    for (std::size_t c = 0; c < d; c += L) {
      const Vec av = c < df ? load_a<F>(p + c) : loadn_a<F>(p + c, d - c);
      const Vec xv = c < df ? F::load(x + c) : F::loadn(x + c, d - c);
      const Vec prod = F::mul(av, xv);
      Vec t;
      two_sum<F>(s, prod, s, t);
      e = F::add(e, F::add(F::mul_error(av, xv, prod), t));
    }
    double sl[L], el[L];
    F::store(sl, s);
    F::store(el, e);
    double S = b[i], E = 0.0, t;
    for (std::size_t k = 0; k < L; ++k) {
      two_sum1(S, -sl[k], S, t);
      E += t - el[k];
    }
    // S + E is b_i - dot(a_i, x) to about twice the working precision. Either r_i is given and
    // f_i = (S + E) - r_i, or r_i becomes its rounding and f_i what the rounding dropped.
    if (init_r) r[i] = S + E;
    two_sum1(S, -r[i], S, t);
    const double fi = S + (E + t);
    f[i] = fi;
    const Vec vr = F::set1(r[i]), vf = F::set1(fi);
    for (std::size_t c = 0; c < d; c += L) {
      const std::size_t k = d - c;
      const bool full = c < df;
      const Vec av = full ? load_a<F>(p + c) : loadn_a<F>(p + c, k);
      const Vec prod = F::mul(av, vr);
      Vec hi, t2;
      two_sum<F>(full ? F::load(sr_hi + c) : F::loadn(sr_hi + c, k), prod, hi, t2);
      const Vec lo = F::add(full ? F::load(sr_lo + c) : F::loadn(sr_lo + c, k), F::add(F::mul_error(av, vr, prod), t2));
      const Vec g = F::fma(av, vf, full ? F::load(sf + c) : F::loadn(sf + c, k));
      if (full) {
        F::store(sr_hi + c, hi);
        F::store(sr_lo + c, lo);
        F::store(sf + c, g);
      } else {
        F::storen(sr_hi + c, hi, k);
        F::storen(sr_lo + c, lo, k);
        F::storen(sf + c, g, k);
      }
    }
  }
}

// Scalar Dot2 over CSR rows: the same quantities as ls_refine_rows. std::fma gives TwoProd's exact
// product error on every level (a library call where the level has no FMA instruction).
template <class F, class TV = double>
void csr_ls_refine_rows(const std::int64_t* ptr, const std::int32_t* ind, const TV* val, std::size_t rows,
                        const double* x, double* r, bool init_r, const double* b, double* f, double* sr_hi,
                        double* sr_lo, double* sf) {
  for (std::size_t i = 0; i < rows; ++i) {
    const std::int64_t k0 = ptr[i], k1 = ptr[i + 1];
    double s = 0.0, e = 0.0, t;
    for (std::int64_t k = k0; k < k1; ++k) {
      const double av = val[k], xv = x[ind[k]];
      const double prod = av * xv;
      two_sum1(s, prod, s, t);
      e += std::fma(av, xv, -prod) + t;
    }
    double S = b[i], E = 0.0;
    two_sum1(S, -s, S, t);
    E += t - e;
    if (init_r) r[i] = S + E;
    two_sum1(S, -r[i], S, t);
    const double fi = S + (E + t);
    f[i] = fi;
    const double ri = r[i];
    for (std::int64_t k = k0; k < k1; ++k) {
      const std::size_t c = static_cast<std::size_t>(ind[k]);
      const double av = val[k];
      const double prod = av * ri;
      double hi, t2;
      two_sum1(sr_hi[c], prod, hi, t2);
      sr_lo[c] += std::fma(av, ri, -prod) + t2;
      sr_hi[c] = hi;
      sf[c] += av * fi;
    }
  }
}

template <class F>
void sparse_rows(typename F::T* y, std::size_t ldy, const typename F::T* a, std::size_t lda, std::size_t rows,
                 std::size_t w, const std::int64_t* idx, const std::uint8_t* neg, typename F::T scale, std::size_t s) {
  using T = typename F::T;
  using Vec = typename F::V;
  constexpr std::size_t L = F::L;
  const std::size_t wf = w - w % L;
  const T sv[2] = {scale, -scale};  // by table lookup: random signs would mispredict a branch
  for (std::size_t j = 0; j < rows; ++j) {
    const T* src = a + j * lda;
    for (std::size_t t = 0; t < s; ++t) {
      T* dst = y + static_cast<std::size_t>(idx[j * s + t]) * ldy;
      const Vec v = F::set1(sv[neg[j * s + t] != 0]);
      std::size_t c = 0;
      for (; c < wf; c += L) F::store(dst + c, F::add(F::load(dst + c), F::mul(v, F::load(src + c))));
      if (c < w) F::storen(dst + c, F::add(F::loadn(dst + c, w - c), F::mul(v, F::loadn(src + c, w - c))), w - c);
    }
  }
}

template <class F>
constexpr TypedKernels<typename F::T> typed_table() {
  return {&fwht_tile<F>,   &fwht_inner<F>,   &fwht_tile_vec<F>,    &scale_tile<F>,       &signed_accum<F>,
          &gauss_accum<F>, &row_residual<F>, &csr_row_residual<F>, &csr_sketch_strip<F>, &sparse_rows<F>};
}

// ---- counter-based normal numbers ----

// Normal number from 32 random bits: u = (2k + 1) / 2^24 - 1 with k the top 23 bits (exact in
// float), z = sqrt(2) * erfinv(u) by M. Giles, "Approximating the erfinv function" (GPU Computing
// Gems, 2011), single-precision branch pair (relative error ~ 4e-7), both branches evaluated and
// blended. log is computed from the exponent field and an atanh series on [sqrt(1/2), sqrt(2)).
template <class F, class I>
inline typename F::V normal_of(typename I::V bits) {
  using FV = typename F::V;
  using IV = typename I::V;
  const IV k = I::template shr<9>(bits);
  // 2k + 1 - 2^23 is an odd integer of magnitude < 2^23: exact in float.
  const FV num = F::from_i32(I::sub(I::add(I::add(k, k), I::set1(1u)), I::set1(1u << 23)));
  const FV x = F::mul(num, F::set1(1.0f / 8388608.0f));
  const FV one = F::set1(1.0f);
  const FV y = F::mul(F::sub(one, x), F::add(one, x));  // in (0, 1]
  // log(y) = e * ln2 + log(m), m in [sqrt(1/2), sqrt(2)).
  const IV yb = F::bits(y);
  IV e = I::sub(I::template shr<23>(yb), I::set1(127u));
  FV m = F::from_bits(I::bor(I::band(yb, I::set1(0x007fffffu)), I::set1(0x3f800000u)));
  const auto big = F::gt(m, F::set1(1.41421356f));
  m = F::select(big, F::mul(m, F::set1(0.5f)), m);
  e = I::select(big, I::add(e, I::set1(1u)), e);
  const FV t = F::div(F::sub(m, one), F::add(m, one));
  const FV t2 = F::mul(t, t);
  FV p = F::set1(2.0f / 9.0f);
  p = F::fma(p, t2, F::set1(2.0f / 7.0f));
  p = F::fma(p, t2, F::set1(2.0f / 5.0f));
  p = F::fma(p, t2, F::set1(2.0f / 3.0f));
  p = F::fma(p, t2, F::set1(2.0f));
  const FV logy = F::fma(F::from_i32(e), F::set1(0.693147180559945f), F::mul(p, t));
  const FV w = F::sub(F::set1(0.0f), logy);
  // Central branch (w < 5).
  const FV wc = F::sub(w, F::set1(2.5f));
  FV pc = F::set1(2.81022636e-08f);
  pc = F::fma(pc, wc, F::set1(3.43273939e-07f));
  pc = F::fma(pc, wc, F::set1(-3.5233877e-06f));
  pc = F::fma(pc, wc, F::set1(-4.39150654e-06f));
  pc = F::fma(pc, wc, F::set1(0.00021858087f));
  pc = F::fma(pc, wc, F::set1(-0.00125372503f));
  pc = F::fma(pc, wc, F::set1(-0.00417768164f));
  pc = F::fma(pc, wc, F::set1(0.246640727f));
  pc = F::fma(pc, wc, F::set1(1.50140941f));
  // Tail branch (w >= 5).
  const FV wt = F::sub(F::sqrt(w), F::set1(3.0f));
  FV pt = F::set1(-0.000200214257f);
  pt = F::fma(pt, wt, F::set1(0.000100950558f));
  pt = F::fma(pt, wt, F::set1(0.00134934322f));
  pt = F::fma(pt, wt, F::set1(-0.00367342844f));
  pt = F::fma(pt, wt, F::set1(0.00573950773f));
  pt = F::fma(pt, wt, F::set1(-0.0076224613f));
  pt = F::fma(pt, wt, F::set1(0.00943887047f));
  pt = F::fma(pt, wt, F::set1(1.00167406f));
  pt = F::fma(pt, wt, F::set1(2.83297682f));
  const FV pr = F::select(F::gt(F::set1(5.0f), w), pc, pt);
  return F::mul(F::mul(pr, x), F::set1(1.41421356237f));
}

// Counter j0 + t of row row_key becomes lowbias32(lowbias32(j ^ row_key) + key2): the same bits, so
// the same numbers, on every level.
template <class F, class I>
void gauss_fill(float* out, std::size_t cnt, std::uint32_t row_key, std::uint32_t key2, std::uint32_t j0) {
  static_assert(F::L == I::L, "one integer lane per float lane");
  constexpr std::size_t L = F::L;
  const typename I::V rk = I::set1(row_key), k2 = I::set1(key2);
  std::size_t t = 0;
  for (; t < cnt; t += L) {
    const typename I::V j = I::add(I::set1(j0 + static_cast<std::uint32_t>(t)), I::iota());
    const typename I::V h = simd::lowbias32<I>(I::add(simd::lowbias32<I>(I::bxor(j, rk)), k2));
    const typename F::V z = normal_of<F, I>(h);
    if (t + L <= cnt) {
      F::store(out + t, z);
    } else {
      simd::store_partial<F>(out + t, z, cnt - t);
    }
  }
}

// ---- the table of one ISA unit ----

// Every unit fills its table from the shared kernels above at its own vector types: the float64
// entries of the float32-stored passes read float32 entries and compute in float64.
constexpr Kernels kernel_table() {
  return {simd::kLevel,
          simd::F32::L,
          simd::F64::L,
          typed_table<simd::F32>(),
          typed_table<simd::F64>(),
          &gauss_fill<simd::F32, simd::I32>,
          &ls_refine_rows<simd::F64>,
          &csr_ls_refine_rows<simd::F64>,
          &row_residual<simd::F64, float>,
          &ls_refine_rows<simd::F64, float>,
          &csr_row_residual<simd::F64, float>,
          &csr_ls_refine_rows<simd::F64, float>,
          &csr_sketch_strip<simd::F64, float>};
}
