// The one extension module: numkern._core. Bindings unpack buffers and release the GIL; the
// Python package validates arguments before it calls in here.
#include "bindings/bindings.h"

#include <pybind11/stl.h>

#include <atomic>
#include <cstring>
#include <map>

#include "common/convert.h"
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

#if defined(_WIN32)
#define NUMKERN_EXPORT __declspec(dllexport)
#else
#define NUMKERN_EXPORT __attribute__((visibility("default")))
#endif

// threadpoolctl tells numkern's extension from other modules named "_core" by this exported
// symbol (the controller in python/numkern/_runtime.py lists it as check_symbols).
extern "C" NUMKERN_EXPORT int numkern_get_num_threads() { return numkern::num_threads(); }

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
  m.def("threading", [] { return std::string(threads_available() ? "pool" : "none"); });
  m.def("get_num_threads", [] { return num_threads(); });
  m.def("set_num_threads", [](int n) { set_num_threads(n); }, py::arg("n"));
  m.def("get_max_threads", [] { return max_threads(); });
  m.def("get_thread_limit", [] { return thread_limit(); });
  m.def("set_thread_limit", [](int n) { set_thread_limit(n); }, py::arg("n"));
  m.def("available_cpus", [] { return available_cpus(); });
  m.def("pool_threads_started", [] { return pool_threads_started(); });
  m.def(
      "convert",
      [](py::array dst, py::array src) {
        auto elem = [](const py::dtype& dt, const char* what) {
          if (!dt.attr("isnative").cast<bool>())
            throw py::type_error(std::string("convert: ") + what + " must be in native byte order");
          const char k = dt.kind();
          const auto size = dt.itemsize();
          if (k == 'f' && size == 2) return Elem::f16;
          if (k == 'f' && size == 4) return Elem::f32;
          if (k == 'f' && size == 8) return Elem::f64;
          if (k == 'b' && size == 1) return Elem::b1;
          if (k == 'i' && size == 1) return Elem::i8;
          if (k == 'i' && size == 2) return Elem::i16;
          if (k == 'i' && size == 4) return Elem::i32;
          if (k == 'i' && size == 8) return Elem::i64;
          if (k == 'u' && size == 1) return Elem::u8;
          if (k == 'u' && size == 2) return Elem::u16;
          if (k == 'u' && size == 4) return Elem::u32;
          if (k == 'u' && size == 8) return Elem::u64;
          throw py::type_error(std::string("convert: unsupported ") + what + " dtype");
        };
        const Elem from = elem(src.dtype(), "source"), to = elem(dst.dtype(), "target");
        if (!(dst.flags() & py::array::c_style) || !(src.flags() & py::array::c_style) || !dst.writeable() ||
            dst.size() != src.size() || !(dst.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) ||
            !(src.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
          throw py::value_error("convert: expected two aligned C-contiguous arrays of one size, the target writeable");
        if (to != from && to != Elem::f32 && to != Elem::f64 && !(from == Elem::f32 && to == Elem::f16))
          throw py::type_error(
              "convert: the target must be float32, float64, the source's dtype, or float16 from float32");
        const void* s = src.data();
        void* d = dst.mutable_data();
        const std::int64_t n = static_cast<std::int64_t>(src.size());
        py::gil_scoped_release nogil;
        convert(s, from, d, to, n);
      },
      py::arg("dst"), py::arg("src"));
  m.def(
      "scale_rows",
      [](py::array dst, py::array src, py::array w) {
        const auto aligned_c = [](const py::array& a) {
          return (a.flags() & py::array::c_style) && (a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_);
        };
        const auto native_float = [](const py::dtype& dt) {
          return dt.kind() == 'f' && (dt.itemsize() == 4 || dt.itemsize() == 8) && dt.attr("isnative").cast<bool>();
        };
        if (!native_float(src.dtype()) || !dst.dtype().equal(src.dtype()) || !w.dtype().equal(src.dtype()))
          throw py::type_error("scale_rows: dst, src and w must share one dtype, float32 or float64");
        if (src.ndim() != 2 || dst.ndim() != 2 || w.ndim() != 1 || dst.shape(0) != src.shape(0) ||
            dst.shape(1) != src.shape(1) || w.shape(0) != src.shape(0) || !aligned_c(src) || !aligned_c(dst) ||
            !aligned_c(w) || !dst.writeable())
          throw py::value_error("scale_rows: expected aligned C-contiguous src, dst (n, k) and w (n,), dst writeable");
        const std::int64_t rows = src.shape(0), cols = src.shape(1);
        const void *s = src.data(), *pw = w.data();
        void* d = dst.mutable_data();
        py::gil_scoped_release nogil;
        if (src.itemsize() == 4)
          scale_rows(static_cast<const float*>(s), static_cast<const float*>(pw), static_cast<float*>(d), rows, cols);
        else
          scale_rows(static_cast<const double*>(s), static_cast<const double*>(pw), static_cast<double*>(d), rows,
                     cols);
      },
      py::arg("dst"), py::arg("src"), py::arg("w"));
  // A threaded read over the pool (with convert as the threaded copy): the memory-bandwidth bound
  // the benchmarks set beside a kernel at the same thread count.
  m.def(
      "bandwidth_read",
      [](py::array src) {
        if (!(src.flags() & py::array::c_style)) throw py::value_error("bandwidth_read: expected a C-contiguous array");
        const auto* s = static_cast<const unsigned char*>(src.data());
        const std::int64_t n = static_cast<std::int64_t>(src.nbytes()) / 8;
        std::atomic<std::uint64_t> total{0};
        {
          py::gil_scoped_release nogil;
          parallel_for(n, std::int64_t{1} << 13, [&](std::int64_t a, std::int64_t b) {
            std::uint64_t acc = 0;
            for (std::int64_t i = a; i < b; ++i) {
              std::uint64_t w;
              std::memcpy(&w, s + 8 * i, 8);
              acc += w;
            }
            total.fetch_add(acc, std::memory_order_relaxed);
          });
        }
        return total.load();
      },
      py::arg("src"));
  // Arithmetic only, no memory traffic, over the pool: `bench --threads` times it beside every case
  // to show the speed-up the machine itself gives a second thread at that moment (a shared machine
  // may lend it only part of a core). Each unit is a chain of 4096 dependent multiply-adds from its
  // own seed, so the result depends on `units` only.
  m.def(
      "compute_probe",
      [](std::int64_t units) {
        if (units < 0 || units > (std::int64_t{1} << 20))
          throw py::value_error("compute_probe: units must be in [0, 2^20]");
        std::atomic<std::uint64_t> total{0};
        {
          py::gil_scoped_release nogil;
          parallel_for(units, 1, [&](std::int64_t a, std::int64_t b) {
            std::uint64_t acc = 0;
            for (std::int64_t u = a; u < b; ++u) {
              std::uint64_t x = static_cast<std::uint64_t>(u) + 1;
              for (int i = 0; i < 4096; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
              acc += x;
            }
            total.fetch_add(acc, std::memory_order_relaxed);
          });
        }
        return total.load();
      },
      py::arg("units"));

  bind_softmax(m);
  bind_norm(m);
  bind_quant(m);
  bind_dp(m);
  bind_sketch(m);
}
