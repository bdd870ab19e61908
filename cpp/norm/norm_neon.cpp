// Norm kernels for AArch64 Advanced SIMD: 4 float / 2 double lanes; int8 kernels on 16-byte vectors.
#include <cstddef>
#include <cstdint>

#include "common/simd_neon.h"
#include "norm/norm.h"

namespace numkern::norm {
namespace {

#include "norm/norm_kernels.inl"

// The int8 kernels are byte-lane work (pairwise widening adds, byte compares, saturating narrows)
// that the layer deliberately does not wrap: raw intrinsics, all of them exact integer arithmetic,
// so every level gives the same bytes.

// Sums of 16 bytes into four int32 lanes: saddlp (pairs to int16), sadalp (pairs into int32). A step
// adds at most 4 * 128 to a lane, so for n <= 2^24 a lane stays below 2^29.
inline int32x4_t add_bytes(int32x4_t acc, int8x16_t v) { return vpadalq_s16(acc, vpaddlq_s8(v)); }

std::int64_t i8_rsum(const std::int8_t* x, std::size_t n) {
  int32x4_t acc = vdupq_n_s32(0);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) acc = add_bytes(acc, vld1q_s8(x + i));
  std::int64_t s = vaddlvq_s32(acc);
  for (; i < n; ++i) s += x[i];
  return s;
}

// The compare gives -1 (all ones) per byte above t: the sum of the masks is -count, the sum of the
// masked bytes the sum.
void i8_rsumabove(const std::int8_t* x, std::size_t n, std::int32_t t, std::int64_t* sum, std::int64_t* count) {
  const int8x16_t vt = vdupq_n_s8(static_cast<std::int8_t>(t));
  int32x4_t acc = vdupq_n_s32(0), neg_count = vdupq_n_s32(0);
  std::size_t i = 0;
  if (t >= -128 && t <= 127) {
    for (; i + 16 <= n; i += 16) {
      const int8x16_t v = vld1q_s8(x + i);
      const int8x16_t m = vreinterpretq_s8_u8(vcgtq_s8(v, vt));
      acc = add_bytes(acc, vandq_s8(v, m));
      neg_count = add_bytes(neg_count, m);
    }
  }
  std::int64_t s = vaddlvq_s32(acc), c = -vaddlvq_s32(neg_count);
  for (; i < n; ++i)
    if (x[i] > t) {
      s += x[i];
      ++c;
    }
  *sum = s;
  *count = c;
}

// Four outputs: u = clamp(x - t), (u*g - c) >> k in int32 (sshl by -k is the arithmetic shift),
// then saturated to int16 and int8 by the narrows (the same clamp as the scalar code).
inline int32x4_t requant4(int32x4_t xi, int32x4_t vt, int32x4_t vu, int32x4_t vnu, int32x4_t vg, int32x4_t vc,
                          int32x4_t vshift) {
  const int32x4_t u = vmaxq_s32(vminq_s32(vsubq_s32(xi, vt), vu), vnu);
  return vshlq_s32(vsubq_s32(vmulq_s32(u, vg), vc), vshift);
}

void i8_vrequant(const std::int8_t* x, std::int8_t* y, std::size_t n, std::int32_t t, std::int32_t u_max,
                 std::int32_t g, std::int32_t c, int k, bool) {
  const int32x4_t vt = vdupq_n_s32(t), vu = vdupq_n_s32(u_max), vnu = vdupq_n_s32(-u_max), vg = vdupq_n_s32(g),
                  vc = vdupq_n_s32(c), vshift = vdupq_n_s32(-k);
  auto sixteen = [&](const std::int8_t* in) {
    const int8x16_t b = vld1q_s8(in);
    const int16x8_t lo = vmovl_s8(vget_low_s8(b)), hi = vmovl_high_s8(b);
    const int32x4_t r0 = requant4(vmovl_s16(vget_low_s16(lo)), vt, vu, vnu, vg, vc, vshift);
    const int32x4_t r1 = requant4(vmovl_high_s16(lo), vt, vu, vnu, vg, vc, vshift);
    const int32x4_t r2 = requant4(vmovl_s16(vget_low_s16(hi)), vt, vu, vnu, vg, vc, vshift);
    const int32x4_t r3 = requant4(vmovl_high_s16(hi), vt, vu, vnu, vg, vc, vshift);
    const int16x8_t h0 = vqmovn_high_s32(vqmovn_s32(r0), r1), h1 = vqmovn_high_s32(vqmovn_s32(r2), r3);
    return vqmovn_high_s16(vqmovn_s16(h0), h1);
  };
  // No non-temporal store here (see simd_neon.h): `stream` changes nothing on this level.
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) vst1q_s8(y + i, sixteen(x + i));
  if (i < n) {
    std::int8_t in[16] = {0}, out[16];
    for (std::size_t j = 0; j < n - i; ++j) in[j] = x[i + j];
    vst1q_s8(out, sixteen(in));
    for (std::size_t j = 0; j < n - i; ++j) y[i + j] = out[j];
  }
}

}  // namespace

const Kernels kernels_neon = {"neon",
                              NormImpl<simd::F32>::table(),
                              NormImpl<simd::F64>::table(),
                              {&i8_rsum, &i8_rsumabove, &i8_vrequant, nullptr}};

}  // namespace numkern::norm
