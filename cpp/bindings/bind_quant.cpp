#include <string>

#include "bindings/bindings.h"
#include "quant/quant.h"

namespace numkern::bindings {

void bind_quant(py::module_& m) {
  register_kernel_name("quant",
                       [] { return std::string(quant::active_gemm().name) + "+" + quant::active_quant().name; });

  // Python validates: a (M x K) and b (K x N) are C-contiguous int8, out is a C-contiguous M x N
  // array of the kind's dtype, row/col are float64 of length M/N or None.
  m.def(
      "int8_gemm",
      [](const py::array& a, const py::array& b, py::array& out, int kind, double scale, py::object row,
         py::object col) {
        const std::int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
        const auto* pa = static_cast<const std::int8_t*>(a.data());
        const auto* pb = static_cast<const std::int8_t*>(b.data());
        const double* pr = row.is_none() ? nullptr : static_cast<const double*>(row.cast<py::array>().data());
        const double* pc = col.is_none() ? nullptr : static_cast<const double*>(col.cast<py::array>().data());
        void* po = out.mutable_data();
        py::gil_scoped_release release;
        quant::int8_gemm(M, N, K, pa, pb, static_cast<quant::OutKind>(kind), po, scale, pr, pc);
      },
      py::arg("a"), py::arg("b"), py::arg("out"), py::arg("kind"), py::arg("scale"), py::arg("row"), py::arg("col"));

  // Python validates: p C-contiguous uint8 (rows x m), out C-contiguous int8 (rows x n).
  m.def(
      "unpack_int4",
      [](const py::array& p, py::array& out, std::int64_t rows, std::int64_t m, std::int64_t n) {
        const auto* pp = static_cast<const std::uint8_t*>(p.data());
        auto* po = static_cast<std::int8_t*>(out.mutable_data());
        py::gil_scoped_release release;
        quant::unpack_int4(pp, rows, m, po, n);
      },
      py::arg("p"), py::arg("out"), py::arg("rows"), py::arg("m"), py::arg("n"));

  // Python validates: x C-contiguous float32 of outer * L * inner elements, q int8 of the same
  // size, shift uint8 of L (channel) or outer * nblocks * inner (block) entries.
  m.def(
      "shiftquant",
      [](const py::array& x, std::int64_t outer, std::int64_t L, std::int64_t inner, int bits, int n_groups,
         std::int64_t block, bool stochastic, std::uint64_t key, bool preshift, py::array& q, py::array& shift) {
        const auto* px = static_cast<const float*>(x.data());
        auto* pq = static_cast<std::int8_t*>(q.mutable_data());
        auto* ps = static_cast<std::uint8_t*>(shift.mutable_data());
        float base = 0.0f;
        bool ok;
        {
          py::gil_scoped_release release;
          ok = quant::shiftquant(px, outer, L, inner, bits, n_groups, block, stochastic, key, preshift, pq, ps, &base);
        }
        return py::make_tuple(ok, base);
      },
      py::arg("x"), py::arg("outer"), py::arg("L"), py::arg("inner"), py::arg("bits"), py::arg("n_groups"),
      py::arg("block"), py::arg("stochastic"), py::arg("key"), py::arg("preshift"), py::arg("q"), py::arg("shift"));
}

}  // namespace numkern::bindings
