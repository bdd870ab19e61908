#include "common/convert.h"

#include <cstring>
#include <stdexcept>

#include "common/parallel.h"

#include <algorithm>

namespace numkern {
namespace {

constexpr std::int64_t kGrainBytes = std::int64_t{1} << 18;

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0) {
    const float f = static_cast<float>(mant) * 0x1p-24f;  // zero or subnormal: exact
    return sign ? -f : f;
  }
  if (exp == 31)
    bits = sign | 0x7f800000u | (mant << 13);  // inf, or NaN with its payload
  else
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// half -> double directly (through float, a signalling NaN would be quieted on the way).
double half_to_double(std::uint16_t h) {
  const std::uint64_t sign = static_cast<std::uint64_t>(h & 0x8000u) << 48;
  const std::uint64_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    const double d = static_cast<double>(mant) * 0x1p-24;
    return sign ? -d : d;
  }
  const std::uint64_t bits =
      exp == 31 ? sign | 0x7ff0000000000000ull | (mant << 42) : sign | ((exp + 1008) << 52) | (mant << 42);
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// NumPy's float -> half conversion (npy_floatbits_to_halfbits), bit for bit: round to nearest
// even, overflow to inf, underflow to subnormals or zero, NaN keeping its sign and top payload bits.
std::uint16_t float_to_half(float value) {
  std::uint32_t f;
  std::memcpy(&f, &value, sizeof f);
  const auto h_sgn = static_cast<std::uint16_t>((f & 0x80000000u) >> 16);
  std::uint32_t f_exp = f & 0x7f800000u, f_sig;
  if (f_exp >= 0x47800000u) {
    if (f_exp == 0x7f800000u && (f & 0x007fffffu) != 0) {
      auto ret = static_cast<std::uint16_t>(0x7c00u + ((f & 0x007fffffu) >> 13));
      if (ret == 0x7c00u) ++ret;  // keep it a NaN
      return static_cast<std::uint16_t>(h_sgn + ret);
    }
    return static_cast<std::uint16_t>(h_sgn + 0x7c00u);  // inf, or overflow to inf
  }
  if (f_exp <= 0x38000000u) {
    if (f_exp < 0x33000000u) return h_sgn;  // below half the smallest subnormal
    f_exp >>= 23;
    f_sig = 0x00800000u + (f & 0x007fffffu);
    f_sig >>= (113 - f_exp);
    if (((f_sig & 0x00003fffu) != 0x00001000u) || (f & 0x000007ffu)) f_sig += 0x00001000u;
    return static_cast<std::uint16_t>(h_sgn + (f_sig >> 13));
  }
  const auto h_exp = static_cast<std::uint16_t>((f_exp - 0x38000000u) >> 13);
  f_sig = f & 0x007fffffu;
  if ((f_sig & 0x00003fffu) != 0x00001000u) f_sig += 0x00001000u;
  // A carry out of the significand increments the exponent (up to inf): the correct result.
  return static_cast<std::uint16_t>(h_sgn + h_exp + (f_sig >> 13));
}

template <class S, class D>
void cast_range(const void* src, void* dst, std::int64_t b, std::int64_t e) {
  const S* s = static_cast<const S*>(src);
  D* d = static_cast<D*>(dst);
  for (std::int64_t i = b; i < e; ++i) d[i] = static_cast<D>(s[i]);
}

template <class D>
void cast_from(Elem from, const void* src, void* dst, std::int64_t b, std::int64_t e) {
  switch (from) {
    case Elem::f16: {
      const auto* s = static_cast<const std::uint16_t*>(src);
      D* d = static_cast<D*>(dst);
      for (std::int64_t i = b; i < e; ++i)
        d[i] = sizeof(D) == 8 ? static_cast<D>(half_to_double(s[i])) : static_cast<D>(half_to_float(s[i]));
      return;
    }
    case Elem::f32:
      return cast_range<float, D>(src, dst, b, e);
    case Elem::f64:
      return cast_range<double, D>(src, dst, b, e);
    case Elem::b1:
      return cast_range<std::uint8_t, D>(src, dst, b, e);  // NumPy bools are bytes 0/1
    case Elem::i8:
      return cast_range<std::int8_t, D>(src, dst, b, e);
    case Elem::i16:
      return cast_range<std::int16_t, D>(src, dst, b, e);
    case Elem::i32:
      return cast_range<std::int32_t, D>(src, dst, b, e);
    case Elem::i64:
      return cast_range<std::int64_t, D>(src, dst, b, e);
    case Elem::u8:
      return cast_range<std::uint8_t, D>(src, dst, b, e);
    case Elem::u16:
      return cast_range<std::uint16_t, D>(src, dst, b, e);
    case Elem::u32:
      return cast_range<std::uint32_t, D>(src, dst, b, e);
    case Elem::u64:
      return cast_range<std::uint64_t, D>(src, dst, b, e);
  }
}

std::int64_t size_of(Elem t) {
  switch (t) {
    case Elem::f16:
    case Elem::i16:
    case Elem::u16:
      return 2;
    case Elem::f32:
    case Elem::i32:
    case Elem::u32:
      return 4;
    case Elem::f64:
    case Elem::i64:
    case Elem::u64:
      return 8;
    default:
      return 1;
  }
}

}  // namespace

void convert(const void* src, Elem from, void* dst, Elem to, std::int64_t n) {
  if (n <= 0) return;
  const std::int64_t width = size_of(from) > size_of(to) ? size_of(from) : size_of(to);
  const std::int64_t grain = kGrainBytes / width;
  if (from == to) {
    const std::int64_t es = size_of(from);
    parallel_for(n, grain, [&](std::int64_t b, std::int64_t e) {
      std::memcpy(static_cast<char*>(dst) + b * es, static_cast<const char*>(src) + b * es, (e - b) * es);
    });
  } else if (from == Elem::f32 && to == Elem::f16) {
    parallel_for(n, grain, [&](std::int64_t b, std::int64_t e) {
      const auto* s = static_cast<const float*>(src);
      auto* d = static_cast<std::uint16_t*>(dst);
      for (std::int64_t i = b; i < e; ++i) d[i] = float_to_half(s[i]);
    });
  } else if (to == Elem::f64) {
    parallel_for(n, grain, [&](std::int64_t b, std::int64_t e) { cast_from<double>(from, src, dst, b, e); });
  } else if (to == Elem::f32) {
    parallel_for(n, grain, [&](std::int64_t b, std::int64_t e) { cast_from<float>(from, src, dst, b, e); });
  } else {
    throw std::invalid_argument(
        "convert: the target type must be float32, float64, the source type, or float16 from float32");
  }
}

template <class T>
void scale_rows(const T* src, const T* w, T* dst, std::int64_t rows, std::int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  const std::int64_t grain = std::max<std::int64_t>(1, kGrainBytes / (cols * static_cast<std::int64_t>(sizeof(T))));
  parallel_for(rows, grain, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) {
      const T wi = w[i];
      const T* s = src + i * cols;
      T* d = dst + i * cols;
      for (std::int64_t j = 0; j < cols; ++j) d[j] = s[j] * wi;
    }
  });
}

template void scale_rows<float>(const float*, const float*, float*, std::int64_t, std::int64_t);
template void scale_rows<double>(const double*, const double*, double*, std::int64_t, std::int64_t);

}  // namespace numkern
