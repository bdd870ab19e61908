#include <string>

#include "bindings/bindings.h"
#include "softmax/softmax.h"

namespace numkern::bindings {

void bind_softmax(py::module_& m) {
  register_kernel_name("softmax", [] { return std::string("f32/f64_softmax_") + softmax::active_kernels().isa; });

  // Python validates: x and out have one shape and dtype (float32 or float64), out is writeable
  // and either does not overlap x or is x itself, axis is normalized.
  m.def(
      "softmax",
      [](const py::array& x, py::array& out, int axis, int algorithm, bool log) {
        const auto dtype = x.itemsize() == 4 ? softmax::Dtype::f32 : softmax::Dtype::f64;
        const void* px = x.data();
        void* py_ = out.mutable_data();
        const std::int64_t* shape = as_int64(x.shape());
        const std::int64_t *xs = as_int64(x.strides()), *ys = as_int64(out.strides());
        py::gil_scoped_release release;
        softmax::run(dtype, px, xs, py_, ys, shape, static_cast<int>(x.ndim()), axis,
                     static_cast<softmax::Algorithm>(algorithm), log);
      },
      py::arg("x"), py::arg("out"), py::arg("axis"), py::arg("algorithm"), py::arg("log"));
  m.def(
      "softmax_auto_algorithm",
      [](bool is_f64, std::int64_t n, bool log) {
        return static_cast<int>(softmax::auto_algorithm(is_f64 ? softmax::Dtype::f64 : softmax::Dtype::f32, n, log));
      },
      py::arg("is_f64"), py::arg("n"), py::arg("log"));
}

}  // namespace numkern::bindings
