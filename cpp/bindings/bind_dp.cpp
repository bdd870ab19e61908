#include <string>

#include "bindings/bindings.h"
#include "dp/dp.h"

namespace numkern::bindings {

namespace {
using DArr = py::array_t<double, py::array::c_style>;
using IArr = py::array_t<std::int64_t, py::array::c_style>;
}  // namespace

void bind_dp(py::module_& m) {
  register_kernel_name("dp", [] { return std::string("f64_pairsum_rff_") + dp::active_kernels().isa; });

  // Python validates: C-contiguous float64 arrays of matching shapes, w of length nx or None,
  // m of the feature arrays a multiple of 32, outputs preallocated.
  m.def(
      "dp_pair_sum",
      [](const DArr& X, const DArr& Y, const py::object& w, int kind, double p, DArr& out) {
        const double* pw = w.is_none() ? nullptr : w.cast<DArr>().data();
        const std::int64_t nx = X.shape(0), ny = Y.shape(0), d = X.shape(1);
        const double *px = X.data(), *py_ = Y.data();
        double* po = out.mutable_data();
        py::gil_scoped_release release;
        dp::pair_sum(px, nx, py_, ny, d, pw, kind, p, po);
      },
      py::arg("X"), py::arg("Y"), py::arg("w"), py::arg("kind"), py::arg("p"), py::arg("out"));
  m.def(
      "dp_rff_sum",
      [](const DArr& X, const DArr& Wt, const DArr& b, double scale, IArr& acc) {
        const std::int64_t nx = X.shape(0), d = X.shape(1), mm = Wt.shape(0) * dp::kBlock;  // packed (m/32, d, 32)
        const double *px = X.data(), *pw = Wt.data(), *pb = b.data();
        std::int64_t* pa = acc.mutable_data();
        py::gil_scoped_release release;
        dp::rff_sum(px, nx, d, pw, pb, mm, scale, pa);
      },
      py::arg("X"), py::arg("Wt"), py::arg("b"), py::arg("scale"), py::arg("acc"));
  m.def(
      "dp_rff_features",
      [](const DArr& Y, const DArr& Wt, const DArr& b, DArr& out) {
        const std::int64_t ny = Y.shape(0), d = Y.shape(1), mm = Wt.shape(0) * dp::kBlock;  // packed (m/32, d, 32)
        const double *py_ = Y.data(), *pw = Wt.data(), *pb = b.data();
        double* po = out.mutable_data();
        py::gil_scoped_release release;
        dp::rff_features(py_, ny, d, pw, pb, mm, po);
      },
      py::arg("Y"), py::arg("Wt"), py::arg("b"), py::arg("out"));
  m.def(
      "dp_l1_histogram",
      [](const DArr& X, const DArr& lo, const DArr& inv_width, std::int64_t L, IArr& counts) {
        const std::int64_t n = X.shape(0), d = X.shape(1);
        const double *px = X.data(), *pl = lo.data(), *pw = inv_width.data();
        std::int64_t* pc = counts.mutable_data();
        py::gil_scoped_release release;
        dp::l1_histogram(px, n, d, pl, pw, L, pc);
      },
      py::arg("X"), py::arg("lo"), py::arg("inv_width"), py::arg("L"), py::arg("counts"));
  m.def(
      "dp_l1_query",
      [](const DArr& table, const DArr& lo, const DArr& hi, const DArr& width, const DArr& inv_width, const DArr& N,
         std::int64_t L, double cst, const DArr& Y, DArr& out) {
        const std::int64_t q = Y.shape(0), d = Y.shape(1);
        const double *pt = table.data(), *pl = lo.data(), *ph = hi.data(), *pw = width.data(), *pi = inv_width.data(),
                     *pn = N.data(), *py_ = Y.data();
        double* po = out.mutable_data();
        py::gil_scoped_release release;
        dp::l1_query(pt, pl, ph, pw, pi, pn, d, L, cst, py_, q, po);
      },
      py::arg("table"), py::arg("lo"), py::arg("hi"), py::arg("width"), py::arg("inv_width"), py::arg("N"),
      py::arg("L"), py::arg("cst"), py::arg("Y"), py::arg("out"));
}

}  // namespace numkern::bindings
