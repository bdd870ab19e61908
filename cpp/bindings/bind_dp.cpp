#include <string>

#include "bindings/bindings.h"
#include "bindings/checks.h"
#include "dp/dp.h"

namespace numkern::bindings {

namespace {
// Dense (aligned, C-contiguous) float64 / int64 arrays, checked (checks.h) before any pointer is taken.
const Check& f64(const Check& c, const py::array& a, const char* name) {
  return c.dtype(a, name, 'f', 8).dense(a, name);
}
const Check& i64(const Check& c, const py::array& a, const char* name) {
  return c.dtype(a, name, 'i', 8).dense(a, name);
}
const double* dptr(const py::array& a) { return static_cast<const double*>(a.data()); }
}  // namespace

void bind_dp(py::module_& m) {
  register_kernel_name("dp", [] { return std::string("f64_pairsum_rff_") + dp::active_kernels().isa; });
  // dp::Kind's names in code order, for the Python layer.
  m.attr("dp_kinds") = py::make_tuple("gaussian", "laplacian", "cauchy", "l1", "l2", "sqeuclidean");
  // Each binding checks what its kernel relies on: C-contiguous aligned float64 (int64 counts)
  // arrays of matching shapes, w of length nx or None, the packed frequencies (m/32, d, 32) with
  // m a multiple of 32, outputs preallocated and writeable.
  m.def(
      "dp_pair_sum",
      [](const py::array& X, const py::array& Y, const py::object& w, int kind, double p, py::array& out) {
        const Check c("dp_pair_sum");
        f64(f64(c, X, "X"), Y, "Y").ndim(X, "X", 2).ndim(Y, "Y", 2);
        const std::int64_t nx = X.shape(0), ny = Y.shape(0), d = X.shape(1);
        c.that(Y.shape(1) == d, "X and Y must have the same number of columns")
            .that(kind >= 0 && kind <= dp::sqeuclidean, "kind must be a code of dp_kinds");
        f64(c, out, "out").shape(out, "out", {ny}).writeable(out, "out");
        const double* pw = nullptr;
        if (!w.is_none()) {
          const auto wa = w.cast<py::array>();
          f64(c, wa, "w").shape(wa, "w", {nx});
          pw = dptr(wa);
        }
        const double *px = dptr(X), *py_ = dptr(Y);
        double* po = static_cast<double*>(out.mutable_data());
        py::gil_scoped_release release;
        dp::pair_sum(px, nx, py_, ny, d, pw, kind, p, po);
      },
      py::arg("X"), py::arg("Y"), py::arg("w"), py::arg("kind"), py::arg("p"), py::arg("out"));
  m.def(
      "dp_rff_sum",
      [](const py::array& X, const py::array& Wt, const py::array& b, double scale, py::array& acc) {
        const Check c("dp_rff_sum");
        f64(f64(f64(c, X, "X"), Wt, "Wt"), b, "b").ndim(X, "X", 2);
        const std::int64_t nx = X.shape(0), d = X.shape(1);
        c.shape(Wt, "Wt", {Wt.ndim() == 3 ? Wt.shape(0) : -1, d, dp::kBlock});  // packed (m/32, d, 32)
        const std::int64_t mm = Wt.shape(0) * dp::kBlock;
        c.shape(b, "b", {mm});
        i64(c, acc, "acc").shape(acc, "acc", {mm}).writeable(acc, "acc");
        const double *px = dptr(X), *pw = dptr(Wt), *pb = dptr(b);
        auto* pa = static_cast<std::int64_t*>(acc.mutable_data());
        py::gil_scoped_release release;
        dp::rff_sum(px, nx, d, pw, pb, mm, scale, pa);
      },
      py::arg("X"), py::arg("Wt"), py::arg("b"), py::arg("scale"), py::arg("acc"));
  m.def(
      "dp_rff_features",
      [](const py::array& Y, const py::array& Wt, const py::array& b, py::array& out) {
        const Check c("dp_rff_features");
        f64(f64(f64(c, Y, "Y"), Wt, "Wt"), b, "b").ndim(Y, "Y", 2);
        const std::int64_t ny = Y.shape(0), d = Y.shape(1);
        c.shape(Wt, "Wt", {Wt.ndim() == 3 ? Wt.shape(0) : -1, d, dp::kBlock});
        const std::int64_t mm = Wt.shape(0) * dp::kBlock;
        c.shape(b, "b", {mm});
        f64(c, out, "out").shape(out, "out", {ny, mm}).writeable(out, "out");
        const double *py_ = dptr(Y), *pw = dptr(Wt), *pb = dptr(b);
        double* po = static_cast<double*>(out.mutable_data());
        py::gil_scoped_release release;
        dp::rff_features(py_, ny, d, pw, pb, mm, po);
      },
      py::arg("Y"), py::arg("Wt"), py::arg("b"), py::arg("out"));
  m.def(
      "dp_l1_histogram",
      [](const py::array& X, const py::array& lo, const py::array& inv_width, std::int64_t L, py::array& counts) {
        const Check c("dp_l1_histogram");
        f64(f64(f64(c, X, "X"), lo, "lo"), inv_width, "inv_width").ndim(X, "X", 2).that(L >= 1, "L must be >= 1");
        const std::int64_t n = X.shape(0), d = X.shape(1);
        c.shape(lo, "lo", {d}).shape(inv_width, "inv_width", {d});
        i64(c, counts, "counts").shape(counts, "counts", {d, L}).writeable(counts, "counts");
        const double *px = dptr(X), *pl = dptr(lo), *pw = dptr(inv_width);
        auto* pc = static_cast<std::int64_t*>(counts.mutable_data());
        py::gil_scoped_release release;
        dp::l1_histogram(px, n, d, pl, pw, L, pc);
      },
      py::arg("X"), py::arg("lo"), py::arg("inv_width"), py::arg("L"), py::arg("counts"));
  m.def(
      "dp_l1_query",
      [](const py::array& table, const py::array& lo, const py::array& hi, const py::array& width,
         const py::array& inv_width, const py::array& N, std::int64_t L, double cst, const py::array& Y,
         py::array& out) {
        const Check c("dp_l1_query");
        f64(f64(f64(f64(f64(f64(f64(c, table, "table"), lo, "lo"), hi, "hi"), width, "width"), inv_width, "inv_width"),
                N, "N"),
            Y, "Y")
            .ndim(Y, "Y", 2)
            .that(L >= 1, "L must be >= 1");
        const std::int64_t q = Y.shape(0), d = Y.shape(1);
        c.that(table.size() == d * L * 3, "table must hold d * L * 3 values")
            .shape(lo, "lo", {d})
            .shape(hi, "hi", {d})
            .shape(width, "width", {d})
            .shape(inv_width, "inv_width", {d})
            .shape(N, "N", {d});
        f64(c, out, "out").shape(out, "out", {q}).writeable(out, "out");
        const double *pt = dptr(table), *pl = dptr(lo), *ph = dptr(hi), *pw = dptr(width), *pi = dptr(inv_width),
                     *pn = dptr(N), *py_ = dptr(Y);
        double* po = static_cast<double*>(out.mutable_data());
        py::gil_scoped_release release;
        dp::l1_query(pt, pl, ph, pw, pi, pn, d, L, cst, py_, q, po);
      },
      py::arg("table"), py::arg("lo"), py::arg("hi"), py::arg("width"), py::arg("inv_width"), py::arg("N"),
      py::arg("L"), py::arg("cst"), py::arg("Y"), py::arg("out"));
  m.attr("dp_noise_chunk") = dp::kNoiseChunk;
  m.attr("dp_max_laplace_scale") = dp::kMaxLaplaceScale;
  m.attr("dp_max_gaussian_variance") = dp::kMaxGaussianVariance;
  m.def(
      "dp_chacha20",
      [](const py::array& state, py::array& out) {
        const Check c("dp_chacha20");
        c.dtype(state, "state", 'u', 4).dense(state, "state").shape(state, "state", {16});
        c.dtype(out, "out", 'u', 4).dense(out, "out").ndim(out, "out", 2).writeable(out, "out");
        c.shape(out, "out", {out.shape(0), 16});
        const auto* ps = static_cast<const std::uint32_t*>(state.data());
        auto* po = static_cast<std::uint32_t*>(out.mutable_data());
        const std::int64_t n = out.shape(0);
        py::gil_scoped_release release;
        dp::chacha20(ps, n, po);
      },
      py::arg("state"), py::arg("out"));
  // The key (8 uint32 words) and the noise parameter shared by dp_noise and dp_add_noise.
  auto check_noise = [](const Check& c, const py::array& key, int mechanism, std::uint64_t param) {
    c.dtype(key, "key", 'u', 4).dense(key, "key").shape(key, "key", {8});
    c.that(mechanism == dp::noise_laplace || mechanism == dp::noise_gaussian,
           "mechanism must be 0 (laplace) or 1 (gaussian)");
    c.that(param >= 1 && param <= (mechanism == dp::noise_laplace ? dp::kMaxLaplaceScale : dp::kMaxGaussianVariance),
           "noise parameter out of range [1, dp_max_laplace_scale] / [1, dp_max_gaussian_variance]");
  };
  m.def(
      "dp_noise",
      [check_noise](const py::array& key, int mechanism, std::uint64_t param, py::array& out) {
        const Check c("dp_noise");
        check_noise(c, key, mechanism, param);
        c.dtype(out, "out", 'i', 8).dense(out, "out").ndim(out, "out", 1).writeable(out, "out");
        const auto* pk = static_cast<const std::uint32_t*>(key.data());
        auto* po = static_cast<std::int64_t*>(out.mutable_data());
        const std::int64_t n = out.shape(0);
        py::gil_scoped_release release;
        dp::noise_samples(pk, mechanism, param, n, po);
      },
      py::arg("key"), py::arg("mechanism"), py::arg("param"), py::arg("out"));
  m.def(
      "dp_add_noise",
      [check_noise](const py::array& x, int e, const py::array& key, int mechanism, std::uint64_t param,
                    py::array& out) {
        const Check c("dp_add_noise");
        check_noise(c, key, mechanism, param);
        c.float_dtype(x, "x").dense(x, "x").dense(out, "out").same_dtype(x, out, "x and out");
        c.same_shape(out, x, "x and out").writeable(out, "out").disjoint(x, out, "out must not overlap x");
        c.that(e >= -1000 && e <= 1000, "grid exponent e must be in [-1000, 1000]");
        const auto* pk = static_cast<const std::uint32_t*>(key.data());
        const std::int64_t n = x.size();
        const bool f32 = x.dtype().itemsize() == 4;
        const void* px = x.data();
        void* po = out.mutable_data();
        int status;
        {
          py::gil_scoped_release release;
          status =
              f32 ? dp::add_noise(static_cast<const float*>(px), n, e, pk, mechanism, param, static_cast<float*>(po))
                  : dp::add_noise(static_cast<const double*>(px), n, e, pk, mechanism, param, static_cast<double*>(po));
        }
        c.that(status != 1, "x must be finite (NaN or infinity found)");
        c.that(status != 2, "|x| / 2^e must be below 2^62");
      },
      py::arg("x"), py::arg("e"), py::arg("key"), py::arg("mechanism"), py::arg("param"), py::arg("out"));
}

}  // namespace numkern::bindings
