// Quantizer kernels over a vector-traits type VT, included INSIDE the anonymous namespace of each
// ISA TU (so nothing here is shared between levels). The scalar helpers define the results; the
// vector loops reproduce them bit for bit (IEEE division, exact round/floor, the same hash).

static inline std::uint32_t s_absbits(float x) {
  std::uint32_t u;
  __builtin_memcpy(&u, &x, 4);
  return u & 0x7fffffffu;
}

// lowbias32 (C. Wellons' integer hash): a bijection of 32-bit words with good avalanche.
static inline std::uint32_t s_mix(std::uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

// Uniform in [0, 1) with 24-bit resolution for element `lo` of the 2^32-element segment whose key
// word is k1 (the driver folds the segment number into k1).
static inline float s_uniform(std::uint32_t lo, std::uint32_t k0, std::uint32_t k1) {
  return static_cast<float>(s_mix(s_mix(lo ^ k0) + k1) >> 8) * 0x1p-24f;
}

// Round to nearest, ties to even, for |t| <= 2^22 (t is clamped to [-127, 127] before this).
static inline float s_rne(float t) {
  const float b = t < 0.0f ? -0x1.8p23f : 0x1.8p23f;  // exact RNE: no -ffast-math here
  return (t + b) - b;
}

static inline float s_floor(float t) {
  const float r = s_rne(t);
  return r > t ? r - 1.0f : r;
}

static inline std::int8_t s_quantize_one(float x, float f, float g, float base, float Q, bool stochastic,
                                         std::uint32_t lo, std::uint32_t k0, std::uint32_t k1) {
  float t = (x * f) / base;
  t = t < -Q ? -Q : (t > Q ? Q : t);
  float r;
  if (stochastic) {
    const float fl = s_floor(t);
    r = fl + (s_uniform(lo, k0, k1) < t - fl ? 1.0f : 0.0f);
  } else {
    r = s_rne(t);
  }
  return static_cast<std::int8_t>(static_cast<int>(r * g));
}

static void s_quantize(const float* x, std::int8_t* q, std::int64_t n, const float* f, const float* g, bool vec_f,
                       float base, int Q, bool stochastic, std::uint64_t index0, std::uint64_t key) {
  const auto k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
  const auto lo0 = static_cast<std::uint32_t>(index0);
  for (std::int64_t j = 0; j < n; ++j)
    q[j] = s_quantize_one(x[j], vec_f ? f[j] : f[0], vec_f ? g[j] : g[0], base, static_cast<float>(Q), stochastic,
                          lo0 + static_cast<std::uint32_t>(j), k0, k1);
}

static void s_absmax_acc(const float* x, std::uint32_t* acc, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) {
    const std::uint32_t a = s_absbits(x[j]);
    acc[j] = a > acc[j] ? a : acc[j];
  }
}

static std::uint32_t s_absmax(const float* x, std::int64_t n) {
  std::uint32_t m = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    const std::uint32_t a = s_absbits(x[j]);
    m = a > m ? a : m;
  }
  return m;
}

static void s_epilogue_f32(const std::int32_t* c, float* out, std::int64_t n, double s, const double* col) {
  for (std::int64_t j = 0; j < n; ++j)
    out[j] = static_cast<float>(static_cast<double>(c[j]) * s * (col ? col[j] : 1.0));
}

#ifdef NUMKERN_QUANT_VECTOR
template <class VT>
void v_absmax_acc(const float* x, std::uint32_t* acc, std::int64_t n) {
  using I = typename VT::I;
  std::int64_t j = 0;
  for (; j + VT::L <= n; j += VT::L) {
    const I a = VT::absbits(x + j);
    VT::storei(acc + j, VT::maxi(a, VT::loadi(acc + j)));
  }
  s_absmax_acc(x + j, acc + j, n - j);
}

template <class VT>
std::uint32_t v_absmax(const float* x, std::int64_t n) {
  using I = typename VT::I;
  I m0 = VT::zeroi(), m1 = VT::zeroi();
  std::int64_t j = 0;
  for (; j + 2 * VT::L <= n; j += 2 * VT::L) {
    m0 = VT::maxi(m0, VT::absbits(x + j));
    m1 = VT::maxi(m1, VT::absbits(x + j + VT::L));
  }
  std::uint32_t lanes[VT::L];
  VT::storei(lanes, VT::maxi(m0, m1));
  std::uint32_t m = s_absmax(x + j, n - j);
  for (int l = 0; l < VT::L; ++l) m = lanes[l] > m ? lanes[l] : m;
  return m;
}

template <class VT>
void v_quantize(const float* x, std::int8_t* q, std::int64_t n, const float* f, const float* g, bool vec_f,
                float base, int Q, bool stochastic, std::uint64_t index0, std::uint64_t key) {
  using V = typename VT::V;
  using I = typename VT::I;
  const auto k0 = static_cast<std::uint32_t>(key), k1 = static_cast<std::uint32_t>(key >> 32);
  const auto lo0 = static_cast<std::uint32_t>(index0);
  const V vbase = VT::set1(base), vq = VT::set1(static_cast<float>(Q)), vnq = VT::set1(-static_cast<float>(Q));
  const V f0 = VT::set1(f[0]), g0 = VT::set1(g[0]);
  const I vk0 = VT::set1i(k0), vk1 = VT::set1i(k1), lane = VT::lanes();
  std::int64_t j = 0;
  for (; j + VT::L <= n; j += VT::L) {
    const V fv = vec_f ? VT::load(f + j) : f0, gv = vec_f ? VT::load(g + j) : g0;
    V t = VT::div(VT::mul(VT::load(x + j), fv), vbase);
    t = VT::min(VT::max(t, vnq), vq);
    V r;
    if (stochastic) {
      const V fl = VT::floor(t);
      const I idx = VT::addi(VT::set1i(lo0 + static_cast<std::uint32_t>(j)), lane);
      const V u = VT::uniform(VT::mix(VT::addi(VT::mix(VT::xori(idx, vk0)), vk1)));
      r = VT::add_one_if_less(fl, u, VT::sub(t, fl));
    } else {
      r = VT::rne(t);
    }
    VT::store_s8(q + j, VT::mul(r, gv));
  }
  if (j < n)
    s_quantize(x + j, q + j, n - j, vec_f ? f + j : f, vec_f ? g + j : g, vec_f, base, Q, stochastic,
               index0 + static_cast<std::uint64_t>(j), key);
}
#endif
