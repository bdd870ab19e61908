#include <string>

#include "bindings/bindings.h"
#include "sketch/sketch.h"

namespace numkern::bindings {

namespace {
// Python passes C-contiguous 1-d or 2-d arrays; a 1-d array is one column.
std::int64_t cols_of(const py::array& a) { return a.ndim() == 2 ? a.shape(1) : 1; }

bool c_contiguous(const py::array& v) { return (v.flags() & py::array::c_style) != 0; }

// The row arguments of the refinement passes. Callers (numkern.linalg, numkern.dask) pass C-contiguous
// float64 arrays; refuse anything else rather than let pybind11 convert an output into a temporary.
void check_refine_rows(const char* name, const py::array& a, const py::array& x, const py::array& r, const py::array& b,
                       const py::array& f) {
  if (a.ndim() != 2 || !c_contiguous(a) || !c_contiguous(x) || !c_contiguous(r) || !c_contiguous(b) || !c_contiguous(f))
    throw py::value_error(std::string(name) + ": C-contiguous float64 arrays expected");
  const std::int64_t n = a.shape(0), d = a.shape(1);
  if (x.size() != d || r.size() != n || b.size() != n || f.size() != n)
    throw py::value_error(std::string(name) + ": shapes do not match a");
}
}  // namespace

void bind_sketch(py::module_& m) {
  register_kernel_name("sketch", [] { return std::string("f32/f64_fwht_") + sketch::active_kernels().isa; });

  // Python validates: arrays are C-contiguous, aligned, float32/float64, shapes agree, lengths are
  // powers of two where required, indices are in range.
  m.def(
      "fwht_cols",
      [](py::array& x, double scale) {
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
      [](const py::array& a, const py::array& b, std::uint64_t key, double scale, py::array& y) {
        const auto dt = float_dtype(a);
        if (float_dtype(b) != dt || float_dtype(y) != dt)
          throw py::type_error("gaussian_apply_pair: a, b and y must share one dtype");
        const std::int64_t n = a.shape(0), d = cols_of(a), k = cols_of(b), mm = y.shape(0);
        if (b.shape(0) != n || y.ndim() != 2 || y.shape(1) != d + k)
          throw py::value_error("gaussian_apply_pair: a (n, d), b (n, k) and y (m, d + k) expected");
        const void *pa = a.data(), *pb = b.data();
        void* py_ = y.mutable_data();
        py::gil_scoped_release release;
        sketch::gaussian_apply_pair(dt, pa, d, pb, k, n, mm, key, scale, py_);
      },
      py::arg("a"), py::arg("b"), py::arg("key"), py::arg("scale"), py::arg("y"));
  m.attr("gaussian_tile_rows") = sketch::gaussian_tile_rows;
  m.def(
      "gaussian_rows",
      [](std::int64_t i0, std::int64_t cnt, std::int64_t j0, std::int64_t len, std::uint64_t key) {
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
      [](const py::array& a, const py::array& idx, const py::array& val, py::array& y) {
        const auto dt = float_dtype(a);
        const std::int64_t n = a.shape(0), d = cols_of(a), s = idx.shape(1), mm = y.shape(0);
        const void* pa = a.data();
        const auto* pi = static_cast<const std::int64_t*>(idx.data());
        const void* pv = val.data();
        void* py_ = y.mutable_data();
        py::gil_scoped_release release;
        sketch::sparse_apply(dt, pa, n, d, pi, pv, s, mm, py_);
      },
      py::arg("a"), py::arg("idx"), py::arg("val"), py::arg("y"));
  m.def(
      "row_residual",
      [](const py::array& a, const py::array& u, py::object b, py::object g, py::object t) {
        const auto dt = float_dtype(a);
        const std::int64_t n = a.shape(0), d = cols_of(a);
        const void* pa = a.data();
        const void* pu = u.data();
        const void* pb = b.is_none() ? nullptr : b.cast<py::array>().data();
        void* pg = g.is_none() ? nullptr : g.cast<py::array>().mutable_data();
        void* pt = t.is_none() ? nullptr : t.cast<py::array>().mutable_data();
        py::gil_scoped_release release;
        return sketch::row_residual(dt, pa, n, d, pu, pb, pg, pt);
      },
      py::arg("a"), py::arg("u"), py::arg("b"), py::arg("g"), py::arg("t"));
  m.def(
      "ls_refine_residual",
      [](const py::array_t<double>& a, const py::array_t<double>& x, py::array_t<double>& r, bool init_r,
         const py::array_t<double>& b, py::array_t<double>& f, py::array_t<double>& h) {
        check_refine_rows("ls_refine_residual", a, x, r, b, f);
        if (!c_contiguous(h) || h.size() != a.shape(1))
          throw py::value_error("ls_refine_residual: h must be a C-contiguous float64 array of d elements");
        const std::int64_t n = a.shape(0), d = a.shape(1);
        const double *pa = a.data(), *px = x.data(), *pb = b.data();
        double *pr = r.mutable_data(), *pf = f.mutable_data(), *ph = h.mutable_data();
        py::gil_scoped_release release;
        sketch::ls_refine_residual(pa, n, d, px, pr, init_r, pb, pf, ph);
      },
      py::arg("a"), py::arg("x"), py::arg("r").noconvert(), py::arg("init_r"), py::arg("b"), py::arg("f").noconvert(),
      py::arg("h").noconvert());
  m.def(
      "ls_refine_partials",
      [](const py::array_t<double>& a, const py::array_t<double>& x, py::array_t<double>& r, bool init_r,
         const py::array_t<double>& b, py::array_t<double>& f, py::array_t<double>& parts) {
        check_refine_rows("ls_refine_partials", a, x, r, b, f);
        const std::int64_t n = a.shape(0), d = a.shape(1);
        if (!c_contiguous(parts) || parts.ndim() != 3 || parts.shape(0) != sketch::ls_refine_chunks(n) ||
            parts.shape(1) != 3 || parts.shape(2) != d)
          throw py::value_error(
              "ls_refine_partials: parts must be C-contiguous float64 of shape (ceil(n / 4096), 3, d)");
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
        if (parts.ndim() != 3 || parts.shape(1) != 3 || !c_contiguous(parts) || !c_contiguous(h) ||
            h.size() != parts.shape(2))
          throw py::value_error("ls_refine_merge: C-contiguous parts (chunks, 3, d) and h (d,) expected");
        const std::int64_t nch = parts.shape(0), d = parts.shape(2);
        const double* pp = parts.data();
        double* ph = h.mutable_data();
        py::gil_scoped_release release;
        sketch::ls_refine_merge(pp, nch, d, ph);
      },
      py::arg("parts"), py::arg("h").noconvert());
}

}  // namespace numkern::bindings
