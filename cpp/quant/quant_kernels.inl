// Quantizer kernels written once over the ops layer: F = simd::F32, I = simd::I32 (the uint32 lanes
// of the hash and of the max-abs bit patterns), D = simd::F64. Included INSIDE the anonymous
// namespace of each ISA TU after its common/simd_<isa>.h, so every instantiation has internal
// linkage and the unit's own flags. The scalar level instantiates the same templates with one lane,
// so every level computes each element by the same formula: IEEE division, exact round/floor and the
// same counter-based hash.

// Clears the sign bit: bits(|x|). As uint32 these keep the order of |x| and put NaN above inf.
constexpr std::uint32_t kAbsMask = 0x7fffffffu;
// A 24-bit hash word times 2^-24 is an exact float in [0, 1).
constexpr float kUniformScale = 0x1p-24f;

inline std::uint32_t abs_bits(float v) { return simd::bit_cast<std::uint32_t>(v) & kAbsMask; }

// bits(|x|) for the L floats at p, as uint32 lanes.
template <class F, class I>
inline typename I::V abs_bits(const float* p) {
  return I::band(F::bits(F::load(p)), I::set1(kAbsMask));
}

template <class F, class I>
void absmax_acc(const float* x, std::uint32_t* acc, std::int64_t n) {
  constexpr auto L = static_cast<std::int64_t>(F::L);
  std::int64_t j = 0;
  for (; j + L <= n; j += L) I::store(acc + j, I::max_u(abs_bits<F, I>(x + j), I::load(acc + j)));
  for (; j < n; ++j) acc[j] = std::max(acc[j], abs_bits(x[j]));
}

template <class F, class I>
std::uint32_t absmax(const float* x, std::int64_t n) {
  constexpr auto L = static_cast<std::int64_t>(F::L);
  typename I::V m0 = I::zero(), m1 = I::zero();
  std::int64_t j = 0;
  for (; j + 2 * L <= n; j += 2 * L) {
    m0 = I::max_u(m0, abs_bits<F, I>(x + j));
    m1 = I::max_u(m1, abs_bits<F, I>(x + j + L));
  }
  std::uint32_t lanes[F::L];
  I::store(lanes, I::max_u(m0, m1));
  std::uint32_t m = 0;
  for (; j < n; ++j) m = std::max(m, abs_bits(x[j]));
  for (std::uint32_t v : lanes) m = std::max(m, v);
  return m;
}

// Uniform in [0, 1) with 24-bit resolution from a hash word.
template <class F, class I>
inline typename F::V uniform(typename I::V h) {
  return F::mul(F::from_i32(I::template shr<8>(h)), F::set1(kUniformScale));
}

// q = round(clamp(x * f / base, -Q, Q)) * g for the L lanes of element indices lo, lo + 1, ...
// (mod 2^32) of the key words k0, k1; stochastic: round(t) = floor(t) + (u < t - floor(t)) with
// u = uniform(lowbias32(lowbias32(index ^ k0) + k1)).
template <class F, class I>
struct QuantizeStep {
  typename F::V base, q, nq;
  typename I::V k0, k1;
  bool stochastic;

  typename F::V operator()(typename F::V x, typename F::V f, typename F::V g, std::uint32_t lo) const {
    typename F::V t = F::div(F::mul(x, f), base);
    t = F::min(F::max(t, nq), q);
    typename F::V r;
    if (stochastic) {
      const typename F::V fl = F::floor(t);
      const typename I::V idx = I::add(I::set1(lo), I::iota());
      const typename F::V u = uniform<F, I>(simd::lowbias32<I>(I::add(simd::lowbias32<I>(I::bxor(idx, k0)), k1)));
      r = F::add(fl, F::zero_unless(F::lt(u, F::sub(t, fl)), F::set1(1.0f)));
    } else {
      r = F::round(t);
    }
    return F::mul(r, g);
  }
};

template <class F, class I>
void quantize(const float* x, std::int8_t* q, std::int64_t n, const float* f, const float* g, bool vec_f, float base,
              int Q, bool stochastic, std::uint64_t index0, std::uint64_t key) {
  constexpr auto L = static_cast<std::int64_t>(F::L);
  const auto lo0 = static_cast<std::uint32_t>(index0);
  const QuantizeStep<F, I> step{F::set1(base),
                                F::set1(static_cast<float>(Q)),
                                F::set1(-static_cast<float>(Q)),
                                I::set1(static_cast<std::uint32_t>(key)),
                                I::set1(static_cast<std::uint32_t>(key >> 32)),
                                stochastic};
  const typename F::V f0 = F::set1(f[0]), g0 = F::set1(g[0]);
  std::int64_t j = 0;
  for (; j + L <= n; j += L) {
    const typename F::V fv = vec_f ? F::load(f + j) : f0, gv = vec_f ? F::load(g + j) : g0;
    F::store_i8(q + j, step(F::load(x + j), fv, gv, lo0 + static_cast<std::uint32_t>(j)));
  }
  if (j < n) {
    // The last n - j < L elements as one vector (the same formula as the loop): the missing lanes
    // read 0 and are not stored.
    const auto k = static_cast<std::size_t>(n - j);
    const typename F::V fv = vec_f ? F::loadn(f + j, k) : f0, gv = vec_f ? F::loadn(g + j, k) : g0;
    std::int8_t buf[F::L];
    F::store_i8(buf, step(F::loadn(x + j, k), fv, gv, lo0 + static_cast<std::uint32_t>(j)));
    std::memcpy(q + j, buf, k);
  }
}

template <class D>
void epilogue_f32(const std::int32_t* c, float* out, std::int64_t n, double s, const double* col) {
  constexpr auto L = static_cast<std::int64_t>(D::L);
  const typename D::V vs = D::set1(s);
  std::int64_t j = 0;
  for (; j + L <= n; j += L) {
    typename D::V v = D::mul(D::load_i32(c + j), vs);
    if (col) v = D::mul(v, D::load(col + j));
    D::store_f32(out + j, v);
  }
  for (; j < n; ++j) out[j] = static_cast<float>(static_cast<double>(c[j]) * s * (col ? col[j] : 1.0));
}

// The quantizer table of the including unit's level.
constexpr QuantKernels quant_table(const char* name) {
  return {name, absmax_acc<simd::F32, simd::I32>, absmax<simd::F32, simd::I32>, quantize<simd::F32, simd::I32>,
          epilogue_f32<simd::F64>};
}
