// Sketch kernels written once over vector traits; #included inside an anonymous namespace of each
// ISA translation unit, so every instance has internal linkage and its TU's instruction set.
//
// A value traits type V provides: T, Vec, L (lanes), load/store, loadn/storen (first k < L lanes,
// others zero / untouched), add, sub, fma(a, b, c) = a * b + c, set1, hsum, inner (the L-point
// Walsh-Hadamard transform inside one register). A generator traits type G provides 32-bit integer
// and float lane operations for gauss_fill.

template <class V>
struct Full {
  using Vec = typename V::Vec;
  static Vec ld(const typename V::T* p, std::size_t) { return V::load(p); }
  static void st(typename V::T* p, Vec v, std::size_t) { V::store(p, v); }
};

template <class V>
struct Part {
  using Vec = typename V::Vec;
  static Vec ld(const typename V::T* p, std::size_t k) { return V::loadn(p, k); }
  static void st(typename V::T* p, Vec v, std::size_t k) { V::storen(p, v, k); }
};

// Three stages (h, 2h, 4h) on rows p, p + h*ld, ..., p + 7h*ld, columns [c, c + k).
template <class V, class M>
inline void radix8(typename V::T* p, std::size_t s, std::size_t c, std::size_t k) {
  using Vec = typename V::Vec;
  Vec x0 = M::ld(p + c, k), x1 = M::ld(p + s + c, k), x2 = M::ld(p + 2 * s + c, k), x3 = M::ld(p + 3 * s + c, k);
  Vec x4 = M::ld(p + 4 * s + c, k), x5 = M::ld(p + 5 * s + c, k), x6 = M::ld(p + 6 * s + c, k),
      x7 = M::ld(p + 7 * s + c, k);
  Vec a0 = V::add(x0, x1), a1 = V::sub(x0, x1), a2 = V::add(x2, x3), a3 = V::sub(x2, x3);
  Vec a4 = V::add(x4, x5), a5 = V::sub(x4, x5), a6 = V::add(x6, x7), a7 = V::sub(x6, x7);
  Vec b0 = V::add(a0, a2), b2 = V::sub(a0, a2), b1 = V::add(a1, a3), b3 = V::sub(a1, a3);
  Vec b4 = V::add(a4, a6), b6 = V::sub(a4, a6), b5 = V::add(a5, a7), b7 = V::sub(a5, a7);
  M::st(p + c, V::add(b0, b4), k);
  M::st(p + 4 * s + c, V::sub(b0, b4), k);
  M::st(p + s + c, V::add(b1, b5), k);
  M::st(p + 5 * s + c, V::sub(b1, b5), k);
  M::st(p + 2 * s + c, V::add(b2, b6), k);
  M::st(p + 6 * s + c, V::sub(b2, b6), k);
  M::st(p + 3 * s + c, V::add(b3, b7), k);
  M::st(p + 7 * s + c, V::sub(b3, b7), k);
}

template <class V, class M>
inline void radix4(typename V::T* p, std::size_t s, std::size_t c, std::size_t k) {
  using Vec = typename V::Vec;
  Vec x0 = M::ld(p + c, k), x1 = M::ld(p + s + c, k), x2 = M::ld(p + 2 * s + c, k), x3 = M::ld(p + 3 * s + c, k);
  Vec a0 = V::add(x0, x1), a1 = V::sub(x0, x1), a2 = V::add(x2, x3), a3 = V::sub(x2, x3);
  M::st(p + c, V::add(a0, a2), k);
  M::st(p + 2 * s + c, V::sub(a0, a2), k);
  M::st(p + s + c, V::add(a1, a3), k);
  M::st(p + 3 * s + c, V::sub(a1, a3), k);
}

template <class V, class M>
inline void radix2(typename V::T* p, std::size_t s, std::size_t c, std::size_t k) {
  using Vec = typename V::Vec;
  Vec x0 = M::ld(p + c, k), x1 = M::ld(p + s + c, k);
  M::st(p + c, V::add(x0, x1), k);
  M::st(p + s + c, V::sub(x0, x1), k);
}

// One radix-r step (stages h .. r*h) over all row groups of the tile, every column.
template <class V, int r>
void fwht_step(typename V::T* x, std::size_t R, std::size_t w, std::size_t ld, std::size_t h) {
  constexpr std::size_t L = V::L;
  const std::size_t wf = w - w % L, s = h * ld;
  for (std::size_t base = 0; base < R; base += r * h) {
    for (std::size_t j = 0; j < h; ++j) {
      typename V::T* p = x + (base + j) * ld;
      std::size_t c = 0;
      for (; c < wf; c += L) {
        if constexpr (r == 8) radix8<V, Full<V>>(p, s, c, L);
        else if constexpr (r == 4) radix4<V, Full<V>>(p, s, c, L);
        else radix2<V, Full<V>>(p, s, c, L);
      }
      if (c < w) {
        if constexpr (r == 8) radix8<V, Part<V>>(p, s, c, w - c);
        else if constexpr (r == 4) radix4<V, Part<V>>(p, s, c, w - c);
        else radix2<V, Part<V>>(p, s, c, w - c);
      }
    }
  }
}

template <class V>
void fwht_stages(typename V::T* x, std::size_t R, std::size_t w, std::size_t ld, std::size_t h) {
  while (h * 8 <= R) {
    fwht_step<V, 8>(x, R, w, ld, h);
    h *= 8;
  }
  if (h * 4 <= R) {
    fwht_step<V, 4>(x, R, w, ld, h);
    h *= 4;
  }
  if (h * 2 <= R) fwht_step<V, 2>(x, R, w, ld, h);
}

template <class V>
void fwht_inner(typename V::T* x, std::size_t nvec) {
  for (std::size_t i = 0; i < nvec; ++i) V::store(x + i * V::L, V::inner(V::load(x + i * V::L)));
}

// A vector viewed as R rows of one register each: the in-register stages run on each L1-sized
// sub-block right before its axis-0 stages, saving a sweep over the L2-resident tile.
template <class V>
void fwht_tile_vec(typename V::T* x, std::size_t R) {
  constexpr std::size_t L = V::L, kL1Bytes = 24 * 1024;
  std::size_t Rs = 1;
  while (Rs * 2 <= R && Rs * 2 * L * sizeof(typename V::T) <= kL1Bytes) Rs *= 2;
  if (Rs >= 64 && Rs < R) {
    for (std::size_t r0 = 0; r0 < R; r0 += Rs) {
      fwht_inner<V>(x + r0 * L, Rs);
      fwht_stages<V>(x + r0 * L, Rs, L, L, 1);
    }
    fwht_stages<V>(x, R, L, L, Rs);
  } else {
    fwht_inner<V>(x, R);
    fwht_stages<V>(x, R, L, L, 1);
  }
}

// Stages on L1-sized sub-blocks first (they are independent there), then the rest on the tile, so
// the L2-resident tile is swept fewer times.
template <class V>
void fwht_tile(typename V::T* x, std::size_t R, std::size_t w, std::size_t ld) {
  constexpr std::size_t kL1Bytes = 24 * 1024;
  std::size_t Rs = 1;
  while (Rs * 2 <= R && Rs * 2 * ld * sizeof(typename V::T) <= kL1Bytes) Rs *= 2;
  if (Rs >= 64 && Rs < R) {
    for (std::size_t r0 = 0; r0 < R; r0 += Rs) fwht_stages<V>(x + r0 * ld, Rs, w, ld, 1);
    fwht_stages<V>(x, R, w, ld, Rs);
  } else {
    fwht_stages<V>(x, R, w, ld, 1);
  }
}


template <class V>
void scale_tile(typename V::T* x, std::size_t R, std::size_t w, std::size_t ld, typename V::T s) {
  constexpr std::size_t L = V::L;
  const auto vs = V::set1(s);
  const std::size_t wf = w - w % L;
  for (std::size_t r = 0; r < R; ++r) {
    typename V::T* p = x + r * ld;
    std::size_t c = 0;
    for (; c < wf; c += L) V::store(p + c, V::mul(V::load(p + c), vs));
    if (c < w) V::storen(p + c, V::mul(V::loadn(p + c, w - c), vs), w - c);
  }
}

template <class V>
void signed_accum(typename V::T* y, std::size_t ldy, const typename V::T* buf, std::size_t ldb,
                  const std::uint32_t* rows, const std::uint8_t* neg, std::size_t cnt, std::size_t w) {
  constexpr std::size_t L = V::L;
  const std::size_t wf = w - w % L;
  for (std::size_t i = 0; i < cnt; ++i) {
    typename V::T* py = y + i * ldy;
    const typename V::T* pb = buf + static_cast<std::size_t>(rows[i]) * ldb;
    std::size_t c = 0;
    if (neg[i]) {
      for (; c < wf; c += L) V::store(py + c, V::sub(V::load(py + c), V::load(pb + c)));
      if (c < w) V::storen(py + c, V::sub(V::loadn(py + c, w - c), V::loadn(pb + c, w - c)), w - c);
    } else {
      for (; c < wf; c += L) V::store(py + c, V::add(V::load(py + c), V::load(pb + c)));
      if (c < w) V::storen(py + c, V::add(V::loadn(py + c, w - c), V::loadn(pb + c, w - c)), w - c);
    }
  }
}

// Register block: up to 4 output rows x 2 vectors of columns, accumulated over j in ascending order.
template <class V, class M, int NV>
inline void gauss_block(typename V::T* y, std::size_t ldy, const typename V::T* a, std::size_t lda,
                        std::size_t nrows, std::size_t c, std::size_t k, const float* g, std::size_t ldg,
                        std::size_t mi) {
  using Vec = typename V::Vec;
  using T = typename V::T;
  Vec acc[4][NV];
  for (std::size_t r = 0; r < 4; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = r < mi ? M::ld(y + r * ldy + c + v * V::L, k) : V::set1(T(0));
  if (mi == 4) {
    for (std::size_t j = 0; j < nrows; ++j) {
      Vec av[NV];
      for (int v = 0; v < NV; ++v) av[v] = M::ld(a + j * lda + c + v * V::L, k);
      for (std::size_t r = 0; r < 4; ++r) {
        const Vec gr = V::set1(static_cast<T>(g[r * ldg + j]));
        for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(gr, av[v], acc[r][v]);
      }
    }
  } else {
    for (std::size_t j = 0; j < nrows; ++j) {
      Vec av[NV];
      for (int v = 0; v < NV; ++v) av[v] = M::ld(a + j * lda + c + v * V::L, k);
      for (std::size_t r = 0; r < mi; ++r) {
        const Vec gr = V::set1(static_cast<T>(g[r * ldg + j]));
        for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(gr, av[v], acc[r][v]);
      }
    }
  }
  for (std::size_t r = 0; r < mi; ++r)
    for (int v = 0; v < NV; ++v) M::st(y + r * ldy + c + v * V::L, acc[r][v], k);
}

template <class V>
void gauss_accum(typename V::T* y, std::size_t ldy, const typename V::T* a, std::size_t lda, std::size_t nrows,
                 std::size_t w, const float* g, std::size_t ldg, std::size_t mi) {
  constexpr std::size_t L = V::L;
  std::size_t c = 0;
  for (; c + 2 * L <= w; c += 2 * L) gauss_block<V, Full<V>, 2>(y, ldy, a, lda, nrows, c, L, g, ldg, mi);
  for (; c + L <= w; c += L) gauss_block<V, Full<V>, 1>(y, ldy, a, lda, nrows, c, L, g, ldg, mi);
  if (c < w) gauss_block<V, Part<V>, 1>(y, ldy, a, lda, nrows, c, w - c, g, ldg, mi);
}

template <class V>
double row_residual(const typename V::T* a, std::size_t rows, std::size_t d, std::size_t lda,
                    const typename V::T* u, const typename V::T* b, typename V::T* g, typename V::T* t_out) {
  using T = typename V::T;
  using Vec = typename V::Vec;
  constexpr std::size_t L = V::L;
  const std::size_t df = d - d % L;
  double ss = 0.0;
  for (std::size_t i = 0; i < rows; ++i) {
    const T* p = a + i * lda;
    Vec acc0 = V::set1(T(0)), acc1 = V::set1(T(0));
    std::size_t c = 0;
    for (; c + 2 * L <= df; c += 2 * L) {
      acc0 = V::fma(V::load(p + c), V::load(u + c), acc0);
      acc1 = V::fma(V::load(p + c + L), V::load(u + c + L), acc1);
    }
    for (; c < df; c += L) acc0 = V::fma(V::load(p + c), V::load(u + c), acc0);
    if (c < d) acc1 = V::fma(V::loadn(p + c, d - c), V::loadn(u + c, d - c), acc1);
    T t = V::hsum(V::add(acc0, acc1));
    if (b) t -= b[i];
    if (t_out) t_out[i] = t;
    ss += static_cast<double>(t) * static_cast<double>(t);
    if (g) {
      const Vec vt = V::set1(t);
      c = 0;
      for (; c < df; c += L) V::store(g + c, V::fma(vt, V::load(p + c), V::load(g + c)));
      if (c < d) V::storen(g + c, V::fma(vt, V::loadn(p + c, d - c), V::loadn(g + c, d - c)), d - c);
    }
  }
  return ss;
}

// TwoSum (Knuth): s + t == a + b exactly, s = fl(a + b). Needs no FMA contraction (see CMakeLists).
template <class V>
void two_sum(typename V::Vec a, typename V::Vec b, typename V::Vec& s, typename V::Vec& t) {
  s = V::add(a, b);
  const typename V::Vec bb = V::sub(s, a);
  t = V::add(V::sub(a, V::sub(s, bb)), V::sub(b, bb));
}

inline void two_sum1(double a, double b, double& s, double& t) {
  s = a + b;
  const double bb = s - a;
  t = (a - (s - bb)) + (b - bb);
}

template <class V>
void ls_refine_rows(const double* a, std::size_t rows, std::size_t d, std::size_t lda, const double* x, double* r,
                    bool init_r, const double* b, double* f, double* sr_hi, double* sr_lo, double* sf) {
  using Vec = typename V::Vec;
  constexpr std::size_t L = V::L;
  const std::size_t df = d - d % L;
  for (std::size_t i = 0; i < rows; ++i) {
    const double* p = a + i * lda;
    // Lane-wise Dot2 of a_i and x: the products' rounding errors (TwoProd) and the sums' (TwoSum)
    // are gathered in e, so s + e carries the dot product to about twice the working precision.
    Vec s = V::set1(0.0), e = V::set1(0.0);
    for (std::size_t c = 0; c < d; c += L) {
      const Vec av = c < df ? V::load(p + c) : V::loadn(p + c, d - c);
      const Vec xv = c < df ? V::load(x + c) : V::loadn(x + c, d - c);
      const Vec prod = V::mul(av, xv);
      Vec t;
      two_sum<V>(s, prod, s, t);
      e = V::add(e, V::add(V::prod_err(av, xv, prod), t));
    }
    double sl[L], el[L];
    V::store(sl, s);
    V::store(el, e);
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
    const Vec vr = V::set1(r[i]), vf = V::set1(fi);
    for (std::size_t c = 0; c < d; c += L) {
      const std::size_t k = d - c;
      const bool full = c < df;
      const Vec av = full ? V::load(p + c) : V::loadn(p + c, k);
      const Vec prod = V::mul(av, vr);
      Vec hi, t2;
      two_sum<V>(full ? V::load(sr_hi + c) : V::loadn(sr_hi + c, k), prod, hi, t2);
      const Vec lo = V::add(full ? V::load(sr_lo + c) : V::loadn(sr_lo + c, k), V::add(V::prod_err(av, vr, prod), t2));
      const Vec g = V::fma(av, vf, full ? V::load(sf + c) : V::loadn(sf + c, k));
      if (full) {
        V::store(sr_hi + c, hi);
        V::store(sr_lo + c, lo);
        V::store(sf + c, g);
      } else {
        V::storen(sr_hi + c, hi, k);
        V::storen(sr_lo + c, lo, k);
        V::storen(sf + c, g, k);
      }
    }
  }
}

template <class V>
constexpr TypedKernels<typename V::T> typed_table() {
  return {&fwht_tile<V>, &fwht_inner<V>, &fwht_tile_vec<V>, &scale_tile<V>, &signed_accum<V>, &gauss_accum<V>, &row_residual<V>};
}

// ---- counter-based normal numbers ----

// lowbias32 (C. Wellons' hash prospector): a bijective 32-bit mixer with low avalanche bias.
template <class G>
inline typename G::U mix32(typename G::U x) {
  x = G::uxor(x, G::ushr16(x));
  x = G::umul(x, G::uset1(0x7feb352du));
  x = G::uxor(x, G::ushr15(x));
  x = G::umul(x, G::uset1(0x846ca68bu));
  x = G::uxor(x, G::ushr16(x));
  return x;
}

// Normal number from 32 random bits: u = (2k + 1) / 2^24 - 1 with k the top 23 bits (exact in
// float), z = sqrt(2) * erfinv(u) by M. Giles, "Approximating the erfinv function" (GPU Computing
// Gems, 2011), single-precision branch pair (relative error ~ 4e-7), both branches evaluated and
// blended. log is computed from the exponent field and an atanh series on [sqrt(1/2), sqrt(2)).
template <class G>
inline typename G::F normal_of(typename G::U bits) {
  using F = typename G::F;
  const typename G::U k = G::ushr9(bits);
  // 2k + 1 - 2^23 is an odd integer of magnitude < 2^23: exact in float.
  const F num = G::itof(G::usub(G::uadd(G::uadd(k, k), G::uset1(1u)), G::uset1(1u << 23)));
  const F x = G::mul(num, G::set1(1.0f / 8388608.0f));
  const F one = G::set1(1.0f);
  const F y = G::mul(G::sub(one, x), G::add(one, x));  // in (0, 1]
  // log(y) = e * ln2 + log(m), m in [sqrt(1/2), sqrt(2)).
  const typename G::U yb = G::f_as_u(y);
  typename G::U e = G::usub(G::ushr23(yb), G::uset1(127u));
  F m = G::u_as_f(G::uor(G::uand(yb, G::uset1(0x007fffffu)), G::uset1(0x3f800000u)));
  const auto big = G::gt(m, G::set1(1.41421356f));
  m = G::blend(big, G::mul(m, G::set1(0.5f)), m);
  e = G::ublend(big, G::uadd(e, G::uset1(1u)), e);
  const F t = G::div(G::sub(m, one), G::add(m, one));
  const F t2 = G::mul(t, t);
  F p = G::set1(2.0f / 9.0f);
  p = G::fma(p, t2, G::set1(2.0f / 7.0f));
  p = G::fma(p, t2, G::set1(2.0f / 5.0f));
  p = G::fma(p, t2, G::set1(2.0f / 3.0f));
  p = G::fma(p, t2, G::set1(2.0f));
  const F logy = G::fma(G::itof(e), G::set1(0.693147180559945f), G::mul(p, t));
  const F w = G::sub(G::set1(0.0f), logy);
  // Central branch (w < 5).
  const F wc = G::sub(w, G::set1(2.5f));
  F pc = G::set1(2.81022636e-08f);
  pc = G::fma(pc, wc, G::set1(3.43273939e-07f));
  pc = G::fma(pc, wc, G::set1(-3.5233877e-06f));
  pc = G::fma(pc, wc, G::set1(-4.39150654e-06f));
  pc = G::fma(pc, wc, G::set1(0.00021858087f));
  pc = G::fma(pc, wc, G::set1(-0.00125372503f));
  pc = G::fma(pc, wc, G::set1(-0.00417768164f));
  pc = G::fma(pc, wc, G::set1(0.246640727f));
  pc = G::fma(pc, wc, G::set1(1.50140941f));
  // Tail branch (w >= 5).
  const F wt = G::sub(G::sqrt(w), G::set1(3.0f));
  F pt = G::set1(-0.000200214257f);
  pt = G::fma(pt, wt, G::set1(0.000100950558f));
  pt = G::fma(pt, wt, G::set1(0.00134934322f));
  pt = G::fma(pt, wt, G::set1(-0.00367342844f));
  pt = G::fma(pt, wt, G::set1(0.00573950773f));
  pt = G::fma(pt, wt, G::set1(-0.0076224613f));
  pt = G::fma(pt, wt, G::set1(0.00943887047f));
  pt = G::fma(pt, wt, G::set1(1.00167406f));
  pt = G::fma(pt, wt, G::set1(2.83297682f));
  const F pr = G::blend(G::gt(G::set1(5.0f), w), pc, pt);
  return G::mul(G::mul(pr, x), G::set1(1.41421356237f));
}

template <class G>
void gauss_fill(float* out, std::size_t cnt, std::uint32_t row_key, std::uint32_t key2, std::uint32_t j0) {
  constexpr std::size_t L = G::L;
  const typename G::U rk = G::uset1(row_key), k2 = G::uset1(key2);
  std::size_t t = 0;
  for (; t < cnt; t += L) {
    const typename G::U j = G::iota(j0 + static_cast<std::uint32_t>(t));
    const typename G::U h = mix32<G>(G::uadd(mix32<G>(G::uxor(j, rk)), k2));
    const typename G::F z = normal_of<G>(h);
    if (t + L <= cnt) {
      G::store(out + t, z);
    } else {
      float tmp[L];
      G::store(tmp, z);
      for (std::size_t q = 0; t + q < cnt; ++q) out[t + q] = tmp[q];
    }
  }
}
