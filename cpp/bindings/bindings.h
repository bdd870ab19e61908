// Shared declarations of the binding translation units: each family adds one bind_<family>().
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

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

void bind_softmax(py::module_& m);
void bind_sketch(py::module_& m);

}  // namespace numkern::bindings
