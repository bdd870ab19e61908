// The dp micro-kernels, written once over a vector-traits type D of float64 lanes and included by
// each SIMD translation unit inside its own anonymous namespace (internal linkage: every instance
// is compiled with that unit's ISA flags only).
//
// D provides: V (L doubles), I (L int64), load, store, set1, add, sub, mul, div, fmadd(a,b,c) = a*b+c,
// fnmadd(a,b,c) = c-a*b, abs, sqrt, max/min with x86 rules (the second operand is returned when
// either is NaN), round (to nearest), scale2(p, n) = p * 2^n for integer-valued n in [-1100, 0]
// (gradual underflow), bits/from_bits (reinterpretation), iadd, isub, iand, ixor, slli<k>,
// iset1, iload, istore, select_bit0(k, a, b) = (k & 1) ? b : a lane-wise.

constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2Hi = 0x1.62e42fefa39efp-1, kLn2Lo = 0x1.abc9e3b39803fp-56;
constexpr double kTwoOverPi = 0.63661977236758134308;
// pi/2 in three parts: each FMA step of the reduction is exact while |k| < 2^30.
constexpr double kPio2A = 0x1.921fb54442d18p+0, kPio2B = 0x1.1a62633145c07p-54, kPio2C = -0x1.f1976b7ed8fbcp-110;
constexpr double kMagic = 6755399441055744.0;  // 2^52 + 2^51: an integer-valued double lands in the low bits

template <class D>
struct DpImpl {
  using V = typename D::V;
  using I = typename D::I;
  static constexpr std::size_t L = D::L;
  static constexpr std::size_t G = 4 * L;  // queries per packed group

  // exp(x) for x <= 0 (and -inf, NaN): range reduction to |r| <= ln2/2, degree-13 Taylor polynomial
  // (truncation below 1e-17 relative), 2^n applied with gradual underflow.
  static V exp_neg(V x) {
    x = D::max(D::set1(-746.0), x);  // keeps NaN (second operand)
    const V n = D::round(D::mul(x, D::set1(kLog2e)));
    V r = D::fnmadd(n, D::set1(kLn2Hi), x);
    r = D::fnmadd(n, D::set1(kLn2Lo), r);
    V p = D::set1(1.0 / 6227020800.0);
    p = D::fmadd(p, r, D::set1(1.0 / 479001600.0));
    p = D::fmadd(p, r, D::set1(1.0 / 39916800.0));
    p = D::fmadd(p, r, D::set1(1.0 / 3628800.0));
    p = D::fmadd(p, r, D::set1(1.0 / 362880.0));
    p = D::fmadd(p, r, D::set1(1.0 / 40320.0));
    p = D::fmadd(p, r, D::set1(1.0 / 5040.0));
    p = D::fmadd(p, r, D::set1(1.0 / 720.0));
    p = D::fmadd(p, r, D::set1(1.0 / 120.0));
    p = D::fmadd(p, r, D::set1(1.0 / 24.0));
    p = D::fmadd(p, r, D::set1(1.0 / 6.0));
    p = D::fmadd(p, r, D::set1(0.5));
    p = D::fmadd(p, r, D::set1(1.0));
    p = D::fmadd(p, r, D::set1(1.0));
    return D::scale2(p, n);
  }

  // cos(a): quadrant reduction by pi/2 in three FMA steps, fdlibm's minimax kernels on [-pi/4, pi/4].
  static V cos_(V a) {
    const V k = D::round(D::mul(a, D::set1(kTwoOverPi)));
    V r = D::fnmadd(k, D::set1(kPio2A), a);
    r = D::fnmadd(k, D::set1(kPio2B), r);
    r = D::fnmadd(k, D::set1(kPio2C), r);
    const V z = D::mul(r, r);
    V c = D::set1(-1.13596475577881948265e-11);
    c = D::fmadd(c, z, D::set1(2.08757232129817482790e-09));
    c = D::fmadd(c, z, D::set1(-2.75573143513906633035e-07));
    c = D::fmadd(c, z, D::set1(2.48015872894767294178e-05));
    c = D::fmadd(c, z, D::set1(-1.38888888888741095749e-03));
    c = D::fmadd(c, z, D::set1(4.16666666666666019037e-02));
    c = D::fmadd(D::mul(z, z), c, D::fnmadd(D::set1(0.5), z, D::set1(1.0)));
    V s = D::set1(1.58969099521155010221e-10);
    s = D::fmadd(s, z, D::set1(-2.50507602534068634195e-08));
    s = D::fmadd(s, z, D::set1(2.75573137070700676789e-06));
    s = D::fmadd(s, z, D::set1(-1.98412698298579493134e-04));
    s = D::fmadd(s, z, D::set1(8.33333333332248946124e-03));
    s = D::fmadd(s, z, D::set1(-1.66666666666666324348e-01));
    s = D::fmadd(D::mul(z, r), s, r);
    // cos(r + q*pi/2) = cos r, -sin r, -cos r, sin r for q = 0..3: sine on odd q, negated when bit 1
    // of q + 1 is set.
    const I q = D::isub(D::bits(D::add(k, D::set1(kMagic))), D::bits(D::set1(kMagic)));
    const V v = D::select_bit0(q, c, s);
    const I sign = D::template slli<62>(D::iand(D::iadd(q, D::iset1(1)), D::iset1(2)));
    return D::from_bits(D::ixor(D::bits(v), sign));
  }

  template <int K>
  static V finish(V s, V p) {
    if constexpr (K == gaussian) return exp_neg(D::mul(D::sub(D::set1(0.0), s), p));
    if constexpr (K == laplacian) return exp_neg(D::mul(D::sub(D::set1(0.0), D::sqrt(s)), p));
    if constexpr (K == cauchy) return D::div(D::set1(1.0), D::fmadd(s, p, D::set1(1.0)));
    if constexpr (K == l2) return D::sqrt(s);
    return s;
  }

  template <int K>
  static V accumulate(V acc, V diff) {
    if constexpr (K == l1) return D::add(acc, D::abs(diff));
    return D::fmadd(diff, diff, acc);
  }

  // Two rows of X against one packed group of 4L queries: eight independent FMA chains.
  template <int K>
  static void pair_sum_k(const double* X, std::size_t nx, std::size_t d, const double* w, const double* Yp, double p,
                         double* out) {
    const V vp = D::set1(p), zero = D::set1(0.0);
    V s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    std::size_t i = 0;
    for (; i + 2 <= nx; i += 2) {
      const double* x0 = X + i * d;
      const double* x1 = x0 + d;
      V a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero, b3 = zero;
      for (std::size_t k = 0; k < d; ++k) {
        const double* y = Yp + k * G;
        const V y0 = D::load(y), y1 = D::load(y + L), y2 = D::load(y + 2 * L), y3 = D::load(y + 3 * L);
        const V u = D::set1(x0[k]), v = D::set1(x1[k]);
        a0 = accumulate<K>(a0, D::sub(u, y0));
        a1 = accumulate<K>(a1, D::sub(u, y1));
        a2 = accumulate<K>(a2, D::sub(u, y2));
        a3 = accumulate<K>(a3, D::sub(u, y3));
        b0 = accumulate<K>(b0, D::sub(v, y0));
        b1 = accumulate<K>(b1, D::sub(v, y1));
        b2 = accumulate<K>(b2, D::sub(v, y2));
        b3 = accumulate<K>(b3, D::sub(v, y3));
      }
      if (w) {
        const V wu = D::set1(w[i]), wv = D::set1(w[i + 1]);
        s0 = D::fmadd(finish<K>(a0, vp), wu, s0);
        s1 = D::fmadd(finish<K>(a1, vp), wu, s1);
        s2 = D::fmadd(finish<K>(a2, vp), wu, s2);
        s3 = D::fmadd(finish<K>(a3, vp), wu, s3);
        s0 = D::fmadd(finish<K>(b0, vp), wv, s0);
        s1 = D::fmadd(finish<K>(b1, vp), wv, s1);
        s2 = D::fmadd(finish<K>(b2, vp), wv, s2);
        s3 = D::fmadd(finish<K>(b3, vp), wv, s3);
      } else {
        s0 = D::add(s0, D::add(finish<K>(a0, vp), finish<K>(b0, vp)));
        s1 = D::add(s1, D::add(finish<K>(a1, vp), finish<K>(b1, vp)));
        s2 = D::add(s2, D::add(finish<K>(a2, vp), finish<K>(b2, vp)));
        s3 = D::add(s3, D::add(finish<K>(a3, vp), finish<K>(b3, vp)));
      }
    }
    if (i < nx) {
      const double* x0 = X + i * d;
      V a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      for (std::size_t k = 0; k < d; ++k) {
        const double* y = Yp + k * G;
        const V u = D::set1(x0[k]);
        a0 = accumulate<K>(a0, D::sub(u, D::load(y)));
        a1 = accumulate<K>(a1, D::sub(u, D::load(y + L)));
        a2 = accumulate<K>(a2, D::sub(u, D::load(y + 2 * L)));
        a3 = accumulate<K>(a3, D::sub(u, D::load(y + 3 * L)));
      }
      const V wu = D::set1(w ? w[i] : 1.0);
      s0 = D::fmadd(finish<K>(a0, vp), wu, s0);
      s1 = D::fmadd(finish<K>(a1, vp), wu, s1);
      s2 = D::fmadd(finish<K>(a2, vp), wu, s2);
      s3 = D::fmadd(finish<K>(a3, vp), wu, s3);
    }
    D::store(out, D::add(D::load(out), s0));
    D::store(out + L, D::add(D::load(out + L), s1));
    D::store(out + 2 * L, D::add(D::load(out + 2 * L), s2));
    D::store(out + 3 * L, D::add(D::load(out + 3 * L), s3));
  }

  static void pair_sum(const double* X, std::size_t nx, std::size_t d, const double* w, const double* Yp, int kind,
                       double p, double* out) {
    switch (kind) {
      case gaussian: return pair_sum_k<gaussian>(X, nx, d, w, Yp, p, out);
      case laplacian: return pair_sum_k<laplacian>(X, nx, d, w, Yp, p, out);
      case cauchy: return pair_sum_k<cauchy>(X, nx, d, w, Yp, p, out);
      case l1: return pair_sum_k<l1>(X, nx, d, w, Yp, p, out);
      case l2: return pair_sum_k<l2>(X, nx, d, w, Yp, p, out);
      default: return pair_sum_k<sqeuclidean>(X, nx, d, w, Yp, p, out);
    }
  }

  // Projections of R rows onto 4L consecutive features j0.., plus the offsets: 4R FMA chains (R = 2:
// eight chains cover the FMA latency and, with the cosine's temporaries, still fit in registers).
  template <std::size_t R>
  static void project(const double* X, std::size_t d, const double* Wt, std::size_t ldw, const double* b,
                      std::size_t j0, V (&acc)[R][4]) {
#pragma GCC unroll 4
    for (std::size_t v = 0; v < 4; ++v) {
      const V bv = D::load(b + j0 + v * L);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) acc[r][v] = bv;
    }
    for (std::size_t k = 0; k < d; ++k) {
      const double* wk = Wt + k * ldw + j0;
      const V w0 = D::load(wk), w1 = D::load(wk + L), w2 = D::load(wk + 2 * L), w3 = D::load(wk + 3 * L);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const V xr = D::set1(X[r * d + k]);
        acc[r][0] = D::fmadd(xr, w0, acc[r][0]);
        acc[r][1] = D::fmadd(xr, w1, acc[r][1]);
        acc[r][2] = D::fmadd(xr, w2, acc[r][2]);
        acc[r][3] = D::fmadd(xr, w3, acc[r][3]);
      }
    }
  }

  // round(scale * clamp(c, -1, 1)) as int64, exact: adding 2^52 + 2^51 rounds to an integer.
  static I fixed(V c, V scale) {
    c = D::min(D::max(c, D::set1(-1.0)), D::set1(1.0));
    return D::isub(D::bits(D::fmadd(c, scale, D::set1(kMagic))), D::bits(D::set1(kMagic)));
  }

  template <std::size_t R>
  static void rff_rows(const double* X, std::size_t d, const double* Wt, std::size_t ldw, const double* b,
                       std::size_t j0, V scale, I (&sum)[4]) {
    V acc[R][4];
    project<R>(X, d, Wt, ldw, b, j0, acc);
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (std::size_t v = 0; v < 4; ++v) sum[v] = D::iadd(sum[v], fixed(cos_(acc[r][v]), scale));
  }

  static void rff_sum(const double* X, std::size_t nx, std::size_t d, const double* Wt, std::size_t ldw,
                      const double* b, std::size_t m, double scale, std::int64_t* acc) {
    const V vs = D::set1(scale);
    for (std::size_t j0 = 0; j0 < m; j0 += G) {
      I sum[4] = {D::iset1(0), D::iset1(0), D::iset1(0), D::iset1(0)};
      std::size_t i = 0;
      for (; i + 2 <= nx; i += 2) rff_rows<2>(X + i * d, d, Wt, ldw, b, j0, vs, sum);
      for (; i < nx; ++i) rff_rows<1>(X + i * d, d, Wt, ldw, b, j0, vs, sum);
#pragma GCC unroll 4
      for (std::size_t v = 0; v < 4; ++v) {
        std::int64_t* p = acc + j0 + v * L;
        D::istore(p, D::iadd(D::iload(p), sum[v]));
      }
    }
  }

  template <std::size_t R>
  static void features_rows(const double* Y, std::size_t d, const double* Wt, std::size_t ldw, const double* b,
                            std::size_t m, double* out, std::size_t ldo) {
    for (std::size_t j0 = 0; j0 < m; j0 += G) {
      V acc[R][4];
      project<R>(Y, d, Wt, ldw, b, j0, acc);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < 4; ++v) D::store(out + r * ldo + j0 + v * L, cos_(acc[r][v]));
    }
  }

  static void rff_features(const double* Y, std::size_t ny, std::size_t d, const double* Wt, std::size_t ldw,
                           const double* b, std::size_t m, double* out, std::size_t ldo) {
    std::size_t i = 0;
    for (; i + 2 <= ny; i += 2) features_rows<2>(Y + i * d, d, Wt, ldw, b, m, out + i * ldo, ldo);
    for (; i < ny; ++i) features_rows<1>(Y + i * d, d, Wt, ldw, b, m, out + i * ldo, ldo);
  }
};
