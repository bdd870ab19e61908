#include <cstdint>
#include <new>
#include <string>
#include <tuple>

#include "bindings/bindings.h"
#include "bindings/checks.h"
#include "quant/quant.h"

namespace numkern::bindings {

namespace {

// The arguments the GEMM entry points share, checked: a (M x K) C-contiguous int8 with K the
// B operand's, out a C-contiguous writeable M x N array of the kind's dtype (kind a code of
// gemm_out_kinds) not overlapping a, row/col None or float64 vectors of length M/N.
struct GemmArgs {
  std::int64_t M, N, K;
  const std::int8_t* a;
  void* out;
  quant::OutKind kind;
  const double *row = nullptr, *col = nullptr;

  GemmArgs(const Check& c, const py::array& A, std::int64_t k, std::int64_t n, py::array& O, int code,
           const py::object& r, const py::object& cl) {
    c.dtype(A, "a", 'i', 1).dense(A, "a").ndim(A, "a", 2);
    c.that(A.shape(1) == k, "a (M, K) and b (K, N) expected")
        .that(code >= 0 && code <= 3, "kind must be a code of gemm_out_kinds");
    static const char kKind[4] = {'i', 'i', 'f', 'f'};
    static const py::ssize_t kSize[4] = {4, 8, 4, 8};
    c.dtype(O, "out (of the kind)", kKind[code], kSize[code]).dense(O, "out").writeable(O, "out");
    c.shape(O, "out", {A.shape(0), n}).disjoint(A, O, "out must not overlap a");
    M = A.shape(0), N = n, K = k;
    a = static_cast<const std::int8_t*>(A.data());
    out = O.mutable_data();
    kind = static_cast<quant::OutKind>(code);
    c.vector_or_none(r, "row", 'f', 8, M).vector_or_none(cl, "col", 'f', 8, N);
    if (!r.is_none()) row = static_cast<const double*>(py::reinterpret_borrow<py::array>(r).data());
    if (!cl.is_none()) col = static_cast<const double*>(py::reinterpret_borrow<py::array>(cl).data());
  }
};

}  // namespace

void bind_quant(py::module_& m) {
  register_kernel_name("quant",
                       [] { return std::string(quant::active_gemm().name) + "+" + quant::active_quant().name; });
  // The limits and codes the Python layer uses: int8_gemm's output kinds in code order, the largest
  // K whose int8 dot products always fit int32, the most exponent groups shiftquant takes.
  m.attr("gemm_out_kinds") = py::make_tuple("int32", "int64", "float32", "float64");
  m.attr("gemm_max_k_int32") = quant::kMaxK32;
  m.attr("quant_max_groups") = quant::kMaxGroups;

  m.def("gemm_kernel", [] { return std::string(quant::active_gemm().name); });

  // Python validates: a (M x K) and b (K x N) are C-contiguous int8, out is a C-contiguous M x N
  // array of the kind's dtype, row/col are float64 of length M/N or None.
  m.def(
      "int8_gemm",
      [](const py::array& a, const py::array& b, py::array& out, int kind, double scale, const py::object& row,
         const py::object& col) {
        const Check c("int8_gemm");
        c.dtype(b, "b", 'i', 1).dense(b, "b").ndim(b, "b", 2);
        const GemmArgs g(c, a, b.shape(0), b.shape(1), out, kind, row, col);
        c.disjoint(b, out, "out must not overlap b");
        const auto* pb = static_cast<const std::int8_t*>(b.data());
        py::gil_scoped_release release;
        quant::int8_gemm(g.M, g.N, g.K, g.a, pb, g.kind, g.out, scale, g.row, g.col);
      },
      py::arg("a"), py::arg("b"), py::arg("out"), py::arg("kind"), py::arg("scale"), py::arg("row"), py::arg("col"));

  // Packs b (K x N, C-contiguous int8) for the active GEMM kernel: returns the packed buffer (a new
  // 1-D uint8 array, kPackedBAlign-aligned, header first) and the kernel's name.
  m.def(
      "int8_pack_b",
      [](const py::array& b) {
        const Check c("int8_pack_b");
        c.dtype(b, "b", 'i', 1).dense(b, "b").ndim(b, "b", 2);
        const quant::GemmKernels& g = quant::active_gemm();
        const std::int64_t K = b.shape(0), N = b.shape(1), bytes = quant::packed_b_bytes(g, K, N);
        void* mem = ::operator new(static_cast<std::size_t>(bytes), std::align_val_t(quant::kPackedBAlign));
        py::capsule owner(mem, [](void* p) { ::operator delete(p, std::align_val_t(quant::kPackedBAlign)); });
        py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(bytes)}, {py::ssize_t{1}},
                                      static_cast<std::uint8_t*>(mem), owner);
        const auto* pb = static_cast<const std::int8_t*>(b.data());
        {
          py::gil_scoped_release release;
          quant::pack_b(g, K, N, pb, mem);
        }
        return py::make_tuple(out, std::string(g.name));
      },
      py::arg("b"));

  // int8_gemm with b given packed (int8_pack_b's buffer) for the active kernel, K = a.shape[1]
  // and N = out.shape[1]; a buffer packed for another kernel, K or N raises ValueError.
  m.def(
      "int8_gemm_packed",
      [](const py::array& a, const py::array& packed, py::array& out, int kind, double scale, const py::object& row,
         const py::object& col) {
        const Check c("int8_gemm_packed");
        c.dtype(packed, "packed", 'u', 1).dense(packed, "packed").ndim(packed, "packed", 1);
        c.that(reinterpret_cast<std::uintptr_t>(packed.data()) % quant::kPackedBAlign == 0,
               "packed must be aligned as int8_pack_b aligns it");
        c.dtype(a, "a", 'i', 1).ndim(a, "a", 2).ndim(out, "out", 2);
        const GemmArgs g(c, a, a.shape(1), out.shape(1), out, kind, row, col);
        c.disjoint(packed, out, "out must not overlap packed");
        const char* why = nullptr;
        const quant::GemmKernels* table = quant::packed_b_table(packed.data(), packed.size(), g.K, g.N, &why);
        c.that(table != nullptr, std::string("packed: ") + (why ? why : ""));
        const void* pp = packed.data();
        py::gil_scoped_release release;
        quant::int8_gemm_packed(*table, g.M, g.N, g.K, g.a, pp, g.kind, g.out, scale, g.row, g.col);
      },
      py::arg("a"), py::arg("packed"), py::arg("out"), py::arg("kind"), py::arg("scale"), py::arg("row"),
      py::arg("col"));

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
