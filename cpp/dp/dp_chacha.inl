// ChaCha20 block function (D. J. Bernstein; RFC 8439, Section 2.3) over the ops layer's 32-bit lanes:
// lane j computes block j of a group, so one vector round advances I32::L blocks. Included by each dp
// translation unit inside its anonymous namespace, like dp_kernels.inl.
//
// state: 16 words, RFC 8439's layout with a 64-bit block counter: 0-3 the constants, 4-11 the key,
// 12-13 the counter (low word first), 14-15 the stream id (RFC 8439's nonce is words 13-15 with a
// 32-bit counter; both layouts agree while the counter stays below 2^32). out receives the key
// stream of nblocks consecutive counters, 16 words per block in order.

template <class I>
struct ChaCha {
  using V = typename I::V;
  static constexpr std::size_t L = I::L;

  static void quarter(V& a, V& b, V& c, V& d) {
    a = I::add(a, b);
    d = I::template rotl<16>(I::bxor(d, a));
    c = I::add(c, d);
    b = I::template rotl<12>(I::bxor(b, c));
    a = I::add(a, b);
    d = I::template rotl<8>(I::bxor(d, a));
    c = I::add(c, d);
    b = I::template rotl<7>(I::bxor(b, c));
  }

  // L blocks starting at counter ctr.
  static void group(const std::uint32_t* state, std::uint64_t ctr, std::uint32_t* out, std::size_t nout) {
    std::uint32_t lo[L], hi[L];
    for (std::size_t j = 0; j < L; ++j) {
      const std::uint64_t c = ctr + j;
      lo[j] = static_cast<std::uint32_t>(c);
      hi[j] = static_cast<std::uint32_t>(c >> 32);
    }
    V in[16], x[16];
    for (int i = 0; i < 16; ++i) in[i] = I::set1(state[i]);
    in[12] = I::load(lo);
    in[13] = I::load(hi);
    for (int i = 0; i < 16; ++i) x[i] = in[i];
    for (int r = 0; r < 10; ++r) {
      quarter(x[0], x[4], x[8], x[12]);
      quarter(x[1], x[5], x[9], x[13]);
      quarter(x[2], x[6], x[10], x[14]);
      quarter(x[3], x[7], x[11], x[15]);
      quarter(x[0], x[5], x[10], x[15]);
      quarter(x[1], x[6], x[11], x[12]);
      quarter(x[2], x[7], x[8], x[13]);
      quarter(x[3], x[4], x[9], x[14]);
    }
    alignas(64) std::uint32_t t[16 * L];
    for (int i = 0; i < 16; ++i) I::store(t + i * L, I::add(x[i], in[i]));
    for (std::size_t j = 0; j < nout; ++j)
      for (int i = 0; i < 16; ++i) out[j * 16 + i] = t[i * L + j];
  }

  static void blocks(const std::uint32_t* state, std::size_t nblocks, std::uint32_t* out) {
    const std::uint64_t ctr = static_cast<std::uint64_t>(state[12]) | (static_cast<std::uint64_t>(state[13]) << 32);
    for (std::size_t b = 0; b < nblocks; b += L) {
      const std::size_t n = nblocks - b < L ? nblocks - b : L;
      group(state, ctr + b, out + b * 16, n);
    }
  }
};
