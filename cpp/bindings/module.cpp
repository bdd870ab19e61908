// The one extension module: numkern._core. Bindings unpack buffers and release the GIL; the
// Python package validates arguments before it calls in here.
#include "bindings/bindings.h"

#include <pybind11/stl.h>

#include <map>

#include "common/isa.h"
#include "common/parallel.h"

namespace numkern::bindings {

namespace {
std::vector<std::pair<std::string, KernelNameFn>>& kernel_names() {
  static std::vector<std::pair<std::string, KernelNameFn>> names;
  return names;
}

// Only the levels of the build's architecture have names here.
Isa isa_from_name(const std::string& name) {
  int count = 0;
  const Isa* levels = levels_of_build(&count);
  std::string known;
  for (int i = 0; i < count; ++i) {
    if (name == isa_name(levels[i])) return levels[i];
    known += (i ? ", '" : "'") + std::string(isa_name(levels[i])) + "'";
  }
  throw py::value_error("unknown ISA level '" + name + "': expected one of " + known);
}
}  // namespace

void register_kernel_name(const char* family, KernelNameFn fn) { kernel_names().emplace_back(family, fn); }

Layout layout_of(const py::array& a) {
  Layout l;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    l.shape.push_back(a.shape(d));
    l.strides.push_back(a.strides(d));
  }
  return l;
}

}  // namespace numkern::bindings

PYBIND11_MODULE(_core, m) {
  using namespace numkern;
  using namespace numkern::bindings;
  m.doc() = "numkern compiled kernels (internal; use the numkern package)";

  // The flags of the build's architecture (x86-64: CPUID and XCR0; AArch64: HWCAP names).
  m.def("cpu_features", [] {
    const CpuFeatures& f = cpu_features();
    if (std::string(target_arch()) == "aarch64")
      return std::map<std::string, bool>{{"asimd", f.asimd}, {"asimddp", f.asimddp}, {"i8mm", f.i8mm},
                                         {"fphp", f.fphp},   {"asimdhp", f.asimdhp}, {"bf16", f.bf16}};
    return std::map<std::string, bool>{{"sse4.2", f.sse42},
                                       {"popcnt", f.popcnt},
                                       {"avx", f.avx},
                                       {"avx2", f.avx2},
                                       {"fma", f.fma},
                                       {"f16c", f.f16c},
                                       {"bmi1", f.bmi1},
                                       {"bmi2", f.bmi2},
                                       {"lzcnt", f.lzcnt},
                                       {"avx512f", f.avx512f},
                                       {"avx512bw", f.avx512bw},
                                       {"avx512dq", f.avx512dq},
                                       {"avx512vl", f.avx512vl},
                                       {"avx512cd", f.avx512cd},
                                       {"avx512vnni", f.avx512vnni},
                                       {"avx512vbmi", f.avx512vbmi},
                                       {"avx512bf16", f.avx512bf16},
                                       {"avxvnni", f.avxvnni},
                                       {"os_saves_ymm", f.os_saves_ymm},
                                       {"os_saves_zmm", f.os_saves_zmm}};
  });
  m.def("isa_levels", [] {
    int count = 0;
    const Isa* levels = levels_of_build(&count);
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) out.emplace_back(isa_name(levels[i]));
    return out;
  });
  m.def("detected_isa", [] { return std::string(isa_name(detected_isa())); });
  m.def("active_isa", [] { return std::string(isa_name(active_isa())); });
  m.def(
      "set_isa", [](const std::string& name) { return std::string(isa_name(set_active_isa(isa_from_name(name)))); },
      py::arg("name"));
  m.def("kernel_names", [] {
    std::map<std::string, std::string> out;
    for (const auto& [family, fn] : kernel_names()) out[family] = fn();
    return out;
  });
  m.def("target_arch", [] { return std::string(target_arch()); });
  m.def("threading", [] { return std::string(threads_available() ? "openmp" : "none"); });
  m.def("get_num_threads", [] { return num_threads(); });
  m.def("set_num_threads", [](int n) { set_num_threads(n); }, py::arg("n"));

  bind_softmax(m);
  bind_norm(m);
  bind_quant(m);
  bind_dp(m);
  bind_sketch(m);
}
