// The softmax kernels, written once over an ops type D of the SIMD layer (simd::F32 or simd::F64 of
// the including unit's level, see common/simd_scalar.h) and included by each ISA translation unit
// inside its own anonymous namespace, so every instance has internal linkage and is compiled with
// that unit's flags only (nothing here may be included from a shared header).
//
// Besides plain arithmetic the kernels rely on these documented properties of the layer's ops: max
// and min return the second operand when either is NaN (exp_minus keeps NaN out of the polynomial
// that way), mul_pow2 gives 0 below the normal range (terms that small are below the accuracy
// floor), and reduce_max may drop a NaN (callers detect NaN through the sum instead). Block sums are
// carried in D::Wide, L lanes of double.

constexpr std::size_t kLanesPerBlock = 32;  // terms each lane sums in T before widening to double

// Coefficients of exp(r) on |r| <= 0.3535 (Chebyshev interpolation, computed for numkern):
// degree 6 for float (3e-9 relative), degree 11 for double (2.2e-16); both exact at r = 0,
// so a length-1 or constant slice gives exactly 1/n and log-softmax exactly -log(n).
constexpr double kExpF32[7] = {1.0,
                               1.0000000424795916,
                               0.50000000530672546,
                               0.16666394781877129,
                               0.041666327002285450,
                               0.0083768185024571339,
                               0.0013943221766582857};
constexpr double kExpF64[12] = {1.0,
                                1.0,
                                0.50000000000000224136,
                                0.16666666666666683903,
                                0.041666666666457425822,
                                0.0083333333333172421768,
                                0.0013888888960322004823,
                                0.00019841269896204482968,
                                0.000024801477081854494297,
                                2.7557234458834413975e-6,
                                2.7635686502562534462e-7,
                                2.5112380558500830529e-8};

template <class D>
struct SoftmaxImpl {
  using T = typename D::T;
  using V = typename D::V;
  using DW = typename D::Wide;
  using W = typename DW::V;
  static constexpr std::size_t L = D::L;
  static constexpr std::size_t kBlock = kLanesPerBlock * L;
  static constexpr double kInitExp = -1073741824.0;  // -2^30: below any exponent a clamped input gives

  // x is clamped to >= -kClampExt before exp(x) (n = round(x*log2e) stays far inside double's
  // exponent range); x - max is clamped to >= -kClampExp, large enough that exp(-kClampExp) * e
  // rounds to exactly 0 in T, so -inf inputs give 0.
  static constexpr double kClampExt = 2097152.0;
  static constexpr double kClampExp = sizeof(T) == 4 ? 110.0 : 760.0;

  // exp(r) on |r| <= ln2/2 * 1.02 (Horner).
  static V exp_poly(V r) {
    if constexpr (sizeof(T) == 4) {
      V p = D::set1(float(kExpF32[6]));
      for (int k = 5; k >= 0; --k) p = D::fma(p, r, D::set1(float(kExpF32[k])));
      return p;
    } else {
      V p = D::set1(kExpF64[11]);
      for (int k = 10; k >= 0; --k) p = D::fma(p, r, D::set1(kExpF64[k]));
      return p;
    }
  }

  // exp(x) = p * 2^n, with no overflow for any finite x; NaN/+inf give a NaN p.
  static void exp_ext(V x, V& p, V& n) {
    x = D::max(D::set1(T(-kClampExt)), x);
    n = D::round(D::mul(x, D::set1(T(simd::kLog2e))));
    p = exp_poly(D::reduce_ln2(x, n));
  }

  // exp(x - mx) for x <= mx, the difference kept exact through its rounding error (TwoSum), so
  // outputs far below 1 keep their relative accuracy.
  static V exp_minus(V x, V mx) {
    const V t = D::sub(x, mx);
    const V xr = D::add(t, mx);
    const V mr = D::sub(xr, t);
    // |err| <= ulp(t)/2 is tiny whenever t is above the clamp; below it err can be huge (x = -3e38,
    // max = 1e30 gives err = -1e30) or NaN (x = -inf), and must not reach the polynomial. Clamping
    // to [-1, 1] (max() maps NaN to -1) keeps both harmless: exp(-kClampExp + 1) still rounds to 0.
    const V err = D::min(D::max(D::add(D::sub(x, xr), D::sub(mr, mx)), D::set1(T(-1))), D::set1(T(1)));
    const V tc = D::max(D::set1(T(-kClampExp)), t);
    const V n = D::round(D::mul(tc, D::set1(T(simd::kLog2e))));
    const V r = D::add(D::reduce_ln2(tc, n), err);
    return D::mul_pow2(exp_poly(r), n);
  }

  static void ext_acc(V& m, V& e, V x) {
    V p, n;
    exp_ext(x, p, n);
    const V e_new = D::max(e, n);
    m = D::add(D::mul_pow2(m, D::sub(e, e_new)), D::mul_pow2(p, D::sub(n, e_new)));
    e = e_new;
  }
  static void ext_merge(V& m, V& e, V m2, V e2) {
    const V e_new = D::max(e, e2);
    m = D::add(D::mul_pow2(m, D::sub(e, e_new)), D::mul_pow2(m2, D::sub(e2, e_new)));
    e = e_new;
  }

  // Where the kernels below read x: in place (Plain), or under a where= mask of one byte per
  // element (Masked: a lane whose byte is 0 reads -inf), so a masked slice needs no select pass
  // and no copy. tail(i, c) reads the c < L lanes at i, -inf in the others.
  struct Plain {
    const T* x;
    V load(std::size_t i) const { return D::load(x + i); }
    V tail(std::size_t i, std::size_t c) const { return simd::load_partial<D>(x + i, c, -__builtin_inf()); }
  };
  struct Masked {
    const T* x;
    const std::uint8_t* m;
    V load(std::size_t i) const {
      return D::select(D::nonzero_bytes(m + i), D::load(x + i), D::set1(-__builtin_inf()));
    }
    V tail(std::size_t i, std::size_t c) const {
      std::uint8_t bytes[L] = {};  // the mask is not read past its end
      __builtin_memcpy(bytes, m + i, c);
      return D::select(D::nonzero_bytes(bytes), simd::load_partial<D>(x + i, c, -__builtin_inf()),
                       D::set1(-__builtin_inf()));
    }
  };

  static ExtSum raddextexp(const T* x, std::size_t n) { return addextexp(Plain{x}, n); }
  static ExtSum raddextexp_masked(const T* x, const std::uint8_t* m, std::size_t n) {
    return addextexp(Masked{x, m}, n);
  }

  template <class Src>
  static ExtSum addextexp(const Src& x, std::size_t n) {
    const V zero = D::set1(T(0)), init = D::set1(T(kInitExp));
    W wm = DW::zero(), we = DW::set1(kInitExp);
    std::size_t i = 0;
    while (i < n) {
      const std::size_t end = i + kBlock < n ? i + kBlock : n;
      V m0 = zero, m1 = zero, m2 = zero, m3 = zero, e0 = init, e1 = init, e2 = init, e3 = init;
      for (; i + 4 * L <= end; i += 4 * L) {
        ext_acc(m0, e0, x.load(i));
        ext_acc(m1, e1, x.load(i + L));
        ext_acc(m2, e2, x.load(i + 2 * L));
        ext_acc(m3, e3, x.load(i + 3 * L));
      }
      for (; i + L <= end; i += L) ext_acc(m0, e0, x.load(i));
      if (i < end) {
        ext_acc(m1, e1, x.tail(i, end - i));
        i = end;
      }
      ext_merge(m0, e0, m1, e1);
      ext_merge(m2, e2, m3, e3);
      ext_merge(m0, e0, m2, e2);
      const W bm = D::widen(m0), be = D::widen(e0);
      const W e_new = DW::max(we, be);
      wm = DW::add(DW::mul_pow2(wm, DW::sub(we, e_new)), DW::mul_pow2(bm, DW::sub(be, e_new)));
      we = e_new;
    }
    double ms[DW::L], es[DW::L];
    DW::store(ms, wm);
    DW::store(es, we);
    ExtSum s{0.0, kInitExp};
    for (std::size_t j = 0; j < DW::L; ++j) {
      if (ms[j] != ms[j]) return ExtSum{ms[j], es[j]};
      const double e_new = s.e > es[j] ? s.e : es[j];
      s.m = __builtin_ldexp(s.m, clamp_shift(s.e - e_new)) + __builtin_ldexp(ms[j], clamp_shift(es[j] - e_new));
      s.e = e_new;
    }
    return s;
  }

  static int clamp_shift(double d) { return d < -4000.0 ? -4000 : static_cast<int>(d); }

  struct ScaleExtExp {
    V vinv, ve;
    V operator()(V v) const {
      V p, k;
      exp_ext(v, p, k);
      return D::mul_pow2(D::mul(p, vinv), D::sub(k, ve));
    }
  };
  static void vscaleextexp(const T* x, T* y, std::size_t n, T inv_m, T e) {
    map(x, y, n, ScaleExtExp{D::set1(inv_m), D::set1(e)});
  }
  // Same, with non-temporal stores: for outputs far larger than cache, skipping the
  // read-for-ownership of y saves a third of pass 2's memory traffic.
  static void vscaleextexp_stream(const T* x, T* y, std::size_t n, T inv_m, T e) {
    map_stream(Plain{x}, y, n, ScaleExtExp{D::set1(inv_m), D::set1(e)});
  }
  static void vscaleextexp_masked(const T* x, const std::uint8_t* m, T* y, std::size_t n, T inv_m, T e, bool stream) {
    const ScaleExtExp f{D::set1(inv_m), D::set1(e)};
    if (stream) return map_stream(Masked{x, m}, y, n, f);
    map_src(Masked{x, m}, y, 0, n, f);
  }

  // y[i] = f(x[i]) for i in [i0, n) through a source (Plain or Masked).
  template <class Src, class F>
  static void map_src(const Src& x, T* y, std::size_t i, std::size_t n, F f) {
    for (; i + 2 * L <= n; i += 2 * L) {
      const V a = f(x.load(i)), b = f(x.load(i + L));
      D::store(y + i, a);
      D::store(y + i + L, b);
    }
    for (; i + L <= n; i += L) D::store(y + i, f(x.load(i)));
    if (i < n) simd::store_partial<D>(y + i, f(x.tail(i, n - i)), n - i);
  }
  // The same with non-temporal stores from the first vector-aligned y on.
  template <class Src, class F>
  static void map_stream(const Src& x, T* y, std::size_t n, F f) {
    const std::size_t addr = reinterpret_cast<std::size_t>(y);
    std::size_t i = 0;
    if (addr % sizeof(T) == 0) {  // else all plain stores (the bindings pass element-aligned y)
      std::size_t head = (D::kBytes - addr % D::kBytes) % D::kBytes / sizeof(T);
      if (head > n) head = n;
      if (head) simd::store_partial<D>(y, f(x.tail(0, head)), head);
      for (i = head; i + 2 * L <= n; i += 2 * L) {
        const V a = f(x.load(i)), b = f(x.load(i + L));
        D::stream(y + i, a);
        D::stream(y + i + L, b);
      }
    }
    map_src(x, y, i, n, f);
    simd::stream_fence();
  }

  static T rmax(const T* x, std::size_t n) {
    const V ninf = D::set1(-__builtin_inf());
    V a0 = ninf, a1 = ninf, a2 = ninf, a3 = ninf;
    std::size_t i = 0;
    for (; i + 4 * L <= n; i += 4 * L) {
      a0 = D::max(a0, D::load(x + i));
      a1 = D::max(a1, D::load(x + i + L));
      a2 = D::max(a2, D::load(x + i + 2 * L));
      a3 = D::max(a3, D::load(x + i + 3 * L));
    }
    for (; i + L <= n; i += L) a0 = D::max(a0, D::load(x + i));
    if (i < n) a1 = D::max(a1, simd::load_partial<D>(x + i, n - i, -__builtin_inf()));
    return D::reduce_max(D::max(D::max(a0, a1), D::max(a2, a3)));
  }

  // Sums four accumulators of T per block into double lanes, so rounding error stays at
  // kLanesPerBlock terms in T whatever n is.
  template <bool kStore>
  static double sum_exp_minus(const T* x, T* y, std::size_t n, T max) {
    const V vmax = D::set1(max), zero = D::set1(T(0));
    W w = DW::zero();
    std::size_t i = 0;
    while (i < n) {
      const std::size_t end = i + kBlock < n ? i + kBlock : n;
      V s0 = zero, s1 = zero, s2 = zero, s3 = zero;
      for (; i + 4 * L <= end; i += 4 * L) {
        const V a = exp_minus(D::load(x + i), vmax), b = exp_minus(D::load(x + i + L), vmax);
        const V c = exp_minus(D::load(x + i + 2 * L), vmax), d = exp_minus(D::load(x + i + 3 * L), vmax);
        if (kStore) {
          D::store(y + i, a);
          D::store(y + i + L, b);
          D::store(y + i + 2 * L, c);
          D::store(y + i + 3 * L, d);
        }
        s0 = D::add(s0, a);
        s1 = D::add(s1, b);
        s2 = D::add(s2, c);
        s3 = D::add(s3, d);
      }
      for (; i + L <= end; i += L) {
        const V a = exp_minus(D::load(x + i), vmax);
        if (kStore) D::store(y + i, a);
        s0 = D::add(s0, a);
      }
      if (i < end) {
        const V a = exp_minus(simd::load_partial<D>(x + i, end - i, -__builtin_inf()), vmax);
        if (kStore) simd::store_partial<D>(y + i, a, end - i);
        s1 = D::add(s1, a);
        i = end;
      }
      w = DW::add(w, D::widen(D::add(D::add(s0, s1), D::add(s2, s3))));
    }
    return DW::reduce_add(w);
  }

  static double raddstoreexpminusmax(const T* x, T* y, std::size_t n, T max) {
    return sum_exp_minus<true>(x, y, n, max);
  }
  static double raddexpminusmax(const T* x, std::size_t n, T max) { return sum_exp_minus<false>(x, nullptr, n, max); }

  template <class F>
  static void map(const T* x, T* y, std::size_t n, F f) {
    std::size_t i = 0;
    for (; i + 2 * L <= n; i += 2 * L) {
      const V a = f(D::load(x + i)), b = f(D::load(x + i + L));
      D::store(y + i, a);
      D::store(y + i + L, b);
    }
    for (; i + L <= n; i += L) D::store(y + i, f(D::load(x + i)));
    if (i < n) simd::store_partial<D>(y + i, f(simd::load_partial<D>(x + i, n - i, T(0))), n - i);
  }

  static void vscaleexpminusmax(const T* x, T* y, std::size_t n, T max, T scale) {
    const V vmax = D::set1(max), vs = D::set1(scale);
    map(x, y, n, [&](V v) { return D::mul(exp_minus(v, vmax), vs); });
  }
  static void vscale(const T* x, T* y, std::size_t n, T scale) {
    const V vs = D::set1(scale);
    map(x, y, n, [&](V v) { return D::mul(v, vs); });
  }
  static void vsubc2(const T* x, T* y, std::size_t n, T hi, T lo) {
    const V vh = D::set1(hi), vl = D::set1(lo);
    map(x, y, n, [&](V v) { return D::sub(D::sub(v, vh), vl); });
  }
  static void vsubc2_masked(const T* x, const std::uint8_t* m, T* y, std::size_t n, T hi, T lo) {
    const V vh = D::set1(hi), vl = D::set1(lo);
    map_src(Masked{x, m}, y, 0, n, [&](V v) { return D::sub(D::sub(v, vh), vl); });
  }

  static void fill(T* y, std::size_t n, T v) {
    for (std::size_t i = 0; i < n; ++i) y[i] = v;
  }

  // Whole short rows in one call (max; store exp(x - max) and sum; rescale), so a row that stays
  // in L1 pays no per-row dispatch. Special rows follow scipy: a NaN or +-inf max, or a NaN sum,
  // makes the row NaN.
  static void softmax_rows(const T* x, std::ptrdiff_t xstride, T* y, std::ptrdiff_t ystride, std::size_t n,
                           std::size_t rows) {
    for (std::size_t r = 0; r < rows; ++r, x += xstride, y += ystride) {
      const T mx = rmax(x, n);
      const double sum = mx - mx == 0 ? sum_exp_minus<true>(x, y, n, mx) : __builtin_nan("");
      if (sum != sum) {
        fill(y, n, T(__builtin_nan("")));
        continue;
      }
      vscale(y, y, n, T(1.0 / sum));
    }
  }

  // Log-softmax of whole short rows, max-based: y = (x - max) - log(sum exp(x - max)).
  static void log_softmax_rows(const T* x, std::ptrdiff_t xstride, T* y, std::ptrdiff_t ystride, std::size_t n,
                               std::size_t rows) {
    const T inf = T(__builtin_inf()), nan = T(__builtin_nan(""));
    for (std::size_t r = 0; r < rows; ++r, x += xstride, y += ystride) {
      const T mx = rmax(x, n);
      if (mx == inf) {  // as scipy: -inf, NaN at the +inf entries; all NaN if a NaN is present
        bool has_nan = false;
        for (std::size_t i = 0; i < n; ++i) has_nan |= x[i] != x[i];
        for (std::size_t i = 0; i < n; ++i) y[i] = has_nan || x[i] == inf ? nan : -inf;
        continue;
      }
      const double sum = mx - mx == 0 ? sum_exp_minus<false>(x, nullptr, n, mx) : __builtin_nan("");
      if (sum != sum) {
        fill(y, n, nan);
        continue;
      }
      vsubc2(x, y, n, mx, T(__builtin_log(sum)));
    }
  }

  // sum_i a_i * b_i (kDot) or sum_i a_i, with the block sums of sum_exp_minus: T within a block
  // of kLanesPerBlock terms per lane, double across blocks.
  template <bool kDot>
  static double sum_terms(const T* a, const T* b, std::size_t n) {
    const V zero = D::set1(T(0));
    auto term = [&](std::size_t i) { return kDot ? D::mul(D::load(a + i), D::load(b + i)) : D::load(a + i); };
    W w = DW::zero();
    std::size_t i = 0;
    while (i < n) {
      const std::size_t end = i + kBlock < n ? i + kBlock : n;
      V s0 = zero, s1 = zero, s2 = zero, s3 = zero;
      for (; i + 4 * L <= end; i += 4 * L) {
        s0 = D::add(s0, term(i));
        s1 = D::add(s1, term(i + L));
        s2 = D::add(s2, term(i + 2 * L));
        s3 = D::add(s3, term(i + 3 * L));
      }
      for (; i + L <= end; i += L) s0 = D::add(s0, term(i));
      if (i < end) {
        const V t = simd::load_partial<D>(a + i, end - i, T(0));
        s1 = D::add(s1, kDot ? D::mul(t, simd::load_partial<D>(b + i, end - i, T(0))) : t);
        i = end;
      }
      w = DW::add(w, D::widen(D::add(D::add(s0, s1), D::add(s2, s3))));
    }
    return DW::reduce_add(w);
  }
  static double rdot(const T* a, const T* b, std::size_t n) { return sum_terms<true>(a, b, n); }
  static double rsum(const T* a, std::size_t n) { return sum_terms<false>(a, nullptr, n); }

  template <class F>
  static void map2(const T* a, const T* b, T* y, std::size_t n, F f) {
    std::size_t i = 0;
    for (; i + 2 * L <= n; i += 2 * L) {
      const V u = f(D::load(a + i), D::load(b + i)), v = f(D::load(a + i + L), D::load(b + i + L));
      D::store(y + i, u);
      D::store(y + i + L, v);
    }
    for (; i + L <= n; i += L) D::store(y + i, f(D::load(a + i), D::load(b + i)));
    if (i < n)
      simd::store_partial<D>(
          y + i, f(simd::load_partial<D>(a + i, n - i, T(0)), simd::load_partial<D>(b + i, n - i, T(0))), n - i);
  }
  // map2 with non-temporal stores from the first vector-aligned output on.
  template <class F>
  static void map2_stream(const T* a, const T* b, T* y, std::size_t n, F f) {
    const std::size_t addr = reinterpret_cast<std::size_t>(y);
    if (addr % sizeof(T) != 0) return map2(a, b, y, n, f);
    std::size_t head = (D::kBytes - addr % D::kBytes) % D::kBytes / sizeof(T);
    if (head > n) head = n;
    map2(a, b, y, head, f);
    std::size_t i = head;
    for (; i + 2 * L <= n; i += 2 * L) {
      const V u = f(D::load(a + i), D::load(b + i)), v = f(D::load(a + i + L), D::load(b + i + L));
      D::stream(y + i, u);
      D::stream(y + i + L, v);
    }
    map2(a + i, b + i, y + i, n - i, f);
    simd::stream_fence();
  }
  template <class F>
  static void map2_maybe_stream(const T* a, const T* b, T* y, std::size_t n, bool stream, F f) {
    if (stream) return map2_stream(a, b, y, n, f);
    map2(a, b, y, n, f);
  }
  // Softmax backward: dx_i = y_i * (dy_i - s) with s = sum_j y_j dy_j.
  static void vsoftmax_backward(const T* y, const T* dy, T* dx, std::size_t n, T s, bool stream) {
    const V vs = D::set1(s);
    map2_maybe_stream(y, dy, dx, n, stream, [&](V a, V b) { return D::mul(a, D::sub(b, vs)); });
  }
  // Log-softmax backward: dx_i = dy_i - exp(y_i) * s with s = sum_j dy_j. A log-softmax output is
  // <= 0 (up to rounding); y is capped at kMaxBackwardExp so exp(y) keeps the layer's exponent
  // range (min keeps a NaN y: the second operand when either is NaN).
  static constexpr double kMaxBackwardExp = sizeof(T) == 4 ? 88.0 : 709.0;
  static void vlog_softmax_backward(const T* y, const T* dy, T* dx, std::size_t n, T s, bool stream) {
    const V vs = D::set1(s), zero = D::set1(T(0)), cap = D::set1(T(kMaxBackwardExp));
    map2_maybe_stream(y, dy, dx, n, stream, [&](V a, V b) { return D::fnma(exp_minus(D::min(cap, a), zero), vs, b); });
  }

  // x[i] is loaded whatever m[i] is, so the select is a blend, not a branch. It runs
  // on runs of a few KiB that stay in L1.
  static void vselect(const T* x, const std::uint8_t* m, T* y, std::size_t n, T fill) {
    const V f = D::set1(fill);
    std::size_t i = 0;
    for (; i + 2 * L <= n; i += 2 * L) {
      const V a = D::select(D::nonzero_bytes(m + i), D::load(x + i), f);
      const V b = D::select(D::nonzero_bytes(m + i + L), D::load(x + i + L), f);
      D::store(y + i, a);
      D::store(y + i + L, b);
    }
    for (; i < n; ++i) y[i] = m[i] != 0 ? x[i] : fill;
  }

  static constexpr TypedKernels<T> table() {
    return TypedKernels<T>{&raddextexp,
                           &vscaleextexp,
                           &vscaleextexp_stream,
                           &rmax,
                           &raddstoreexpminusmax,
                           &raddexpminusmax,
                           &vscaleexpminusmax,
                           &vscale,
                           &vsubc2,
                           &softmax_rows,
                           &log_softmax_rows,
                           &rdot,
                           &rsum,
                           &vsoftmax_backward,
                           &vlog_softmax_backward,
                           &vselect,
                           &raddextexp_masked,
                           &vscaleextexp_masked,
                           &vsubc2_masked};
  }
};
