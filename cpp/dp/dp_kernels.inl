// The dp micro-kernels, written once over the ops layer's float64 and int64 lane types (F = simd::F64,
// I = simd::I64 of the including unit's level; see common/simd_scalar.h for what each op guarantees)
// and included by each SIMD translation unit inside its own anonymous namespace (internal linkage:
// every instance is compiled with that unit's ISA flags only). The exp and cos range-reduction
// constants are the layer's (common/simd_base.h); the polynomial coefficients below are dp's own.

template <class F, class I>
struct DpImpl {
  using V = typename F::V;
  using IV = typename I::V;
  static constexpr std::size_t L = F::L;
  static constexpr std::size_t G = 4 * L;  // queries per packed group

  // exp(x) for x <= 0 (and -inf, NaN): range reduction to |r| <= ln2/2, degree-13 Taylor polynomial
  // (truncation below 1e-17 relative), 2^n applied with gradual underflow.
  static V exp_neg(V x) {
    x = F::max(F::set1(-746.0), x);  // keeps NaN (second operand)
    const V n = F::round(F::mul(x, F::set1(simd::kLog2e)));
    const V r = F::reduce_ln2(x, n);
    V p = F::set1(1.0 / 6227020800.0);
    p = F::fma(p, r, F::set1(1.0 / 479001600.0));
    p = F::fma(p, r, F::set1(1.0 / 39916800.0));
    p = F::fma(p, r, F::set1(1.0 / 3628800.0));
    p = F::fma(p, r, F::set1(1.0 / 362880.0));
    p = F::fma(p, r, F::set1(1.0 / 40320.0));
    p = F::fma(p, r, F::set1(1.0 / 5040.0));
    p = F::fma(p, r, F::set1(1.0 / 720.0));
    p = F::fma(p, r, F::set1(1.0 / 120.0));
    p = F::fma(p, r, F::set1(1.0 / 24.0));
    p = F::fma(p, r, F::set1(1.0 / 6.0));
    p = F::fma(p, r, F::set1(0.5));
    p = F::fma(p, r, F::set1(1.0));
    p = F::fma(p, r, F::set1(1.0));
    return F::mul_pow2_subnormal(p, n);
  }

  // cos(a): quadrant reduction by pi/2 in three FMA steps, fdlibm's minimax kernels on [-pi/4, pi/4].
  static V cos_(V a) {
    const V k = F::round(F::mul(a, F::set1(simd::kTwoOverPi)));
    V r = F::fnma(k, F::set1(simd::kPio2A), a);
    r = F::fnma(k, F::set1(simd::kPio2B), r);
    r = F::fnma(k, F::set1(simd::kPio2C), r);
    const V z = F::mul(r, r);
    V c = F::set1(-1.13596475577881948265e-11);
    c = F::fma(c, z, F::set1(2.08757232129817482790e-09));
    c = F::fma(c, z, F::set1(-2.75573143513906633035e-07));
    c = F::fma(c, z, F::set1(2.48015872894767294178e-05));
    c = F::fma(c, z, F::set1(-1.38888888888741095749e-03));
    c = F::fma(c, z, F::set1(4.16666666666666019037e-02));
    c = F::fma(F::mul(z, z), c, F::fnma(F::set1(0.5), z, F::set1(1.0)));
    V s = F::set1(1.58969099521155010221e-10);
    s = F::fma(s, z, F::set1(-2.50507602534068634195e-08));
    s = F::fma(s, z, F::set1(2.75573137070700676789e-06));
    s = F::fma(s, z, F::set1(-1.98412698298579493134e-04));
    s = F::fma(s, z, F::set1(8.33333333332248946124e-03));
    s = F::fma(s, z, F::set1(-1.66666666666666324348e-01));
    s = F::fma(F::mul(z, r), s, r);
    // cos(r + q*pi/2) = cos r, -sin r, -cos r, sin r for q = 0..3: sine on odd q, negated when bit 1
    // of q + 1 is set.
    const IV q = I::sub(F::bits(F::add(k, F::set1(simd::kRoundMagic))), F::bits(F::set1(simd::kRoundMagic)));
    const V v = F::select(I::odd(q), s, c);
    const IV sign = I::template shl<62>(I::band(I::add(q, I::set1(1)), I::set1(2)));
    return F::from_bits(I::bxor(F::bits(v), sign));
  }

  template <int K>
  static V finish(V s, V p) {
    if constexpr (K == gaussian) return exp_neg(F::mul(F::sub(F::zero(), s), p));
    if constexpr (K == laplacian) return exp_neg(F::mul(F::sub(F::zero(), F::sqrt(s)), p));
    if constexpr (K == cauchy) return F::div(F::set1(1.0), F::fma(s, p, F::set1(1.0)));
    if constexpr (K == l2) return F::sqrt(s);
    return s;
  }

  template <int K>
  static V accumulate(V acc, V diff) {
    if constexpr (K == l1) return F::add(acc, F::abs(diff));
    return F::fma(diff, diff, acc);
  }

  // Two rows of X against one packed group of 4L queries: eight independent FMA chains.
  template <int K>
  static void pair_sum_k(const double* X, std::size_t nx, std::size_t d, const double* w, const double* Yp, double p,
                         double* out) {
    const V vp = F::set1(p), zero = F::zero();
    V s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    std::size_t i = 0;
    for (; i + 2 <= nx; i += 2) {
      const double* x0 = X + i * d;
      const double* x1 = x0 + d;
      V a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero, b3 = zero;
      for (std::size_t k = 0; k < d; ++k) {
        const double* y = Yp + k * G;
        const V y0 = F::load(y), y1 = F::load(y + L), y2 = F::load(y + 2 * L), y3 = F::load(y + 3 * L);
        const V u = F::set1(x0[k]), v = F::set1(x1[k]);
        a0 = accumulate<K>(a0, F::sub(u, y0));
        a1 = accumulate<K>(a1, F::sub(u, y1));
        a2 = accumulate<K>(a2, F::sub(u, y2));
        a3 = accumulate<K>(a3, F::sub(u, y3));
        b0 = accumulate<K>(b0, F::sub(v, y0));
        b1 = accumulate<K>(b1, F::sub(v, y1));
        b2 = accumulate<K>(b2, F::sub(v, y2));
        b3 = accumulate<K>(b3, F::sub(v, y3));
      }
      if (w) {
        const V wu = F::set1(w[i]), wv = F::set1(w[i + 1]);
        s0 = F::fma(finish<K>(a0, vp), wu, s0);
        s1 = F::fma(finish<K>(a1, vp), wu, s1);
        s2 = F::fma(finish<K>(a2, vp), wu, s2);
        s3 = F::fma(finish<K>(a3, vp), wu, s3);
        s0 = F::fma(finish<K>(b0, vp), wv, s0);
        s1 = F::fma(finish<K>(b1, vp), wv, s1);
        s2 = F::fma(finish<K>(b2, vp), wv, s2);
        s3 = F::fma(finish<K>(b3, vp), wv, s3);
      } else {
        s0 = F::add(s0, F::add(finish<K>(a0, vp), finish<K>(b0, vp)));
        s1 = F::add(s1, F::add(finish<K>(a1, vp), finish<K>(b1, vp)));
        s2 = F::add(s2, F::add(finish<K>(a2, vp), finish<K>(b2, vp)));
        s3 = F::add(s3, F::add(finish<K>(a3, vp), finish<K>(b3, vp)));
      }
    }
    if (i < nx) {
      const double* x0 = X + i * d;
      V a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      for (std::size_t k = 0; k < d; ++k) {
        const double* y = Yp + k * G;
        const V u = F::set1(x0[k]);
        a0 = accumulate<K>(a0, F::sub(u, F::load(y)));
        a1 = accumulate<K>(a1, F::sub(u, F::load(y + L)));
        a2 = accumulate<K>(a2, F::sub(u, F::load(y + 2 * L)));
        a3 = accumulate<K>(a3, F::sub(u, F::load(y + 3 * L)));
      }
      const V wu = F::set1(w ? w[i] : 1.0);
      s0 = F::fma(finish<K>(a0, vp), wu, s0);
      s1 = F::fma(finish<K>(a1, vp), wu, s1);
      s2 = F::fma(finish<K>(a2, vp), wu, s2);
      s3 = F::fma(finish<K>(a3, vp), wu, s3);
    }
    F::store(out, F::add(F::load(out), s0));
    F::store(out + L, F::add(F::load(out + L), s1));
    F::store(out + 2 * L, F::add(F::load(out + 2 * L), s2));
    F::store(out + 3 * L, F::add(F::load(out + 3 * L), s3));
  }

  static void pair_sum(const double* X, std::size_t nx, std::size_t d, const double* w, const double* Yp, int kind,
                       double p, double* out) {
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

  // Projections of R rows onto 4L consecutive features j0.., plus the offsets: 4R FMA chains (R = 2:
  // eight chains cover the FMA latency and, with the cosine's temporaries, still fit in registers).
  template <std::size_t R>
  static void project(const double* X, std::size_t d, const double* Wt, std::size_t ldw, const double* b,
                      std::size_t j0, V (&acc)[R][4]) {
#pragma GCC unroll 4
    for (std::size_t v = 0; v < 4; ++v) {
      const V bv = F::load(b + j0 + v * L);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) acc[r][v] = bv;
    }
    for (std::size_t k = 0; k < d; ++k) {
      const double* wk = Wt + k * ldw + j0;
      const V w0 = F::load(wk), w1 = F::load(wk + L), w2 = F::load(wk + 2 * L), w3 = F::load(wk + 3 * L);
#pragma GCC unroll 4
      for (std::size_t r = 0; r < R; ++r) {
        const V xr = F::set1(X[r * d + k]);
        acc[r][0] = F::fma(xr, w0, acc[r][0]);
        acc[r][1] = F::fma(xr, w1, acc[r][1]);
        acc[r][2] = F::fma(xr, w2, acc[r][2]);
        acc[r][3] = F::fma(xr, w3, acc[r][3]);
      }
    }
  }

  // round(scale * clamp(c, -1, 1)) as int64, exact: adding 2^52 + 2^51 rounds to an integer.
  static IV fixed(V c, V scale) {
    c = F::min(F::max(c, F::set1(-1.0)), F::set1(1.0));
    return I::sub(F::bits(F::fma(c, scale, F::set1(simd::kRoundMagic))), F::bits(F::set1(simd::kRoundMagic)));
  }

  template <std::size_t R>
  static void rff_rows(const double* X, std::size_t d, const double* Wt, std::size_t ldw, const double* b,
                       std::size_t j0, V scale, IV (&sum)[4]) {
    V acc[R][4];
    project<R>(X, d, Wt, ldw, b, j0, acc);
#pragma GCC unroll 4
    for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (std::size_t v = 0; v < 4; ++v) sum[v] = I::add(sum[v], fixed(cos_(acc[r][v]), scale));
  }

  static void rff_sum(const double* X, std::size_t nx, std::size_t d, const double* Wt, std::size_t ldw,
                      const double* b, std::size_t m, double scale, std::int64_t* acc) {
    const V vs = F::set1(scale);
    for (std::size_t j0 = 0; j0 < m; j0 += G) {
      IV sum[4] = {I::zero(), I::zero(), I::zero(), I::zero()};
      std::size_t i = 0;
      for (; i + 2 <= nx; i += 2) rff_rows<2>(X + i * d, d, Wt, ldw, b, j0, vs, sum);
      for (; i < nx; ++i) rff_rows<1>(X + i * d, d, Wt, ldw, b, j0, vs, sum);
#pragma GCC unroll 4
      for (std::size_t v = 0; v < 4; ++v) {
        std::int64_t* p = acc + j0 + v * L;
        I::store(p, I::add(I::load(p), sum[v]));
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
        for (std::size_t v = 0; v < 4; ++v) F::store(out + r * ldo + j0 + v * L, cos_(acc[r][v]));
    }
  }

  static void rff_features(const double* Y, std::size_t ny, std::size_t d, const double* Wt, std::size_t ldw,
                           const double* b, std::size_t m, double* out, std::size_t ldo) {
    std::size_t i = 0;
    for (; i + 2 <= ny; i += 2) features_rows<2>(Y + i * d, d, Wt, ldw, b, m, out + i * ldo, ldo);
    for (; i < ny; ++i) features_rows<1>(Y + i * d, d, Wt, ldw, b, m, out + i * ldo, ldo);
  }
};
