// Argument checks of the bindings: what each kernel relies on about its arrays (dtype, shape,
// contiguity, alignment, writeability), checked in O(ndim) per call. The Python layer validates
// user input with friendly messages first; these checks make a direct _core call with wrong
// arguments raise TypeError / ValueError instead of reading or writing out of bounds.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "common/parallel.h"

namespace numkern::bindings {

namespace py = pybind11;

// [lowest, highest] byte addresses an array touches (negative strides included).
inline std::pair<std::intptr_t, std::intptr_t> byte_extent(const py::array& a) {
  std::intptr_t lo = reinterpret_cast<std::intptr_t>(a.data()), hi = lo;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    const std::intptr_t span = static_cast<std::intptr_t>(a.shape(d) - 1) * a.strides(d);
    (span < 0 ? lo : hi) += span;
  }
  return {lo, hi + static_cast<std::intptr_t>(a.itemsize()) - 1};
}

class Check {
 public:
  explicit Check(const char* fn) : fn_(fn) {}

  // Native-order array of element kind `kind` ('f', 'i', 'u', 'b') and item size `size`.
  const Check& dtype(const py::array& a, const char* name, char kind, py::ssize_t size) const {
    const py::dtype dt = a.dtype();
    if (dt.kind() != kind || dt.itemsize() != size || !dt.attr("isnative").cast<bool>())
      type_error(name, std::string("native ") + kind_name(kind) + std::to_string(8 * size));
    return *this;
  }
  // float32 or float64, native order.
  const Check& float_dtype(const py::array& a, const char* name) const {
    const py::dtype dt = a.dtype();
    if (dt.kind() != 'f' || (dt.itemsize() != 4 && dt.itemsize() != 8) || !dt.attr("isnative").cast<bool>())
      type_error(name, "native float32 or float64");
    return *this;
  }
  const Check& same_dtype(const py::array& a, const py::array& b, const char* names) const {
    if (!a.dtype().equal(b.dtype())) throw py::type_error(std::string(fn_) + ": " + names + " must share one dtype");
    return *this;
  }
  // C-contiguous and aligned (the kernels index it as a dense block with aligned loads).
  const Check& dense(const py::array& a, const char* name) const {
    if (!(a.flags() & py::array::c_style) || !(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
      value_error(std::string(name) + " must be an aligned C-contiguous array");
    return *this;
  }
  const Check& aligned(const py::array& a, const char* name) const {
    if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) value_error(std::string(name) + " must be aligned");
    return *this;
  }
  const Check& writeable(const py::array& a, const char* name) const {
    if (!a.writeable()) value_error(std::string(name) + " must be writeable");
    return *this;
  }
  // Exactly this shape.
  const Check& shape(const py::array& a, const char* name, std::initializer_list<std::int64_t> s) const {
    bool ok = a.ndim() == static_cast<py::ssize_t>(s.size());
    int d = 0;
    for (std::int64_t v : s) ok = ok && a.shape(d++) == v;
    if (!ok) {
      std::string want;
      for (std::int64_t v : s) want += (want.empty() ? "" : ", ") + std::to_string(v);
      value_error(std::string(name) + " must have shape (" + want + ")");
    }
    return *this;
  }
  // The same shape as `ref`.
  const Check& same_shape(const py::array& a, const py::array& ref, const char* names) const {
    bool ok = a.ndim() == ref.ndim();
    for (py::ssize_t d = 0; ok && d < a.ndim(); ++d) ok = a.shape(d) == ref.shape(d);
    if (!ok) value_error(std::string(names) + " must have one shape");
    return *this;
  }
  const Check& ndim(const py::array& a, const char* name, py::ssize_t n) const {
    if (a.ndim() != n) value_error(std::string(name) + " must have " + std::to_string(n) + " dimensions");
    return *this;
  }
  const Check& axis(int axis, py::ssize_t ndim) const {
    if (axis < 0 || axis >= ndim) value_error("axis out of range (normalized axis expected)");
    return *this;
  }
  // Strided arrays of one shape: out writeable, and either x itself (same data and strides) or
  // touching no byte of x (the kernels read x after writing parts of out).
  const Check& in_out(const py::array& x, const py::array& out) const {
    same_dtype(x, out, "x and out").same_shape(out, x, "x and out").aligned(x, "x").aligned(out, "out");
    writeable(out, "out");
    return same_or_disjoint(x, out, "out must be x itself or not overlap x");
  }
  // b views exactly a's elements (same data, shape and strides), or has no byte in common with a.
  const Check& same_or_disjoint(const py::array& a, const py::array& b, const char* what) const {
    const bool same = b.data() == a.data() && a.ndim() == b.ndim() &&
                      std::equal(a.shape(), a.shape() + a.ndim(), b.shape()) &&
                      std::equal(a.strides(), a.strides() + a.ndim(), b.strides());
    return same ? *this : disjoint(a, b, what);
  }
  // No byte in common.
  const Check& disjoint(const py::array& a, const py::array& b, const char* what) const {
    if (a.size() && b.size()) {
      const auto ea = byte_extent(a), eb = byte_extent(b);
      if (ea.first <= eb.second && eb.first <= ea.second) value_error(what);
    }
    return *this;
  }
  // None, or a dense array of dtype like `like` with n elements (writeable if asked).
  const Check& vector_or_none(const py::object& o, const char* name, const py::array& like, std::int64_t n,
                              bool write = false) const {
    if (o.is_none()) return *this;
    if (!py::isinstance<py::array>(o)) type_error(name, "None or an ndarray");
    const auto a = py::reinterpret_borrow<py::array>(o);
    same_dtype(a, like, name).dense(a, name).shape(a, name, {n});
    return write ? writeable(a, name) : *this;
  }
  // None, or a dense 1-D array of n native elements of kind `kind` and item size `size`.
  const Check& vector_or_none(const py::object& o, const char* name, char kind, py::ssize_t size,
                              std::int64_t n) const {
    if (o.is_none()) return *this;
    if (!py::isinstance<py::array>(o)) type_error(name, "None or an ndarray");
    const auto a = py::reinterpret_borrow<py::array>(o);
    return dtype(a, name, kind, size).dense(a, name).shape(a, name, {n});
  }
  const Check& that(bool ok, const char* what) const {
    if (!ok) value_error(what);
    return *this;
  }
  const Check& that(bool ok, const std::string& what) const {
    if (!ok) value_error(what);
    return *this;
  }
  // Every p[i], i < n, lies in [lo, hi), the message made only on failure. p[i] - lo taken as
  // unsigned is below hi - lo exactly when lo <= p[i] < hi, so the largest such value decides: four
  // independent running maxima per range, ranges on numkern's threads (the bindings are built for
  // the baseline ISA, where 64-bit compares do not vectorize: one serial pass over a sketch's
  // n s indices cost more than the sketch).
  template <class T>
  const Check& all_in(const T* p, std::int64_t n, std::int64_t lo, std::int64_t hi, const char* what) const {
    if (n <= 0) return *this;
    if (hi <= lo) return that(false, what);
    const auto span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
    const auto off = [lo](T v) {
      return static_cast<std::uint64_t>(static_cast<std::int64_t>(v)) - static_cast<std::uint64_t>(lo);
    };
    const auto range_max = [&](std::int64_t b, std::int64_t e) {
      std::uint64_t m0 = 0, m1 = 0, m2 = 0, m3 = 0;
      std::int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        m0 = std::max(m0, off(p[i]));
        m1 = std::max(m1, off(p[i + 1]));
        m2 = std::max(m2, off(p[i + 2]));
        m3 = std::max(m3, off(p[i + 3]));
      }
      for (; i < e; ++i) m0 = std::max(m0, off(p[i]));
      return std::max(std::max(m0, m1), std::max(m2, m3));
    };
    const int parts = static_cast<int>(std::min<std::int64_t>(64, std::max<std::int64_t>(1, n >> 16)));
    const std::uint64_t largest = parallel_reduce<std::uint64_t>(
        n, parts, range_max, [](std::uint64_t a, std::uint64_t b) { return std::max(a, b); });
    return that(largest < span, what);
  }

 private:
  static const char* kind_name(char k) {
    switch (k) {
      case 'f':
        return "float";
      case 'i':
        return "int";
      case 'u':
        return "uint";
      default:
        return "bool";
    }
  }
  [[noreturn]] void type_error(const char* name, const std::string& want) const {
    throw py::type_error(std::string(fn_) + ": " + name + " must be " + want);
  }
  [[noreturn]] void value_error(const std::string& what) const {
    throw py::value_error(std::string(fn_) + ": " + what);
  }

  const char* fn_;
};

// Number of slices of an array along `axis` (product of the other dimensions).
inline std::int64_t slices_of(const py::array& a, int axis) {
  std::int64_t s = 1;
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (d != axis) s *= a.shape(d);
  return s;
}

}  // namespace numkern::bindings
