// Portable sketch kernels (baseline x86-64): the shared kernels one lane wide, no FMA.
#include <cstddef>
#include <cstdint>

#include "sketch/sketch.h"

namespace numkern::sketch {
namespace {

#include "sketch/sketch_kernels.inl"

template <class TT>
struct Scalar {
  using T = TT;
  using Vec = TT;
  static constexpr std::size_t L = 1;
  static Vec load(const T* p) { return *p; }
  static void store(T* p, Vec v) { *p = v; }
  static Vec loadn(const T* p, std::size_t) { return *p; }
  static void storen(T* p, Vec v, std::size_t) { *p = v; }
  static Vec add(Vec a, Vec b) { return a + b; }
  static Vec sub(Vec a, Vec b) { return a - b; }
  static Vec mul(Vec a, Vec b) { return a * b; }
  static Vec fma(Vec a, Vec b, Vec c) { return a * b + c; }
  // a * b - p exactly when p = fl(a * b), without FMA: Dekker's product of Veltkamp halves.
  static Vec prod_err(Vec a, Vec b, Vec p) {
    constexpr T split = sizeof(T) == 8 ? T(134217729.0) : T(4097.0);
    const T ca = split * a, cb = split * b;
    const T ah = ca - (ca - a), al = a - ah, bh = cb - (cb - b), bl = b - bh;
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  }
  static Vec set1(T a) { return a; }
  static T hsum(Vec v) { return v; }
  static Vec inner(Vec v) { return v; }
};

struct Gen {
  using U = std::uint32_t;
  using F = float;
  static constexpr std::size_t L = 1;
  static U uset1(std::uint32_t a) { return a; }
  static U iota(std::uint32_t j0) { return j0; }
  static U uxor(U a, U b) { return a ^ b; }
  static U uor(U a, U b) { return a | b; }
  static U uand(U a, U b) { return a & b; }
  static U uadd(U a, U b) { return a + b; }
  static U usub(U a, U b) { return a - b; }
  static U umul(U a, U b) { return a * b; }
  static U ushr9(U a) { return a >> 9; }
  static U ushr15(U a) { return a >> 15; }
  static U ushr16(U a) { return a >> 16; }
  static U ushr23(U a) { return a >> 23; }
  static F itof(U a) { return static_cast<float>(static_cast<std::int32_t>(a)); }
  static U f_as_u(F a) {
    U u;
    __builtin_memcpy(&u, &a, sizeof u);
    return u;
  }
  static F u_as_f(U a) {
    F f;
    __builtin_memcpy(&f, &a, sizeof f);
    return f;
  }
  static F set1(float a) { return a; }
  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F mul(F a, F b) { return a * b; }
  static F div(F a, F b) { return a / b; }
  static F fma(F a, F b, F c) { return a * b + c; }
  static F sqrt(F a) { return __builtin_sqrtf(a); }
  static bool gt(F a, F b) { return a > b; }
  static F blend(bool m, F a, F b) { return m ? a : b; }
  static U ublend(bool m, U a, U b) { return m ? a : b; }
  static void store(float* p, F v) { *p = v; }
};

}  // namespace

const Kernels kernels_scalar = {"scalar", 1, 1, typed_table<Scalar<float>>(), typed_table<Scalar<double>>(),
                                &gauss_fill<Gen>, &ls_refine_rows<Scalar<double>>};

}  // namespace numkern::sketch
