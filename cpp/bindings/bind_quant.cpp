#include <string>
#include <tuple>

#include "bindings/bindings.h"
#include "bindings/checks.h"
#include "quant/quant.h"

namespace numkern::bindings {

void bind_quant(py::module_& m) {
  register_kernel_name("quant",
                       [] { return std::string(quant::active_gemm().name) + "+" + quant::active_quant().name; });
  // The limits and codes the Python layer uses: int8_gemm's output kinds in code order, the largest
  // K whose int8 dot products always fit int32, the most exponent groups shiftquant takes.
  m.attr("gemm_out_kinds") = py::make_tuple("int32", "int64", "float32", "float64");
  m.attr("gemm_max_k_int32") = quant::kMaxK32;
  m.attr("quant_max_groups") = quant::kMaxGroups;

  // Python validates: a (M x K) and b (K x N) are C-contiguous int8, out is a C-contiguous M x N
  // array of the kind's dtype, row/col are float64 of length M/N or None.
  m.def(
      "int8_gemm",
      [](const py::array& a, const py::array& b, py::array& out, int kind, double scale, py::object row,
         py::object col) {
        const Check c("int8_gemm");
        c.dtype(a, "a", 'i', 1).dense(a, "a").ndim(a, "a", 2).dtype(b, "b", 'i', 1).dense(b, "b").ndim(b, "b", 2);
        c.that(a.shape(1) == b.shape(0), "a (M, K) and b (K, N) expected")
            .that(kind >= 0 && kind <= 3, "kind must be a code of gemm_out_kinds");
        static const char kKind[4] = {'i', 'i', 'f', 'f'};
        static const py::ssize_t kSize[4] = {4, 8, 4, 8};
        c.dtype(out, "out (of the kind)", kKind[kind], kSize[kind]).dense(out, "out").writeable(out, "out");
        c.shape(out, "out", {a.shape(0), b.shape(1)}).disjoint(a, out, "out must not overlap a");
        c.disjoint(b, out, "out must not overlap b");
        for (auto [v, len, name] : {std::tuple{&row, a.shape(0), "row"}, std::tuple{&col, b.shape(1), "col"}}) {
          if (v->is_none()) continue;
          const auto arr = v->cast<py::array>();
          c.dtype(arr, name, 'f', 8).dense(arr, name).shape(arr, name, {len});
        }
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
        const Check c("unpack_int4");
        c.dtype(p, "p", 'u', 1).dense(p, "p").dtype(out, "out", 'i', 1).dense(out, "out").writeable(out, "out");
        c.that(rows >= 0 && m >= 0 && (n == 2 * m || (m > 0 && n == 2 * m - 1)), "n must be 2m or 2m - 1");
        c.that(p.size() == rows * m && out.size() == rows * n, "p must hold rows * m bytes and out rows * n");
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
        const Check c("shiftquant");
        c.dtype(x, "x", 'f', 4).dense(x, "x").dtype(q, "q", 'i', 1).dense(q, "q").writeable(q, "q");
        c.dtype(shift, "shift", 'u', 1).dense(shift, "shift").writeable(shift, "shift");
        c.that(outer >= 0 && L >= 0 && inner >= 0 && block >= 0, "sizes must be >= 0");
        c.that(bits >= 2 && bits <= 8 && n_groups >= 1 && n_groups <= quant::kMaxGroups,
               "bits in 2..8 and n_groups in 1..quant_max_groups expected");
        c.that(x.size() == outer * L * inner && q.size() == x.size(), "x and q must hold outer * L * inner values");
        const std::int64_t groups = block > 0 ? outer * ((L + block - 1) / block) * inner : L;
        c.that(shift.size() == groups, "shift must have one entry per group");
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
