#include <string>

#include "bindings/bindings.h"
#include "bindings/checks.h"
#include "norm/norm.h"

namespace numkern::bindings {

namespace {
const void* data_or_null(const py::object& o) { return o.is_none() ? nullptr : o.cast<py::array>().data(); }
void* mutable_data_or_null(const py::object& o) { return o.is_none() ? nullptr : o.cast<py::array>().mutable_data(); }
}  // namespace

void bind_norm(py::module_& m) {
  register_kernel_name("norm", [] {
    return std::string("f32/f64/i8_norm_") + norm::active_kernels().isa +
           (norm::int8_lut_active() ? "+vbmi_table" : "");
  });

  // Python validates everything first (with messages in the API's terms); these checks repeat
  // what the kernels rely on: dtypes (float32/float64 alike, or int8), shapes, axis, that each
  // output is writeable and either an input itself or not overlapping it, and that
  // weight/bias/dweight/dbias are contiguous, aligned arrays of shape[axis] elements (or None).
  m.attr("norm_kinds") = py::make_tuple("l1", "l2", "l1_uncentered", "rms");
  constexpr int kKinds = 4;

  m.def(
      "norm_forward",
      [](const py::array& x, py::array& out, int axis, int kind, const py::object& w, const py::object& b, double eps,
         bool fresh, const py::object& residual, const py::object& h, bool fresh_h) {
        const Check c("norm_forward");
        c.float_dtype(x, "x").in_out(x, out).axis(axis, x.ndim()).that(eps >= 0, "eps must be >= 0");
        c.that(kind >= 0 && kind < kKinds, "kind must be a code of norm_kinds");
        c.vector_or_none(w, "weight", x, x.shape(axis)).vector_or_none(b, "bias", x, x.shape(axis));
        c.that(residual.is_none() == h.is_none(), "residual and h must be given together");
        py::array r_arr, h_arr;
        Layout lr, lh;
        norm::Residual res{};
        if (!residual.is_none()) {
          c.that(py::isinstance<py::array>(residual) && py::isinstance<py::array>(h),
                 "residual and h must be ndarrays");
          r_arr = residual.cast<py::array>();
          h_arr = h.cast<py::array>();
          c.in_out(x, h_arr).same_dtype(x, r_arr, "x and residual").same_shape(x, r_arr, "x and residual");
          c.aligned(r_arr, "residual").same_or_disjoint(r_arr, h_arr, "h must be residual itself or not overlap it");
          c.same_or_disjoint(r_arr, out, "out must be residual itself or not overlap it");
          c.disjoint(out, h_arr, "out and h must not overlap");
          lr = layout_of(r_arr), lh = layout_of(h_arr);
          res = {r_arr.data(), lr.strides.data(), h_arr.mutable_data(), lh.strides.data(), fresh_h};
        }
        const Layout lx = layout_of(x), lo = layout_of(out);
        const auto dtype = float_dtype(x);
        const void* px = x.data();
        void* po = out.mutable_data();
        const void *pw = data_or_null(w), *pb = data_or_null(b);
        const norm::Residual* pres = residual.is_none() ? nullptr : &res;
        py::gil_scoped_release release;
        norm::forward(dtype, static_cast<norm::Kind>(kind), px, lx.strides.data(), po, lo.strides.data(),
                      lx.shape.data(), static_cast<int>(x.ndim()), axis, pw, pb, eps, fresh, pres);
      },
      py::arg("x"), py::arg("out"), py::arg("axis"), py::arg("kind"), py::arg("weight"), py::arg("bias"),
      py::arg("eps"), py::arg("fresh") = false, py::arg("residual") = py::none(), py::arg("h") = py::none(),
      py::arg("fresh_h") = false);
  m.def(
      "norm_backward",
      [](const py::array& dy, const py::array& x, py::array& dx, int axis, int kind, const py::object& w,
         const py::object& dw, const py::object& db, double eps) {
        const Check c("norm_backward");
        c.that(kind >= 0 && kind < kKinds, "kind must be a code of norm_kinds");
        c.float_dtype(x, "x").in_out(dy, dx).same_dtype(x, dx, "x and dx").same_shape(x, dx, "x and dx");
        c.aligned(x, "x")
            .disjoint(x, dx, "dx must not overlap x")
            .axis(axis, x.ndim())
            .that(eps >= 0, "eps must be >= 0");
        const std::int64_t n = x.shape(axis);
        c.vector_or_none(w, "weight", x, n)
            .vector_or_none(dw, "dweight", x, n, true)
            .vector_or_none(db, "dbias", x, n, true);
        const Layout ldy = layout_of(dy), lx = layout_of(x), ldx = layout_of(dx);
        const auto dtype = float_dtype(x);
        const void *pdy = dy.data(), *px = x.data(), *pw = data_or_null(w);
        void* pdx = dx.mutable_data();
        void *pdw = mutable_data_or_null(dw), *pdb = mutable_data_or_null(db);
        py::gil_scoped_release release;
        norm::backward(dtype, static_cast<norm::Kind>(kind), pdy, ldy.strides.data(), px, lx.strides.data(), pdx,
                       ldx.strides.data(), lx.shape.data(), static_cast<int>(x.ndim()), axis, pw, pdw, pdb, eps);
      },
      py::arg("dy"), py::arg("x"), py::arg("dx"), py::arg("axis"), py::arg("kind"), py::arg("weight"),
      py::arg("dweight"), py::arg("dbias"), py::arg("eps"));
  m.def(
      "l1_norm_int8",
      [](const py::array& q, py::array& out, int axis, int out_shift, bool centered) {
        Check("l1_norm_int8")
            .dtype(q, "q", 'i', 1)
            .in_out(q, out)
            .axis(axis, q.ndim())
            .that(out_shift >= 0 && out_shift <= 7, "out_shift must be in [0, 7]");
        const Layout lq = layout_of(q), lo = layout_of(out);
        const auto* pq = static_cast<const std::int8_t*>(q.data());
        auto* po = static_cast<std::int8_t*>(out.mutable_data());
        py::gil_scoped_release release;
        norm::forward_int8(pq, lq.strides.data(), po, lo.strides.data(), lq.shape.data(), static_cast<int>(q.ndim()),
                           axis, out_shift, centered);
      },
      py::arg("q"), py::arg("out"), py::arg("axis"), py::arg("out_shift"), py::arg("centered") = true);
  m.def("_norm_set_int8_lut", &norm::set_int8_lut, py::arg("enabled"));
}

}  // namespace numkern::bindings
