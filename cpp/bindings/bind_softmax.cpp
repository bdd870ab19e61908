#include <algorithm>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/bindings.h"
#include "bindings/checks.h"
#include "softmax/softmax.h"

namespace numkern::bindings {

namespace {

constexpr int kNpyFloat = 11, kNpyDouble = 12;  // NumPy type numbers of float32 / float64
constexpr int kAlgorithms = 4;                  // softmax::Algorithm's codes are 0 .. kAlgorithms - 1
static_assert(static_cast<int>(softmax::Algorithm::three_pass_recompute) == kAlgorithms - 1);

// Distinct normalized axes as a bit mask (at least one).
std::uint64_t axes_mask(const Check& c, const std::vector<int>& axes, py::ssize_t ndim) {
  std::uint64_t mask = 0;
  c.that(!axes.empty() && ndim <= 64, "at least one axis (and at most 64 dimensions) expected");
  for (int a : axes) {
    c.axis(a, ndim).that(!((mask >> a) & 1), "axes must be distinct");
    mask |= std::uint64_t{1} << a;
  }
  return mask;
}

// where=: None, or a bool array of x's shape (any strides, 0 where broadcast).
py::array where_mask(const Check& c, const py::object& where, const py::array& x) {
  if (where.is_none()) return py::array();
  if (!py::isinstance<py::array>(where)) throw py::type_error("softmax: where must be None or a bool ndarray");
  const auto w = py::reinterpret_borrow<py::array>(where);
  c.dtype(w, "where", 'b', 1).same_shape(w, x, "where and x");
  return w;
}

void run_softmax(const py::array& x, py::array& out, int axis, int algorithm, bool log, bool fresh_output) {
  const Dtype dtype = float_dtype(x);
  const void* px = x.data();
  void* py_ = out.mutable_data();
  const std::int64_t* shape = as_int64(x.shape());
  const std::int64_t *xs = as_int64(x.strides()), *ys = as_int64(out.strides());
  py::gil_scoped_release release;
  softmax::run(dtype, px, xs, py_, ys, shape, static_cast<int>(x.ndim()), axis,
               static_cast<softmax::Algorithm>(algorithm), log, fresh_output);
}

}  // namespace

void bind_softmax(py::module_& m) {
  register_kernel_name("softmax", [] { return std::string("f32/f64_softmax_") + softmax::active_kernels().isa; });

  // The algorithms' names in the order of their codes (softmax::Algorithm), for the Python layer.
  m.attr("softmax_algorithms") = py::make_tuple("auto", "two_pass", "three_pass_reload", "three_pass_recompute");

  // Python validates: x and out have one shape and dtype (float32 or float64), out is writeable
  // and either does not overlap x or is x itself, axis is normalized.
  m.def(
      "softmax",
      [](const py::array& x, py::array& out, int axis, int algorithm, bool log, bool fresh) {
        Check("softmax")
            .float_dtype(x, "x")
            .in_out(x, out)
            .axis(axis, x.ndim())
            .that(algorithm >= 0 && algorithm < kAlgorithms, "algorithm must be a code of softmax_algorithms");
        run_softmax(x, out, axis, algorithm, log, fresh);
      },
      py::arg("x"), py::arg("out"), py::arg("axis"), py::arg("algorithm"), py::arg("log"), py::arg("fresh") = false);
  // The common call checked in C++ (a few Python attribute lookups cost more than an L1-sized
  // softmax): x a native aligned float32/float64 ndarray, out None or a writeable aligned array
  // of x's dtype and shape that is x itself or does not overlap it. Returns the result, or None
  // when the Python layer must take the general path (conversions, errors).
  m.def(
      "softmax_fast",
      [](py::handle xh, py::handle outh, int axis, int algorithm, bool log) -> py::object {
        if (!py::isinstance<py::array>(xh)) return py::none();
        const auto x = py::reinterpret_borrow<py::array>(xh);
        const int num = x.dtype().num();
        const int ndim = static_cast<int>(x.ndim());
        if ((num != kNpyFloat && num != kNpyDouble) || x.dtype().byteorder() == '>' || ndim == 0 ||
            !(x.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) || axis < -ndim || axis >= ndim)
          return py::none();
        axis = axis < 0 ? axis + ndim : axis;
        py::array out;
        if (outh.is_none()) {
          out = py::array(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + ndim));
        } else {
          if (!py::isinstance<py::array>(outh)) return py::none();
          out = py::reinterpret_borrow<py::array>(outh);
          if (out.dtype().num() != num || out.dtype().byteorder() == '>' || out.ndim() != ndim || !out.writeable() ||
              !(out.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
            return py::none();
          for (int d = 0; d < ndim; ++d)
            if (out.shape(d) != x.shape(d)) return py::none();
          const bool same = out.data() == x.data() && std::equal(x.strides(), x.strides() + ndim, out.strides());
          if (!same && x.size() && out.size()) {
            const auto ex = byte_extent(x), eo = byte_extent(out);
            if (ex.first <= eo.second && eo.first <= ex.second) return py::none();
          }
        }
        if (x.size()) run_softmax(x, out, axis, algorithm, log, outh.is_none());
        return std::move(out);
      },
      py::arg("x"), py::arg("out"), py::arg("axis"), py::arg("algorithm"), py::arg("log"));
  // Softmax over several axes at once, and the backward passes over one or several axes: `axes`
  // holds distinct normalized axes, as a bit mask for the driver.
  m.def(
      "softmax_axes",
      [](const py::array& x, py::array& out, const std::vector<int>& axes, int algorithm, bool log, bool fresh,
         const py::object& where) {
        const Check c("softmax_axes");
        c.float_dtype(x, "x").in_out(x, out).that(algorithm >= 0 && algorithm < kAlgorithms,
                                                  "algorithm must be a code of softmax_algorithms");
        const std::uint64_t mask = axes_mask(c, axes, x.ndim());
        const py::array w = where_mask(c, where, x);
        const void* pw = where.is_none() ? nullptr : w.data();
        const std::int64_t* ws = where.is_none() ? nullptr : as_int64(w.strides());
        const Dtype dtype = float_dtype(x);
        const void* px = x.data();
        void* po = out.mutable_data();
        const std::int64_t *shape = as_int64(x.shape()), *xs = as_int64(x.strides()), *os = as_int64(out.strides());
        const int ndim = static_cast<int>(x.ndim());
        py::gil_scoped_release release;
        softmax::run_axes(dtype, px, xs, po, os, shape, ndim, mask, static_cast<softmax::Algorithm>(algorithm), log,
                          fresh, pw, ws);
      },
      py::arg("x"), py::arg("out"), py::arg("axes"), py::arg("algorithm"), py::arg("log"), py::arg("fresh") = false,
      py::arg("where") = py::none());
  m.def(
      "softmax_backward",
      [](const py::array& y, const py::array& dy, py::array& dx, const std::vector<int>& axes, bool log,
         const py::object& where, bool fresh) {
        const Check c("softmax_backward");
        c.float_dtype(y, "y").in_out(y, dx).in_out(dy, dx);
        const std::uint64_t mask = axes_mask(c, axes, y.ndim());
        const py::array w = where_mask(c, where, y);
        const void* pw = where.is_none() ? nullptr : w.data();
        const std::int64_t* ws = where.is_none() ? nullptr : as_int64(w.strides());
        const Dtype dtype = float_dtype(y);
        const void *py_ = y.data(), *pdy = dy.data();
        void* pdx = dx.mutable_data();
        const std::int64_t *shape = as_int64(y.shape()), *ys = as_int64(y.strides()), *dys = as_int64(dy.strides()),
                           *dxs = as_int64(dx.strides());
        const int ndim = static_cast<int>(y.ndim());
        py::gil_scoped_release release;
        softmax::backward(dtype, py_, ys, pdy, dys, pdx, dxs, shape, ndim, mask, log, pw, ws, fresh);
      },
      py::arg("y"), py::arg("dy"), py::arg("dx"), py::arg("axes"), py::arg("log"), py::arg("where") = py::none(),
      py::arg("fresh") = false);
  // The two passes separately, for reductions across chunks (numkern.dask). Python validates: x
  // float32/float64, m and e float64 C-contiguous with one entry per slice (C order over the
  // dimensions other than axis), out like x and not overlapping it.
  m.def(
      "softmax_ext_partials",
      [](const py::array& x, int axis, py::array& m, py::array& e) {
        const Check c("softmax_ext_partials");
        c.float_dtype(x, "x").aligned(x, "x").axis(axis, x.ndim());
        for (auto [a, name] : {std::pair{&m, "m"}, std::pair{&e, "e"}})
          c.dtype(*a, name, 'f', 8)
              .dense(*a, name)
              .writeable(*a, name)
              .that(a->size() == slices_of(x, axis), std::string(name) + " must have one entry per slice");
        const Dtype dtype = float_dtype(x);
        const void* px = x.data();
        auto *pm = static_cast<double*>(m.mutable_data()), *pe = static_cast<double*>(e.mutable_data());
        const std::int64_t *shape = as_int64(x.shape()), *xs = as_int64(x.strides());
        const int ndim = static_cast<int>(x.ndim());
        py::gil_scoped_release release;
        softmax::ext_partials(dtype, px, xs, shape, ndim, axis, pm, pe);
      },
      py::arg("x"), py::arg("axis"), py::arg("m"), py::arg("e"));
  m.def(
      "softmax_scale_ext",
      [](const py::array& x, py::array& out, int axis, const py::array& m, const py::array& e, bool log) {
        const Check c("softmax_scale_ext");
        c.float_dtype(x, "x").in_out(x, out).axis(axis, x.ndim());
        for (auto [a, name] : {std::pair{&m, "m"}, std::pair{&e, "e"}})
          c.dtype(*a, name, 'f', 8)
              .dense(*a, name)
              .that(a->size() == slices_of(x, axis), std::string(name) + " must have one entry per slice");
        const Dtype dtype = float_dtype(x);
        const void* px = x.data();
        void* py_ = out.mutable_data();
        const auto *pm = static_cast<const double*>(m.data()), *pe = static_cast<const double*>(e.data());
        const std::int64_t *shape = as_int64(x.shape()), *xs = as_int64(x.strides()), *ys = as_int64(out.strides());
        const int ndim = static_cast<int>(x.ndim());
        py::gil_scoped_release release;
        softmax::scale_ext(dtype, px, xs, py_, ys, shape, ndim, axis, pm, pe, log);
      },
      py::arg("x"), py::arg("out"), py::arg("axis"), py::arg("m"), py::arg("e"), py::arg("log"));
}

}  // namespace numkern::bindings
