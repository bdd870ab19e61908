// The GCC / Clang builtins the kernels use, defined for MSVC (which has none of them) with the same
// results: the libm functions they stand for, IEEE infinity and quiet NaN. Included only when
// compiling with MSVC (through simd_base.h), so GCC and Clang keep their builtins and their code.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>

inline double __builtin_inf() { return std::numeric_limits<double>::infinity(); }
inline double __builtin_nan(const char*) { return std::numeric_limits<double>::quiet_NaN(); }
inline double __builtin_fabs(double v) { return std::fabs(v); }
inline float __builtin_fabsf(float v) { return std::fabs(v); }
inline double __builtin_sqrt(double v) { return std::sqrt(v); }
inline float __builtin_sqrtf(float v) { return std::sqrt(v); }
inline double __builtin_exp(double v) { return std::exp(v); }
inline double __builtin_log(double v) { return std::log(v); }
inline double __builtin_cos(double v) { return std::cos(v); }
inline double __builtin_ldexp(double v, int e) { return std::ldexp(v, e); }
inline float __builtin_ldexpf(float v, int e) { return std::ldexp(v, e); }
inline void* __builtin_memcpy(void* d, const void* s, std::size_t n) { return std::memcpy(d, s, n); }
