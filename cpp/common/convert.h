// Element-type conversion of a contiguous array on the thread pool: the dtype conversions of the
// Python layer (float16 -> float32, integers -> float64, plain copies) for large inputs, which
// NumPy's astype/copy would do on one thread before a parallel kernel.
#pragma once

#include <cstdint>

namespace numkern {

enum class Elem { f16, f32, f64, b1, i8, i16, i32, i64, u8, u16, u32, u64 };

// dst[i] = src[i] converted as NumPy's astype does, bit for bit: any listed type to f32 or f64 (a
// C cast, as NumPy's), f32 to f16 (NumPy's rounding), or the same type (a copy).
void convert(const void* src, Elem from, void* dst, Elem to, std::int64_t n);

// dst[i, j] = src[i, j] * w[i] for a C-contiguous rows x cols float32/float64 array (one IEEE
// multiply per element, so bit for bit NumPy's `src * w[:, None]`); dst may be src.
template <class T>
void scale_rows(const T* src, const T* w, T* dst, std::int64_t rows, std::int64_t cols);

}  // namespace numkern
