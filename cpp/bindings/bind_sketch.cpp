#include <cstdint>
#include <string>
#include <vector>
#include <utility>

#include "bindings/bindings.h"
#include "bindings/checks.h"
#include "sketch/sketch.h"

namespace numkern::bindings {

namespace {
// Python passes C-contiguous 1-d or 2-d arrays; a 1-d array is one column.
std::int64_t cols_of(const py::array& a) { return a.ndim() == 2 ? a.shape(1) : 1; }

bool pow2(std::int64_t n) { return n >= 1 && (n & (n - 1)) == 0; }
// A dense float32/float64 operand of 1 or 2 dimensions (a 1-d array is one column).
const Check& operand(const Check& c, const py::array& a, const char* name) {
  c.float_dtype(a, name).dense(a, name).that(a.ndim() == 1 || a.ndim() == 2, std::string(name) + " must be 1-d or 2-d");
  return c;
}
// The largest side of a block of Gaussian entries gaussian_rows returns (so cnt * len cannot overflow).
constexpr std::int64_t kMaxBlockSide = std::int64_t{1} << 31;

// An output of `rows` x (columns of `like`) in like's dtype, dense and writeable.
const Check& output(const Check& c, const py::array& y, const py::array& like, std::int64_t rows) {
  c.same_dtype(y, like, "the input and y").dense(y, "y").writeable(y, "y");
  c.that(y.ndim() >= 1 && y.shape(0) == rows && y.size() == rows * cols_of(like),
         "y must have " + std::to_string(rows) + " rows of the input's columns");
  return c;
}

// The operands of the transposed sketches: v (m, k) and out (n, k), both 2-d C-contiguous float64, out
// writeable and disjoint from v (the kernels read v while writing out), m >= 1.
void transpose_operands(const Check& c, const py::array& v, const py::array& out) {
  c.dtype(v, "v", 'f', 8).dense(v, "v").ndim(v, "v", 2).that(v.shape(0) >= 1, "v must have at least one row");
  c.dtype(out, "out", 'f', 8).dense(out, "out").ndim(out, "out", 2).writeable(out, "out");
  c.that(out.shape(1) == v.shape(1), "v and out must have the same number of columns");
  c.disjoint(v, out, "v and out must not overlap");
}

// The row arguments of the refinement passes. Callers (numkern.linalg, numkern.dask) pass C-contiguous
// float64 arrays; refuse anything else rather than let pybind11 convert an output into a temporary.
void check_refine_rows(const char* name, const py::array& a, const py::array& x, const py::array& r, const py::array& b,
                       const py::array& f) {
  const Check c(name);
  c.ndim(a, "a", 2).dense(a, "a").dense(x, "x").dense(r, "r").dense(b, "b").dense(f, "f");
  const std::int64_t n = a.shape(0), d = a.shape(1);
  c.that(x.size() == d && r.size() == n && b.size() == n && f.size() == n, "shapes do not match a");
}
// A CSR operand: indptr (n + 1) int64, indices (nnz) int32 and data (nnz) float, each 1-d and dense,
// with a canonical structure of column count d (O(n + nnz) check: the kernels index with it).
struct Csr {
  const std::int64_t* ptr;
  const std::int32_t* ind;
  const void* val;
  std::int64_t n;
};
Csr csr_operand(const Check& c, const py::array& indptr, const py::array& indices, const py::array& data,
                std::int64_t d) {
  c.dtype(indptr, "indptr", 'i', 8).dense(indptr, "indptr").ndim(indptr, "indptr", 1);
  c.dtype(indices, "indices", 'i', 4).dense(indices, "indices").ndim(indices, "indices", 1);
  c.float_dtype(data, "data").dense(data, "data").ndim(data, "data", 1);
  c.that(indptr.shape(0) >= 1, "indptr must have n + 1 entries");
  c.that(indices.shape(0) == data.shape(0), "indices and data must have one entry per stored element");
  const auto* pp = static_cast<const std::int64_t*>(indptr.data());
  const auto* pi = static_cast<const std::int32_t*>(indices.data());
  const std::int64_t n = indptr.shape(0) - 1;
  c.that(sketch::csr_valid(pp, pi, n, d, indices.shape(0)),
         "indptr/indices must be a canonical CSR structure (indptr from 0 to nnz, nondecreasing; column indices "
         "in [0, " +
             std::to_string(d) + "), increasing within each row)");
  return {pp, pi, data.data(), n};
}
}  // namespace

void bind_sketch(py::module_& m) {
  register_kernel_name("sketch", [] { return std::string("f32/f64_fwht_") + sketch::active_kernels().isa; });

  // Python validates: arrays are C-contiguous, aligned, float32/float64, shapes agree, lengths are
  // powers of two where required, indices are in range.
  m.def(
      "fwht_cols",
      [](py::array& x, double scale) {
        const Check c("fwht_cols");
        operand(c, x, "x").writeable(x, "x").that(pow2(x.shape(0)), "the length of x must be a power of two");
        const auto dt = float_dtype(x);
        const std::int64_t n = x.shape(0), d = cols_of(x);
        void* p = x.mutable_data();
        py::gil_scoped_release release;
        sketch::fwht_cols(dt, p, n, d, scale);
      },
      py::arg("x"), py::arg("scale"));
  m.def(
      "fwht_rows",
      [](py::array& x, double scale) {
        const Check c("fwht_rows");
        c.float_dtype(x, "x").dense(x, "x").writeable(x, "x").ndim(x, "x", 2);
        c.that(pow2(x.shape(1)), "the row length of x must be a power of two");
        const auto dt = float_dtype(x);
        const std::int64_t rows = x.shape(0), n = x.shape(1);
        void* p = x.mutable_data();
        py::gil_scoped_release release;
        sketch::fwht_rows(dt, p, rows, n, scale);
      },
      py::arg("x"), py::arg("scale"));
  m.def(
      "srht_apply",
      [](const py::array& a, std::int64_t N, const py::array& perm, const py::array& neg, const py::array& rows,
         double scale, py::array& y) {
        const Check c("srht_apply");
        operand(c, a, "a").that(pow2(N) && N >= a.shape(0), "N must be a power of two >= the rows of a");
        c.dtype(perm, "perm", 'i', 8).dense(perm, "perm").shape(perm, "perm", {a.shape(0)});
        c.dtype(neg, "neg", 'u', 1)
            .dense(neg, "neg")
            .that(neg.ndim() == 1 && neg.shape(0) >= a.shape(0), "neg too short");
        c.dtype(rows, "rows", 'u', 4).dense(rows, "rows").ndim(rows, "rows", 1);
        output(c, y, a, rows.shape(0));
        {  // O(n + m): every index the kernel follows must be in range
          c.all_in(static_cast<const std::int64_t*>(perm.data()), perm.shape(0), 0, a.shape(0), "perm out of range");
          c.all_in(static_cast<const std::uint32_t*>(rows.data()), rows.shape(0), 0, N, "rows out of range");
        }
        const auto dt = float_dtype(a);
        const std::int64_t n = a.shape(0), d = cols_of(a), mm = rows.shape(0);
        const void* pa = a.data();
        const auto* pp = static_cast<const std::int64_t*>(perm.data());
        const auto* pn = static_cast<const std::uint8_t*>(neg.data());
        const auto* pr = static_cast<const std::uint32_t*>(rows.data());
        void* py_ = y.mutable_data();
        py::gil_scoped_release release;
        sketch::srht_apply(dt, pa, n, d, N, pp, pn, pr, mm, scale, py_);
      },
      py::arg("a"), py::arg("N"), py::arg("perm"), py::arg("neg"), py::arg("rows"), py::arg("scale"), py::arg("y"));
  m.def(
      "gaussian_apply",
      [](const py::array& a, std::uint64_t key, double scale, py::array& y, std::uint64_t row0) {
        const Check c("gaussian_apply");
        operand(c, a, "a");
        c.that(y.ndim() >= 1, "y must have a row per sketch row");
        output(c, y, a, y.shape(0));
        const auto dt = float_dtype(a);
        const std::int64_t n = a.shape(0), d = cols_of(a), mm = y.shape(0);
        const void* pa = a.data();
        void* py_ = y.mutable_data();
        py::gil_scoped_release release;
        sketch::gaussian_apply(dt, pa, n, d, mm, key, scale, py_, row0);
      },
      py::arg("a"), py::arg("key"), py::arg("scale"), py::arg("y"), py::arg("row0") = 0);
  // Python validates: a (n, d) and b (n, k) C-contiguous, one float dtype; y (m, d + k) C-contiguous.
  m.def(
      "gaussian_apply_pair",
      [](const py::array& a, const py::array& b, std::uint64_t key, double scale, py::array& y, std::uint64_t row0) {
        const Check c("gaussian_apply_pair");
        operand(operand(c, a, "a"), b, "b").same_dtype(a, b, "a and b").same_dtype(a, y, "a and y");
        c.dense(y, "y").writeable(y, "y");
        const auto dt = float_dtype(a);
        const std::int64_t n = a.shape(0), d = cols_of(a), k = cols_of(b);
        c.that(b.shape(0) == n && y.ndim() == 2 && y.shape(1) == d + k, "a (n, d), b (n, k) and y (m, d + k) expected");
        const std::int64_t mm = y.shape(0);
        const void *pa = a.data(), *pb = b.data();
        void* py_ = y.mutable_data();
        py::gil_scoped_release release;
        sketch::gaussian_apply_pair(dt, pa, d, pb, k, n, mm, key, scale, py_, row0);
      },
      py::arg("a"), py::arg("b"), py::arg("key"), py::arg("scale"), py::arg("y"), py::arg("row0") = 0);
  m.attr("gaussian_tile_rows") = sketch::gaussian_tile_rows;
  m.def(
      "gaussian_rows",
      [](std::int64_t i0, std::int64_t cnt, std::int64_t j0, std::int64_t len, std::uint64_t key) {
        Check("gaussian_rows")
            .that(i0 >= 0 && cnt >= 0 && j0 >= 0 && len >= 0, "counts and offsets must be >= 0")
            .that(cnt <= kMaxBlockSide && len <= kMaxBlockSide, "cnt and len must be <= 2^31");
        py::array_t<float> out({cnt, len});
        float* p = out.mutable_data();
        {
          py::gil_scoped_release release;
          sketch::gaussian_rows(i0, cnt, j0, len, key, p);
        }
        return out;
      },
      py::arg("i0"), py::arg("cnt"), py::arg("j0"), py::arg("len"), py::arg("key"));
  m.def(
      "sparse_apply",
      [](const py::array& a, const py::array& idx, const py::array& neg, double scale, py::array& y) {
        const Check c("sparse_apply");
        operand(c, a, "a").dtype(idx, "idx", 'i', 8).dense(idx, "idx").ndim(idx, "idx", 2);
        c.that(idx.shape(0) == a.shape(0), "idx must have a row per row of a");
        c.dtype(neg, "neg", 'u', 1).dense(neg, "neg").same_shape(neg, idx, "idx and neg");
        c.that(y.ndim() >= 1, "y must have a row per sketch row");
        output(c, y, a, y.shape(0));
        {  // O(n s): every index the kernel follows must be in range
          c.all_in(static_cast<const std::int64_t*>(idx.data()), idx.size(), 0, y.shape(0), "idx out of range");
        }
        const auto dt = float_dtype(a);
        const std::int64_t n = a.shape(0), d = cols_of(a), s = idx.shape(1), mm = y.shape(0);
        const void* pa = a.data();
        const auto* pi = static_cast<const std::int64_t*>(idx.data());
        const auto* pn = static_cast<const std::uint8_t*>(neg.data());
        void* py_ = y.mutable_data();
        py::gil_scoped_release release;
        sketch::sparse_apply(dt, pa, n, d, pi, pn, scale, s, mm, py_);
      },
      py::arg("a"), py::arg("idx"), py::arg("neg"), py::arg("scale"), py::arg("y"));
  // The transposed sketches (aslinearoperator's rmatvec/rmatmat): v (m, k) and out (n, k) C-contiguous
  // float64, out disjoint from v; the sketch's own arguments checked as for the forward kernels.
  m.def(
      "srht_transpose",
      [](const py::array& v, std::int64_t N, const py::array& perm, const py::array& neg, const py::array& rows,
         double scale, py::array& out) {
        const Check c("srht_transpose");
        transpose_operands(c, v, out);
        const std::int64_t n = out.shape(0);
        c.that(pow2(N) && N >= n, "N must be a power of two >= the rows of out");
        c.dtype(perm, "perm", 'i', 8).dense(perm, "perm").shape(perm, "perm", {n});
        c.dtype(neg, "neg", 'u', 1).dense(neg, "neg").that(neg.ndim() == 1 && neg.shape(0) >= n, "neg too short");
        c.dtype(rows, "rows", 'u', 4).dense(rows, "rows").shape(rows, "rows", {v.shape(0)});
        const auto* pp = static_cast<const std::int64_t*>(perm.data());
        {  // O(n + m): every index in range, and perm a permutation (each row of out written once)
          c.all_in(static_cast<const std::uint32_t*>(rows.data()), rows.shape(0), 0, N, "rows out of range");
          c.all_in(pp, n, 0, n, "perm out of range");
          std::vector<std::uint8_t> seen(static_cast<std::size_t>(n), 0);
          bool distinct = true;
          for (std::int64_t j = 0; j < n && distinct; ++j)
            distinct = !std::exchange(seen[static_cast<std::size_t>(pp[j])], 1);
          c.that(distinct, "perm must be a permutation of range(n)");
        }
        const auto* pv = static_cast<const double*>(v.data());
        const auto* pn = static_cast<const std::uint8_t*>(neg.data());
        const auto* pr = static_cast<const std::uint32_t*>(rows.data());
        auto* po = static_cast<double*>(out.mutable_data());
        const std::int64_t mm = v.shape(0), k = v.shape(1);
        py::gil_scoped_release release;
        sketch::srht_transpose(pv, mm, k, N, pp, pn, pr, n, scale, po);
      },
      py::arg("v"), py::arg("N"), py::arg("perm"), py::arg("neg"), py::arg("rows"), py::arg("scale"), py::arg("out"));
  m.def(
      "gaussian_transpose",
      [](const py::array& v, std::uint64_t key, double scale, py::array& out) {
        const Check c("gaussian_transpose");
        transpose_operands(c, v, out);
        c.that(out.shape(0) < (std::int64_t{1} << 32), "out must have fewer than 2^32 rows");
        const auto* pv = static_cast<const double*>(v.data());
        auto* po = static_cast<double*>(out.mutable_data());
        const std::int64_t mm = v.shape(0), k = v.shape(1), n = out.shape(0);
        py::gil_scoped_release release;
        sketch::gaussian_transpose(pv, mm, k, key, n, scale, po);
      },
      py::arg("v"), py::arg("key"), py::arg("scale"), py::arg("out"));
  m.def(
      "sparse_transpose",
      [](const py::array& v, const py::array& idx, const py::array& neg, double scale, py::array& out) {
        const Check c("sparse_transpose");
        transpose_operands(c, v, out);
        c.dtype(idx, "idx", 'i', 8).dense(idx, "idx").ndim(idx, "idx", 2);
        c.that(idx.shape(0) == out.shape(0), "idx must have a row per row of out");
        c.dtype(neg, "neg", 'u', 1).dense(neg, "neg").same_shape(neg, idx, "idx and neg");
        {  // O(n s): every index the kernel follows must be in range
          c.all_in(static_cast<const std::int64_t*>(idx.data()), idx.size(), 0, v.shape(0), "idx out of range");
        }
        const auto* pv = static_cast<const double*>(v.data());
        const auto* pi = static_cast<const std::int64_t*>(idx.data());
        const auto* pn = static_cast<const std::uint8_t*>(neg.data());
        auto* po = static_cast<double*>(out.mutable_data());
        const std::int64_t mm = v.shape(0), k = v.shape(1), n = out.shape(0), s = idx.shape(1);
        py::gil_scoped_release release;
        sketch::sparse_transpose(pv, mm, k, pi, pn, s, n, scale, po);
      },
      py::arg("v"), py::arg("idx"), py::arg("neg"), py::arg("scale"), py::arg("out"));
  m.def(
      "sparse_sign_draw",
      [](std::uint64_t key, std::int64_t j0, std::int64_t count, std::int64_t mm, std::int64_t s) {
        Check("sparse_sign_draw")
            .that(j0 >= 0 && count >= 0 && j0 + count <= (std::int64_t{1} << 32),
                  "need 0 <= j0, count and j0 + count <= 2^32")
            .that(mm >= 1 && mm < (std::int64_t{1} << 32), "m must be in [1, 2^32)")
            .that(s >= 1 && s <= mm, "s must be in [1, m]");
        py::array_t<std::int64_t> idx({count, s});
        py::array_t<std::uint8_t> neg({count, s});
        std::int64_t* pi = idx.mutable_data();
        std::uint8_t* pn = neg.mutable_data();
        {
          py::gil_scoped_release release;
          sketch::sparse_sign_draw(key, j0, count, mm, s, pi, pn);
        }
        return py::make_tuple(idx, neg);
      },
      py::arg("key"), py::arg("j0"), py::arg("count"), py::arg("m"), py::arg("s"));
  m.def(
      "random_permutation",
      [](std::uint64_t key, std::int64_t n, std::int64_t buckets) {
        Check("random_permutation")
            .that(n >= 0 && n < (std::int64_t{1} << 32), "n must be in [0, 2^32)")
            .that(buckets >= 1 && buckets <= (std::int64_t{1} << 16), "buckets must be in [1, 2^16]");
        py::array_t<std::int64_t> out(n);
        std::int64_t* po = out.mutable_data();
        {
          py::gil_scoped_release release;
          sketch::random_permutation(key, n, buckets, po);
        }
        return out;
      },
      py::arg("key"), py::arg("n"), py::arg("buckets"));
  m.def(
      "csr_sketch_apply",
      [](const py::array& indptr, const py::array& indices, const py::array& data, const py::array& idx,
         const py::array& neg, double scale, py::array& y) {
        const Check c("csr_sketch_apply");
        c.ndim(y, "y", 2).dense(y, "y").writeable(y, "y").float_dtype(y, "y");
        const Csr a = csr_operand(c, indptr, indices, data, y.shape(1));
        // float32 data may be sketched into float64 y: the float64 sketch of its entries.
        const bool mixed = float_dtype(data) == Dtype::f32 && float_dtype(y) == Dtype::f64;
        if (!mixed) c.same_dtype(y, data, "data and y");
        c.dtype(idx, "idx", 'i', 8).dense(idx, "idx").ndim(idx, "idx", 2);
        c.that(idx.shape(0) == a.n, "idx must have a row per row of a");
        c.dtype(neg, "neg", 'u', 1).dense(neg, "neg").same_shape(neg, idx, "idx and neg");
        {  // O(n s): every index the kernel follows must be in range
          c.all_in(static_cast<const std::int64_t*>(idx.data()), idx.size(), 0, y.shape(0), "idx out of range");
        }
        const auto dt = float_dtype(data);
        const std::int64_t d = y.shape(1), s = idx.shape(1), mm = y.shape(0);
        const auto* pi = static_cast<const std::int64_t*>(idx.data());
        const auto* pn = static_cast<const std::uint8_t*>(neg.data());
        void* py_ = y.mutable_data();
        py::gil_scoped_release release;
        if (mixed)
          sketch::csr_sketch_apply_f32a(a.ptr, a.ind, static_cast<const float*>(a.val), a.n, d, pi, pn, scale, s, mm,
                                        static_cast<double*>(py_));
        else
          sketch::csr_sketch_apply(dt, a.ptr, a.ind, a.val, a.n, d, pi, pn, scale, s, mm, py_);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("idx"), py::arg("neg"), py::arg("scale"),
      py::arg("y"));
  // Same-dtype data and vectors, or float32 data with float64 vectors (computed in float64).
  m.def(
      "csr_row_residual",
      [](const py::array& indptr, const py::array& indices, const py::array& data, const py::array& u, py::object b,
         py::object g, py::object t) {
        const Check c("csr_row_residual");
        c.float_dtype(u, "u").dense(u, "u").ndim(u, "u", 1);
        const Csr a = csr_operand(c, indptr, indices, data, u.shape(0));
        const bool mixed = float_dtype(data) == Dtype::f32 && float_dtype(u) == Dtype::f64;
        if (!mixed) c.same_dtype(u, data, "data and u");
        c.vector_or_none(b, "b", u, a.n).vector_or_none(g, "g", u, u.shape(0), true);
        c.vector_or_none(t, "t", u, a.n, true);
        const auto dt = float_dtype(data);
        const std::int64_t d = u.shape(0);
        const void* pu = u.data();
        const void* pb = b.is_none() ? nullptr : b.cast<py::array>().data();
        void* pg = g.is_none() ? nullptr : g.cast<py::array>().mutable_data();
        void* pt = t.is_none() ? nullptr : t.cast<py::array>().mutable_data();
        py::gil_scoped_release release;
        if (mixed)
          return sketch::csr_row_residual_f32a(a.ptr, a.ind, static_cast<const float*>(a.val), a.n, d,
                                               static_cast<const double*>(pu), static_cast<const double*>(pb),
                                               static_cast<double*>(pg), static_cast<double*>(pt));
        return sketch::csr_row_residual(dt, a.ptr, a.ind, a.val, a.n, d, pu, pb, pg, pt);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("u"), py::arg("b"), py::arg("g"), py::arg("t"));
  m.def(
      "csr_ls_refine_residual",
      [](const py::array& indptr, const py::array& indices, const py::array& data, const py::array& x, py::array& r,
         bool init_r, const py::array& b, py::array& f, py::array& h) {
        const Check c("csr_ls_refine_residual");
        c.float_dtype(data, "data").dtype(x, "x", 'f', 8).dense(x, "x").ndim(x, "x", 1);
        const Csr a = csr_operand(c, indptr, indices, data, x.shape(0));
        for (const auto& [v, name] : {std::pair<const py::array*, const char*>{&r, "r"}, {&b, "b"}, {&f, "f"}})
          c.dtype(*v, name, 'f', 8)
              .dense(*v, name)
              .ndim(*v, name, 1)
              .that(v->shape(0) == a.n, std::string(name) + " must have n entries");
        c.dtype(h, "h", 'f', 8).dense(h, "h").ndim(h, "h", 1).that(h.shape(0) == x.shape(0), "h must have d entries");
        c.writeable(r, "r").writeable(f, "f").writeable(h, "h");
        const std::int64_t d = x.shape(0);
        const auto dt = float_dtype(data);
        const auto* px = static_cast<const double*>(x.data());
        const auto* pb = static_cast<const double*>(b.data());
        auto* pr = static_cast<double*>(r.mutable_data());
        auto* pf = static_cast<double*>(f.mutable_data());
        auto* ph = static_cast<double*>(h.mutable_data());
        py::gil_scoped_release release;
        sketch::csr_ls_refine_residual(dt, a.ptr, a.ind, a.val, a.n, d, px, pr, init_r, pb, pf, ph);
      },
      py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("x"), py::arg("r"), py::arg("init_r"),
      py::arg("b"), py::arg("f"), py::arg("h"));
  // Same-dtype a and vectors, or a float32 a with float64 vectors (computed in float64).
  m.def(
      "row_residual",
      [](const py::array& a, const py::array& u, py::object b, py::object g, py::object t) {
        const Check c("row_residual");
        operand(c, a, "a").dense(u, "u").float_dtype(u, "u").that(u.size() == cols_of(a), "u must have d entries");
        const bool mixed = float_dtype(a) == Dtype::f32 && float_dtype(u) == Dtype::f64;
        if (!mixed) c.same_dtype(u, a, "a and u");
        const auto vec = [&](const py::object& o, const char* name, std::int64_t len, bool out) {
          if (o.is_none()) return;
          const auto v = o.cast<py::array>();
          c.same_dtype(v, u, "u and the vectors")
              .dense(v, name)
              .that(v.size() == len, std::string(name) + " has the wrong length");
          if (out) c.writeable(v, name);
        };
        vec(b, "b", a.shape(0), false);
        vec(g, "g", cols_of(a), true);
        vec(t, "t", a.shape(0), true);
        const auto dt = float_dtype(a);
        const std::int64_t n = a.shape(0), d = cols_of(a);
        const void* pa = a.data();
        const void* pu = u.data();
        const void* pb = b.is_none() ? nullptr : b.cast<py::array>().data();
        void* pg = g.is_none() ? nullptr : g.cast<py::array>().mutable_data();
        void* pt = t.is_none() ? nullptr : t.cast<py::array>().mutable_data();
        py::gil_scoped_release release;
        if (mixed)
          return sketch::row_residual_f32a(static_cast<const float*>(pa), n, d, static_cast<const double*>(pu),
                                           static_cast<const double*>(pb), static_cast<double*>(pg),
                                           static_cast<double*>(pt));
        return sketch::row_residual(dt, pa, n, d, pu, pb, pg, pt);
      },
      py::arg("a"), py::arg("u"), py::arg("b"), py::arg("g"), py::arg("t"));
  // a float64, or float32 (its entries exactly, in float64); the vectors float64.
  m.def(
      "ls_refine_residual",
      [](const py::array& a, const py::array_t<double>& x, py::array_t<double>& r, bool init_r,
         const py::array_t<double>& b, py::array_t<double>& f, py::array_t<double>& h) {
        const Check c("ls_refine_residual");
        c.float_dtype(a, "a");
        check_refine_rows("ls_refine_residual", a, x, r, b, f);
        c.dense(h, "h").that(h.size() == a.shape(1), "h must have d elements");
        const std::int64_t n = a.shape(0), d = a.shape(1);
        const bool f32 = float_dtype(a) == Dtype::f32;
        const void* pa = a.data();
        const double *px = x.data(), *pb = b.data();
        double *pr = r.mutable_data(), *pf = f.mutable_data(), *ph = h.mutable_data();
        py::gil_scoped_release release;
        if (f32)
          sketch::ls_refine_residual_f32a(static_cast<const float*>(pa), n, d, px, pr, init_r, pb, pf, ph);
        else
          sketch::ls_refine_residual(static_cast<const double*>(pa), n, d, px, pr, init_r, pb, pf, ph);
      },
      py::arg("a"), py::arg("x"), py::arg("r").noconvert(), py::arg("init_r"), py::arg("b"), py::arg("f").noconvert(),
      py::arg("h").noconvert());
  m.def(
      "ls_refine_partials",
      [](const py::array_t<double>& a, const py::array_t<double>& x, py::array_t<double>& r, bool init_r,
         const py::array_t<double>& b, py::array_t<double>& f, py::array_t<double>& parts) {
        check_refine_rows("ls_refine_partials", a, x, r, b, f);
        const std::int64_t n = a.shape(0), d = a.shape(1);
        Check("ls_refine_partials").dense(parts, "parts").shape(parts, "parts", {sketch::ls_refine_chunks(n), 3, d});
        const double *pa = a.data(), *px = x.data(), *pb = b.data();
        double *pr = r.mutable_data(), *pf = f.mutable_data(), *pp = parts.mutable_data();
        py::gil_scoped_release release;
        sketch::ls_refine_partials(pa, n, d, px, pr, init_r, pb, pf, pp);
      },
      py::arg("a"), py::arg("x"), py::arg("r").noconvert(), py::arg("init_r"), py::arg("b"), py::arg("f").noconvert(),
      py::arg("parts").noconvert());
  m.def(
      "ls_refine_merge",
      [](const py::array_t<double>& parts, py::array_t<double>& h) {
        const Check c("ls_refine_merge");
        c.dense(parts, "parts").dense(h, "h").ndim(parts, "parts", 3);
        c.that(parts.shape(1) == 3 && h.size() == parts.shape(2), "parts (chunks, 3, d) and h (d,) expected");
        const std::int64_t nch = parts.shape(0), d = parts.shape(2);
        const double* pp = parts.data();
        double* ph = h.mutable_data();
        py::gil_scoped_release release;
        sketch::ls_refine_merge(pp, nch, d, ph);
      },
      py::arg("parts"), py::arg("h").noconvert());
}

}  // namespace numkern::bindings
