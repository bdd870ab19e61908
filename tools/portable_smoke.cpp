// Smoke driver for a build of the kernel library on its own (NUMKERN_BUILD_EXTENSION=OFF), used by
// tools/portable_build.sh for a non-x86 target: links numkern_kernels, prints the architecture and
// ISA level the library reports, and checks softmax and log-softmax through the public driver API
// against a double-precision reference (float32 and float64, every algorithm, contiguous and strided slices).
// Prints one line per fact and "smoke: ok" last; exits non-zero on a wrong result.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "common/isa.h"
#include "common/parallel.h"
#include "softmax/softmax.h"

namespace {

using numkern::softmax::Algorithm;
using numkern::Dtype;

// Largest relative error of softmax (absolute error of log-softmax) over `rows` slices of n
// elements along axis 1 of a rows x n array, stored row-major (contiguous slices) or column-major
// (every slice strided), against a double-precision reference.
template <class T>
double max_error(Dtype dtype, Algorithm algorithm, bool log, bool column_major, int rows, int n) {
  std::vector<T> x(static_cast<std::size_t>(rows) * n), y(x.size());
  std::uint32_t state = 12345;
  for (T& v : x) {
    state = state * 1664525u + 1013904223u;
    v = static_cast<T>((static_cast<double>(state >> 8) / (1 << 24) - 0.5) * 40.0);
  }
  const std::int64_t es = sizeof(T);
  const std::int64_t shape[2] = {rows, n};
  const std::int64_t strides[2] = {column_major ? es : es * n, column_major ? es * rows : es};
  auto at = [&](int r, int i) { return static_cast<std::size_t>(column_major ? i * rows + r : r * n + i); };
  numkern::softmax::run(dtype, x.data(), strides, y.data(), strides, shape, 2, 1, algorithm, log);
  double worst = 0;
  for (int r = 0; r < rows; ++r) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; ++i) mx = std::fmax(mx, static_cast<double>(x[at(r, i)]));
    for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[at(r, i)]) - mx);
    for (int i = 0; i < n; ++i) {
      const double lref = static_cast<double>(x[at(r, i)]) - mx - std::log(sum);
      const double got = y[at(r, i)];
      const double err = log ? std::fabs(got - lref) : std::fabs(got - std::exp(lref)) / std::exp(lref);
      if (!(err <= worst)) worst = err;  // a NaN result becomes the worst error
    }
  }
  return worst;
}

}  // namespace

int main() {
  using numkern::isa_name;
  std::printf("arch: %s\n", numkern::target_arch());
  std::printf("detected: %s\n", isa_name(numkern::detected_isa()));
  std::printf("active: %s\n", isa_name(numkern::active_isa()));
  std::printf("softmax kernels: %s\n", numkern::softmax::active_kernels().isa);
  std::printf("threads: %d (%s)\n", numkern::num_threads(), numkern::threads_available() ? "openmp" : "none");
  bool ok = true;
  const Algorithm algorithms[] = {Algorithm::auto_select, Algorithm::two_pass, Algorithm::three_pass_reload,
                                  Algorithm::three_pass_recompute};
  for (const Algorithm algorithm : algorithms) {
    for (const bool log : {false, true}) {
      for (const bool column_major : {false, true}) {
        // Rows long enough for the blocked loops and a partial tail; an odd row count.
        const double e32 = max_error<float>(Dtype::f32, algorithm, log, column_major, 7, 1031);
        const double e64 = max_error<double>(Dtype::f64, algorithm, log, column_major, 7, 1031);
        const bool good = e32 < 1e-5 && e64 < 1e-13;
        ok = ok && good;
        std::printf("softmax algorithm=%d log=%d column_major=%d: max error f32 %.3g f64 %.3g%s\n",
                    static_cast<int>(algorithm), log, column_major, e32, e64, good ? "" : "  FAILED");
      }
    }
  }
  std::printf(ok ? "smoke: ok\n" : "smoke: FAILED\n");
  return ok ? 0 : 1;
}
