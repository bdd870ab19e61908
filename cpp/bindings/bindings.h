// Shared declarations of the binding translation units: each family adds one bind_<family>().
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace numkern::bindings {

namespace py = pybind11;

// Kernel name of a family at the active ISA level, shown by numkern.cpu_info().
using KernelNameFn = std::string (*)();
void register_kernel_name(const char* family, KernelNameFn fn);

// Shape and byte strides of an array as int64 vectors (the drivers index with 64-bit offsets).
struct Layout {
  std::vector<std::int64_t> shape, strides;
};
Layout layout_of(const py::array& a);

// NumPy's shape and stride arrays viewed as int64 without a copy (ssize_t is 64-bit on every
// platform numkern builds for).
static_assert(sizeof(py::ssize_t) == sizeof(std::int64_t), "numkern needs a 64-bit ssize_t");
inline const std::int64_t* as_int64(const py::ssize_t* p) { return reinterpret_cast<const std::int64_t*>(p); }

// The float kernels' element type of an array the Python layer has checked to be float32 or float64,
// by item size: a dtype identity test (dtype().is(...)) misses float32 dtypes that are equal but not
// the same object (unpickled on a dask worker, or carrying metadata) and would read them as float64.
inline Dtype float_dtype(const py::array& a) { return a.itemsize() == 4 ? Dtype::f32 : Dtype::f64; }

void bind_softmax(py::module_& m);
void bind_norm(py::module_& m);
void bind_quant(py::module_& m);
void bind_dp(py::module_& m);
void bind_sketch(py::module_& m);

}  // namespace numkern::bindings
