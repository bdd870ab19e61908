// Exact discrete Laplace and discrete Gaussian samplers (Canonne, Kamath & Steinke, "The Discrete
// Gaussian for Differential Privacy", NeurIPS 2020, Algorithms 1-3) on random bits from ChaCha20.
//
// No floating-point operation touches a sample: uniform integers by Lemire's multiply-shift with
// rejection, Bernoulli(a/b) by comparing a uniform's binary expansion with a/b 64 bits at a time (or
// bit by bit for 128-bit denominators), Bernoulli(exp(-a/b)) by CKS Algorithm 1. The only departure
// from the exact distributions is a truncation far in the tails: a Laplace candidate whose magnitude
// would reach 2^62 and a Gaussian candidate with |y| >= 2^62 / t are drawn again. With the scales the
// callers may use (t <= 2^52, S <= 2^56) both events have probability below exp(-1000) per draw.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

#include "common/isa.h"
#include "common/parallel.h"
#include "common/portable.h"
#include "dp/dp.h"

namespace numkern::dp {

void chacha20(const std::uint32_t* state, std::int64_t nblocks, std::uint32_t* out) {
  if (nblocks > 0) active_kernels().chacha20(state, static_cast<std::size_t>(nblocks), out);
}

namespace {

constexpr std::size_t kBufBlocks = 16;  // 1 KiB of key stream per refill

// 64-bit words and single bits from one ChaCha20 stream.
class Stream {
 public:
  Stream(const std::uint32_t* key, std::uint64_t id, const Kernels& k) : k_(k) {
    static constexpr std::uint32_t sigma[4] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u};
    for (int i = 0; i < 4; ++i) state_[i] = sigma[i];
    for (int i = 0; i < 8; ++i) state_[4 + i] = key[i];
    state_[12] = state_[13] = 0;
    state_[14] = static_cast<std::uint32_t>(id);
    state_[15] = static_cast<std::uint32_t>(id >> 32);
  }

  std::uint64_t word() {
    if (pos_ == kBufBlocks * 8) refill();
    const std::uint64_t w =
        static_cast<std::uint64_t>(buf_[2 * pos_]) | (static_cast<std::uint64_t>(buf_[2 * pos_ + 1]) << 32);
    ++pos_;
    return w;
  }

  // The next j random bits (1 <= j <= 32), taken from a buffered word.
  std::uint64_t take(int j) {
    if (nbits_ < j) {
      bits_ = word();
      nbits_ = 64;
    }
    const std::uint64_t v = bits_ & ((std::uint64_t{1} << j) - 1);
    bits_ >>= j;
    nbits_ -= j;
    return v;
  }
  bool bit() { return take(1) != 0; }

 private:
  void refill() {
    k_.chacha20(state_, kBufBlocks, buf_);
    const std::uint64_t ctr =
        (static_cast<std::uint64_t>(state_[12]) | (static_cast<std::uint64_t>(state_[13]) << 32)) + kBufBlocks;
    state_[12] = static_cast<std::uint32_t>(ctr);
    state_[13] = static_cast<std::uint32_t>(ctr >> 32);
    pos_ = 0;
  }

  const Kernels& k_;
  std::uint32_t state_[16];
  std::uint32_t buf_[kBufBlocks * 16];
  std::size_t pos_ = kBufBlocks * 8;
  std::uint64_t bits_ = 0;
  int nbits_ = 0;
};

// Uniform in [0, n), n >= 1 (Lemire, "Fast random integer generation in an interval", 2019).
std::uint64_t uniform(Stream& s, std::uint64_t n) {
  u128 m = u128(s.word()) * u128(n);
  std::uint64_t l = low64(m);
  if (l < n) {
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    while (l < threshold) {
      m = u128(s.word()) * u128(n);
      l = low64(m);
    }
  }
  return high64(m);
}

// Bernoulli(a / b) for 0 <= a < b: U < a / b for U uniform in [0, 1), compared J bits of U at a time.
// With w the next J bits, U lies in [w, w + 1) / 2^J: if (w + 1) b <= a 2^J then U < a / b, if
// w b >= a 2^J then U >= a / b, and otherwise (probability < 2^-J) the comparison continues with the
// remainder a 2^J - w b < b. Needs b 2^J < 2^128.
template <int J>
bool bernoulli_chunks(Stream& s, u128 a, u128 b) {
  for (;;) {
    const u128 wb = u128(s.take(J)) * b;
    const u128 target = a << J;
    if (!(target < wb + b)) return true;
    if (!(wb < target)) return false;
    a = target - wb;
  }
}

// Bernoulli(a / b), 0 <= a, 1 <= b < 2^64 (8 random bits per step: b 2^8 < 2^72).
bool bernoulli(Stream& s, std::uint64_t a, std::uint64_t b) {
  if (a >= b) return true;
  if (a == 0) return false;
  return bernoulli_chunks<8>(s, u128(a), u128(b));
}

// Bernoulli(a / b) for 128-bit 0 <= a < b < 2^119 (8 random bits per step).
bool bernoulli_big(Stream& s, u128 a, u128 b) {
  if (!(u128(0) < a)) return false;
  return bernoulli_chunks<8>(s, a, b);
}

// Bernoulli(a / (b k)) without forming b k where it would overflow: Bernoulli(a / b) and Bernoulli(1 / k)
// are independent, their conjunction has probability a / (b k).
bool bernoulli_div(Stream& s, std::uint64_t a, std::uint64_t b, std::uint64_t k) {
  if ((b >> 40) == 0 && k < (std::uint64_t{1} << 24)) return bernoulli(s, a, b * k);  // no overflow, no division
  if (b <= ~std::uint64_t{0} / k) return bernoulli(s, a, b * k);
  return bernoulli(s, a, b) && bernoulli(s, 1, k);
}

// Bernoulli(exp(-a / b)) for 0 <= a <= b (CKS Algorithm 1 with gamma <= 1): the number K of successes
// of Bernoulli(gamma / k), k = 1, 2, ..., until the first failure, is odd with probability exp(-gamma).
bool bernoulli_exp_le1(Stream& s, std::uint64_t a, std::uint64_t b) {
  std::uint64_t k = 1;
  while (bernoulli_div(s, a, b, k)) ++k;
  return k & 1u;
}

bool bernoulli_exp1(Stream& s) { return bernoulli_exp_le1(s, 1, 1); }

// Bernoulli(exp(-a / b)) for any 128-bit a and 0 < b < 2^126 (CKS Algorithm 1: floor(gamma) trials of
// Bernoulli(exp(-1)), then the fractional part).
bool bernoulli_exp_big(Stream& s, u128 a, u128 b) {
  if (!(a < b)) {
    const u128 whole = a / b;
    a = a - whole * b;
    for (u128 i = 0; i < whole; i = i + u128(1))
      if (!bernoulli_exp1(s)) return false;
  }
  std::uint64_t k = 1;
  while (bernoulli_big(s, a, b) && bernoulli(s, 1, k)) ++k;
  return k & 1u;
}

constexpr std::uint64_t kMag = std::uint64_t{1} << 62;

// P(z) = (1 - p) / (1 + p) p^|z|, p = exp(-1 / t) (CKS Algorithm 2 with s = 1): U + t V with U uniform
// in [0, t) accepted with probability exp(-U / t) and V geometric with ratio exp(-1) is geometric with
// ratio exp(-1 / t); a fair sign; the doubly counted 0 rejected.
// vmax = (2^62 - t) / t (computed once per scale: a division per draw costs more than the draw's
// arithmetic) bounds u + t v < 2^62 for every u < t.
std::uint64_t laplace_vmax(std::uint64_t t) { return (kMag - t) / t; }

std::int64_t laplace_sample(Stream& s, std::uint64_t t, std::uint64_t vmax) {
  for (;;) {
    const std::uint64_t u = uniform(s, t);
    if (!bernoulli_exp_le1(s, u, t)) continue;
    std::uint64_t v = 0;
    bool too_far = false;
    while (bernoulli_exp1(s))
      if (++v > vmax) {
        too_far = true;
        break;
      }
    if (too_far) continue;
    const std::uint64_t mag = u + t * v;
    const bool neg = s.bit();
    if (neg && mag == 0) continue;
    return neg ? -static_cast<std::int64_t>(mag) : static_cast<std::int64_t>(mag);
  }
}

std::uint64_t isqrt(std::uint64_t v) {
  std::uint64_t r = static_cast<std::uint64_t>(std::sqrt(static_cast<double>(v)));
  while (r > 0 && r * r > v) --r;
  while ((r + 1) * (r + 1) <= v) ++r;
  return r;
}

// P(z) proportional to exp(-z^2 / (2 S)) (CKS Algorithm 3 with sigma^2 = S): a discrete Laplace
// candidate y of scale t = floor(sqrt(S)) + 1, accepted with probability
// exp(-(|y| - S / t)^2 / (2 S)) = exp(-(|y| t - S)^2 / (2 S t^2)).
struct Gaussian {
  std::uint64_t S, t;
  u128 den;
  std::uint64_t ymax, vmax;
  explicit Gaussian(std::uint64_t S_) : S(S_), t(isqrt(S_) + 1) {
    den = u128(2) * u128(S) * u128(t) * u128(t);
    ymax = kMag / t;
    vmax = laplace_vmax(t);
  }
  std::int64_t operator()(Stream& s) const {
    for (;;) {
      const std::int64_t y = laplace_sample(s, t, vmax);
      const std::uint64_t ay = y < 0 ? static_cast<std::uint64_t>(-y) : static_cast<std::uint64_t>(y);
      if (ay >= ymax) continue;  // |y| t < 2^62, so the square below fits 128 bits
      const std::uint64_t yt = ay * t;
      const std::uint64_t diff = yt >= S ? yt - S : S - yt;
      if (bernoulli_exp_big(s, u128(diff) * u128(diff), den)) return y;
    }
  }
};

template <class Out>
void run_chunks(const std::uint32_t* key, int mechanism, std::uint64_t param, std::int64_t n, Out&& emit) {
  const Kernels& k = active_kernels();
  const std::int64_t chunks = (n + kNoiseChunk - 1) / kNoiseChunk;
  const Gaussian gauss(mechanism == noise_gaussian ? param : 1);
  const std::uint64_t vmax = laplace_vmax(param);
  parallel_for(chunks, 1, [&](std::int64_t c0, std::int64_t c1) {
    for (std::int64_t c = c0; c < c1; ++c) {
      Stream s(key, static_cast<std::uint64_t>(c), k);
      const std::int64_t i0 = c * kNoiseChunk, i1 = std::min(n, i0 + kNoiseChunk);
      if (mechanism == noise_gaussian) {
        for (std::int64_t i = i0; i < i1; ++i) emit(i, gauss(s));
      } else {
        for (std::int64_t i = i0; i < i1; ++i) emit(i, laplace_sample(s, param, vmax));
      }
    }
  });
}

template <class T>
int add_noise_t(const T* x, std::int64_t n, int e, const std::uint32_t* key, int mechanism, std::uint64_t param,
                T* out) {
  std::atomic<int> status{0};
  const double down = std::ldexp(1.0, -e), up = std::ldexp(1.0, e);
  const double limit = std::ldexp(1.0, 62);
  run_chunks(key, mechanism, param, n, [&](std::int64_t i, std::int64_t z) {
    const double v = static_cast<double>(x[i]) * down;  // exact: a power of two, no overflow for |v| < 2^62
    if (!(std::fabs(v) < limit)) {
      status.store(std::isfinite(static_cast<double>(x[i])) ? 2 : 1, std::memory_order_relaxed);
      return;
    }
    const std::int64_t r = static_cast<std::int64_t>(std::nearbyint(v));
    out[i] = static_cast<T>(static_cast<double>(r + z) * up);
  });
  return status.load();
}

}  // namespace

void noise_samples(const std::uint32_t* key, int mechanism, std::uint64_t param, std::int64_t n, std::int64_t* out) {
  run_chunks(key, mechanism, param, n, [&](std::int64_t i, std::int64_t z) { out[i] = z; });
}

int add_noise(const double* x, std::int64_t n, int e, const std::uint32_t* key, int mechanism, std::uint64_t param,
              double* out) {
  return add_noise_t(x, n, e, key, mechanism, param, out);
}

int add_noise(const float* x, std::int64_t n, int e, const std::uint32_t* key, int mechanism, std::uint64_t param,
              float* out) {
  return add_noise_t(x, n, e, key, mechanism, param, out);
}

}  // namespace numkern::dp
