// The float norm kernels, written once over an ops type D of the SIMD layer (simd::F32 or simd::F64
// of common/simd_<isa>.h) and included by each ISA translation unit inside its own anonymous
// namespace (internal linkage, that unit's flags only).
//
// The reductions sum in T over blocks of kBlockVecs vectors in four independent accumulators and
// add each block's sum in double: a float32 row of 4096 has at most 16 terms per lane and block.

constexpr std::size_t kBlockVecs = 64;

// No contraction of a separate multiply and add into an FMA: the backward pass relies on g = dy*w
// being rounded identically in its reduction and in its elementwise pass (a fused product there
// would leave the product's rounding error times 1/spread, up to 1/eps, in dx). The build compiles
// every cpp/norm file with -ffp-contract=off for this (CMakeLists.txt; a pragma would not reach clang).

template <class D>
struct NormImpl {
  using T = typename D::T;
  using V = typename D::V;
  static constexpr std::size_t L = D::L;
  static constexpr std::size_t kBlock = kBlockVecs * L;

  // a + v as fma(v, 1, a): the sums then run on the FMA ports and leave the adders to the
  // subtractions; the result is the same correctly rounded a + v (on the scalar level, whose fma
  // is a multiply and an add, v * 1 is exact).
  static V acc(V a, V v) { return D::fma(v, D::set1(T(1)), a); }
  // The lane sum, added in double (float lanes are widened first).
  static double hsum(V v) { return D::Wide::reduce_add(D::widen(v)); }

  // Sums f(i) (a vector for elements i..i+L) over [0, n); tail(i, count) covers the last partial
  // vector and must return zeros in the missing lanes.
  template <class F, class Tail>
  static double reduce(std::size_t n, F&& f, Tail&& tail) {
    double total = 0.0;
    std::size_t i = 0;
    const V zero = D::set1(T(0));
    while (i < n) {
      const std::size_t end = i + kBlock < n ? i + kBlock : n;
      V a0 = zero, a1 = zero, a2 = zero, a3 = zero;
      for (; i + 4 * L <= end; i += 4 * L) {
        a0 = acc(a0, f(i));
        a1 = acc(a1, f(i + L));
        a2 = acc(a2, f(i + 2 * L));
        a3 = acc(a3, f(i + 3 * L));
      }
      for (; i + L <= end; i += L) a0 = acc(a0, f(i));
      if (i < end) {
        a1 = D::add(a1, tail(i, end - i));
        i = end;
      }
      total += hsum(D::add(D::add(a0, a1), D::add(a2, a3)));
    }
    return total;
  }

  static double rsum(const T* x, std::size_t n) {
    return reduce(
        n, [&](std::size_t i) { return D::load(x + i); },
        [&](std::size_t i, std::size_t c) { return simd::load_partial<D>(x + i, c, T(0)); });
  }

  static V dev(V x, V mhi, V mlo) { return D::sub(D::sub(x, mhi), mlo); }

  static double rsumabsdev(const T* x, std::size_t n, T mhi, T mlo) {
    const V vh = D::set1(mhi), vl = D::set1(mlo);
    // Tail lanes are filled with m's rounded value; their deviation mlo is masked off below.
    return reduce(
        n, [&](std::size_t i) { return D::abs(dev(D::load(x + i), vh, vl)); },
        [&](std::size_t i, std::size_t c) {
          T buf[L];
          D::store(buf, D::abs(dev(simd::load_partial<D>(x + i, c, mhi), vh, vl)));
          for (std::size_t j = c; j < L; ++j) buf[j] = T(0);
          return D::load(buf);
        });
  }

  static double rsumdev(const T* x, std::size_t n, T mhi, T mlo) {
    const V vh = D::set1(mhi), vl = D::set1(mlo);
    return reduce(
        n, [&](std::size_t i) { return dev(D::load(x + i), vh, vl); },
        [&](std::size_t i, std::size_t c) {
          T buf[L];
          D::store(buf, dev(simd::load_partial<D>(x + i, c, mhi), vh, vl));
          for (std::size_t j = c; j < L; ++j) buf[j] = T(0);
          return D::load(buf);
        });
  }

  static double rsumsqdev(const T* x, std::size_t n, T mhi, T mlo) {
    const V vh = D::set1(mhi), vl = D::set1(mlo);
    return reduce(
        n,
        [&](std::size_t i) {
          const V d = dev(D::load(x + i), vh, vl);
          return D::mul(d, d);
        },
        [&](std::size_t i, std::size_t c) {
          T buf[L];
          const V d = dev(simd::load_partial<D>(x + i, c, mhi), vh, vl);
          D::store(buf, D::mul(d, d));
          for (std::size_t j = c; j < L; ++j) buf[j] = T(0);
          return D::load(buf);
        });
  }

  template <bool HasW, bool HasB, bool Stream>
  static void normalize_t(const T* x, T* y, std::size_t n, T mhi, T mlo, T scale, const T* w, const T* b) {
    // ((x - mhi) - mlo) * scale as fma(x - mhi, scale, -(mlo * scale)): one subtraction, one FMA.
    const V vh = D::set1(mhi), vs = D::set1(scale), vls = D::set1(-(mlo * scale));
    auto one = [&](V xv, std::size_t i, bool tail, std::size_t c) {
      V r = D::fma(D::sub(xv, vh), vs, vls);
      if (HasW && HasB)
        return D::fma(r, tail ? simd::load_partial<D>(w + i, c, T(1)) : D::load(w + i),
                      tail ? simd::load_partial<D>(b + i, c, T(0)) : D::load(b + i));
      if (HasW) return D::mul(r, tail ? simd::load_partial<D>(w + i, c, T(1)) : D::load(w + i));
      if (HasB) return D::add(r, tail ? simd::load_partial<D>(b + i, c, T(0)) : D::load(b + i));
      return r;
    };
    std::size_t i = 0;
    if (Stream) {  // a partial vector up to the first aligned output address (T-aligned y assumed)
      const std::size_t mis = (reinterpret_cast<std::uintptr_t>(y) % D::kBytes) / sizeof(T);
      const std::size_t head = mis ? (L - mis < n ? L - mis : n) : 0;
      if (head) simd::store_partial<D>(y, one(simd::load_partial<D>(x, head, mhi), 0, true, head), head);
      i = head;
      for (; i + 2 * L <= n; i += 2 * L) {
        const V a = one(D::load(x + i), i, false, 0), c = one(D::load(x + i + L), i + L, false, 0);
        D::stream(y + i, a);
        D::stream(y + i + L, c);
      }
    }
    for (; i + 2 * L <= n; i += 2 * L) {
      const V a = one(D::load(x + i), i, false, 0), c = one(D::load(x + i + L), i + L, false, 0);
      D::store(y + i, a);
      D::store(y + i + L, c);
    }
    for (; i + L <= n; i += L) D::store(y + i, one(D::load(x + i), i, false, 0));
    if (i < n) simd::store_partial<D>(y + i, one(simd::load_partial<D>(x + i, n - i, mhi), i, true, n - i), n - i);
  }

  template <bool Stream>
  static void normalize_s(const T* x, T* y, std::size_t n, T mhi, T mlo, T scale, const T* w, const T* b) {
    if (w && b) return normalize_t<true, true, Stream>(x, y, n, mhi, mlo, scale, w, b);
    if (w) return normalize_t<true, false, Stream>(x, y, n, mhi, mlo, scale, w, b);
    if (b) return normalize_t<false, true, Stream>(x, y, n, mhi, mlo, scale, w, b);
    return normalize_t<false, false, Stream>(x, y, n, mhi, mlo, scale, w, b);
  }

  static void vnormalize(const T* x, T* y, std::size_t n, T mhi, T mlo, T scale, const T* w, const T* b, bool stream) {
    if (stream) {  // the caller fences once after many slices (an sfence waits for the stores)
      normalize_s<true>(x, y, n, mhi, mlo, scale, w, b);
    } else {
      normalize_s<false>(x, y, n, mhi, mlo, scale, w, b);
    }
  }

  static V grad_at(const T* dy, const T* w, std::size_t i, bool tail, std::size_t c) {
    const V g = tail ? simd::load_partial<D>(dy + i, c, T(0)) : D::load(dy + i);
    if (!w) return g;
    return D::mul(g, tail ? simd::load_partial<D>(w + i, c, T(0)) : D::load(w + i));
  }

  static void rbackward(const T* dy, const T* x, const T* w, std::size_t n, T mhi, T mlo, double* out) {
    const V vh = D::set1(mhi), vl = D::set1(mlo);
    out[0] = reduce(
        n, [&](std::size_t i) { return grad_at(dy, w, i, false, 0); },
        [&](std::size_t i, std::size_t c) { return grad_at(dy, w, i, true, c); });
    out[1] = reduce(
        n, [&](std::size_t i) { return D::mul(grad_at(dy, w, i, false, 0), dev(D::load(x + i), vh, vl)); },
        [&](std::size_t i, std::size_t c) {
          return D::mul(grad_at(dy, w, i, true, c), dev(simd::load_partial<D>(x + i, c, mhi), vh, vl));
        });
    out[2] = reduce(
        n, [&](std::size_t i) { return D::sign(dev(D::load(x + i), vh, vl)); },
        [&](std::size_t i, std::size_t c) {
          T buf[L];
          D::store(buf, D::sign(dev(simd::load_partial<D>(x + i, c, mhi), vh, vl)));
          for (std::size_t j = c; j < L; ++j) buf[j] = T(0);
          return D::load(buf);
        });
  }

  template <bool Sign>
  static void backward_t(const T* dy, const T* x, const T* w, T* dx, std::size_t n, T mhi, T mlo, T p, T q, T r) {
    const V vh = D::set1(mhi), vl = D::set1(mlo), vp = D::set1(p), vq = D::set1(q), vr = D::set1(r);
    auto one = [&](std::size_t i, bool tail, std::size_t c) {
      V d = dev(tail ? simd::load_partial<D>(x + i, c, mhi) : D::load(x + i), vh, vl);
      if (Sign) d = D::sign(d);
      return D::mul(vp, D::add(grad_at(dy, w, i, tail, c), D::fma(vr, d, vq)));
    };
    std::size_t i = 0;
    for (; i + L <= n; i += L) D::store(dx + i, one(i, false, 0));
    if (i < n) simd::store_partial<D>(dx + i, one(i, true, n - i), n - i);
  }

  static void vbackward_l1(const T* dy, const T* x, const T* w, T* dx, std::size_t n, T mhi, T mlo, T p, T q, T r) {
    backward_t<true>(dy, x, w, dx, n, mhi, mlo, p, q, r);
  }
  static void vbackward_l2(const T* dy, const T* x, const T* w, T* dx, std::size_t n, T mhi, T mlo, T p, T q, T r) {
    backward_t<false>(dy, x, w, dx, n, mhi, mlo, p, q, r);
  }

  // Parameter gradients are summed over many slices, so they are kept in double per element.
  static void raccparams(const T* dy, const T* x, std::size_t n, T mhi, T mlo, T scale, double* dw, double* db) {
    const double m = static_cast<double>(mhi) + static_cast<double>(mlo), s = scale;
    for (std::size_t i = 0; i < n; ++i) {
      const double g = dy[i];
      dw[i] += g * ((static_cast<double>(x[i]) - m) * s);
      db[i] += g;
    }
  }

  // h = x + r; with hs, the sums are also streamed to hs (non-temporal stores) while h, a
  // cache-resident buffer, keeps them for the passes that follow.
  static void vadd(const T* x, const T* r, T* h, T* hs, std::size_t n) {
    auto sum = [&](std::size_t i, std::size_t c) {
      return D::add(simd::load_partial<D>(x + i, c, T(0)), simd::load_partial<D>(r + i, c, T(0)));
    };
    std::size_t i = 0;
    if (hs) {
      const std::size_t mis = (reinterpret_cast<std::uintptr_t>(hs) % D::kBytes) / sizeof(T);
      const std::size_t head = mis ? (L - mis < n ? L - mis : n) : 0;
      if (head) {
        const V v = sum(0, head);
        simd::store_partial<D>(h, v, head);
        simd::store_partial<D>(hs, v, head);
      }
      for (i = head; i + L <= n; i += L) {
        const V v = D::add(D::load(x + i), D::load(r + i));
        D::store(h + i, v);
        D::stream(hs + i, v);
      }
      if (i < n) {
        const V v = sum(i, n - i);
        simd::store_partial<D>(h + i, v, n - i);
        simd::store_partial<D>(hs + i, v, n - i);
      }
      return;
    }
    for (; i + 2 * L <= n; i += 2 * L) {
      const V a = D::add(D::load(x + i), D::load(r + i)), c = D::add(D::load(x + i + L), D::load(r + i + L));
      D::store(h + i, a);
      D::store(h + i + L, c);
    }
    for (; i + L <= n; i += L) D::store(h + i, D::add(D::load(x + i), D::load(r + i)));
    if (i < n) simd::store_partial<D>(h + i, sum(i, n - i), n - i);
  }

  static constexpr TypedKernels<T> table() {
    return {&rsum,      &rsumabsdev,   &rsumsqdev,    &rsumdev,    &vnormalize,
            &rbackward, &vbackward_l1, &vbackward_l2, &raccparams, &vadd};
  }
};
