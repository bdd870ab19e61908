// Walking the slices of an N-d strided array along one axis, for the drivers (never included by an
// ISA translation unit): slice offsets, and contiguous views of strided slices through per-thread
// buffers, so that every kernel sees unit-stride data.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace numkern {

// Outputs at least this large are written with non-temporal stores: they cannot stay in the
// last-level cache, and a normal store would first read each line (three memory passes, not two).
constexpr std::int64_t kStreamMinBytes = std::int64_t{8} << 20;

// An output allocated for this call has no pages mapped yet: the first store to each page faults
// and the OS zeroes the page through the cache. Non-temporal stores then cost more than the read
// they save (they must evict the lines just zeroed), so only an existing output is streamed.
inline bool stream_output(std::int64_t bytes, bool fresh_output) { return !fresh_output && bytes >= kStreamMinBytes; }

// Whether slice s of an array along `axis` (slices in C order over the other dimensions, as
// SliceWalker numbers them) lies at byte s * shape[axis] * item, one after another with unit stride.
inline bool slices_in_order(const std::int64_t* shape, const std::int64_t* strides, int ndim, int axis,
                            std::int64_t item) {
  if (shape[axis] > 1 && strides[axis] != item) return false;
  std::int64_t expect = item * shape[axis];
  for (int d = ndim - 1; d >= 0; --d) {
    if (d == axis) continue;
    if (shape[d] > 1 && strides[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

// Offsets (bytes) of slice `index` in up to K arrays that share `shape`, the axis skipped. Slices
// are numbered in C order over the other dimensions.
struct SliceWalker {
  const std::int64_t* shape;
  int ndim, axis;

  std::int64_t length() const { return shape[axis]; }
  std::int64_t slices() const {
    std::int64_t s = 1;
    for (int d = 0; d < ndim; ++d)
      if (d != axis) s *= shape[d];
    return s;
  }
  template <int K>
  void at(std::int64_t index, const std::int64_t* const (&strides)[K], std::int64_t (&off)[K]) const {
    for (int j = 0; j < K; ++j) off[j] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      if (d == axis) continue;
      const std::int64_t i = index % shape[d];
      index /= shape[d];
      for (int j = 0; j < K; ++j) off[j] += i * strides[j][d];
    }
  }
};

template <class T>
const T* element(const char* base, std::int64_t stride, std::int64_t i) {
  return reinterpret_cast<const T*>(base + stride * i);
}
template <class T>
T* element(char* base, std::int64_t stride, std::int64_t i) {
  return reinterpret_cast<T*>(base + stride * i);
}

// Contiguous views of whole strided slices: the data itself when unit-strided, else one of
// `kBuffers` buffers owned by the view (one SliceBuf per thread).
template <class T, int kBuffers = 3>
class SliceBuf {
 public:
  // Slice elements [0, n) at p with stride `stride` (bytes), gathered into buffer `which` if strided.
  const T* in(const char* p, std::int64_t stride, std::int64_t n, int which) {
    if (stride == static_cast<std::int64_t>(sizeof(T))) return reinterpret_cast<const T*>(p);
    T* b = buffer(n, which);
    for (std::int64_t i = 0; i < n; ++i) b[i] = *element<T>(p, stride, i);
    return b;
  }
  // Where to write the slice: p itself when unit-strided, else buffer `which` (then call scatter).
  T* out(char* p, std::int64_t stride, std::int64_t n, int which) {
    if (stride == static_cast<std::int64_t>(sizeof(T))) return reinterpret_cast<T*>(p);
    return buffer(n, which);
  }
  // Writes a buffer returned by out() back to the strided slice (nothing to do when unit-strided).
  static void scatter(const T* b, char* p, std::int64_t stride, std::int64_t n) {
    if (stride == static_cast<std::int64_t>(sizeof(T))) return;
    for (std::int64_t i = 0; i < n; ++i) *element<T>(p, stride, i) = b[i];
  }
  // A buffer of n elements that no in()/out() call uses.
  T* scratch(std::int64_t n) { return buffer(n, kBuffers); }
  // Buffer `which` itself (n elements), whatever the stride: for data kept in cache beside a
  // streamed copy.
  T* own(std::int64_t n, int which) { return buffer(n, which); }

 private:
  T* buffer(std::int64_t n, int which) {
    auto& v = bufs_[which];
    if (v.size() < static_cast<std::size_t>(n)) v.resize(static_cast<std::size_t>(n));
    return v.data();
  }
  std::vector<T> bufs_[kBuffers + 1];
};

// Long slices in runs: f(px, len) over contiguous runs covering src[a:b) (stride ss bytes); a strided
// slice is gathered `kStridedRun` elements at a time into a per-thread buffer, a unit-stride one is
// passed in runs of at most `kContiguousRun` (bounding the terms one kernel call sums).
constexpr std::int64_t kContiguousRun = 1 << 16;
constexpr std::int64_t kStridedRun = 2048;

template <class T>
T* run_buffer(int which) {
  static thread_local std::vector<T> buffers[4];
  auto& b = buffers[which];
  if (b.size() < static_cast<std::size_t>(kStridedRun)) b.resize(kStridedRun);
  return b.data();
}

template <class T, class F>
void read_runs(const char* src, std::int64_t ss, std::int64_t a, std::int64_t b, F&& f) {
  if (ss == static_cast<std::int64_t>(sizeof(T))) {
    for (std::int64_t i = a; i < b; i += kContiguousRun) f(element<T>(src, ss, i), std::min(kContiguousRun, b - i));
    return;
  }
  T* buf = run_buffer<T>(0);
  for (std::int64_t i = a; i < b; i += kStridedRun) {
    const std::int64_t len = std::min(kStridedRun, b - i);
    for (std::int64_t j = 0; j < len; ++j) buf[j] = *element<T>(src, ss, i + j);
    f(static_cast<const T*>(buf), len);
  }
}

// f(px, py, len) reading src[a:b) and writing dst[a:b), through the per-thread buffers where strided.
template <class T, class F>
void map_runs(const char* src, std::int64_t ss, char* dst, std::int64_t ds, std::int64_t a, std::int64_t b, F&& f) {
  const std::int64_t unit = static_cast<std::int64_t>(sizeof(T));
  if (ss == unit && ds == unit) {
    for (std::int64_t i = a; i < b; i += kContiguousRun)
      f(element<T>(src, ss, i), element<T>(dst, ds, i), std::min(kContiguousRun, b - i));
    return;
  }
  T* in = run_buffer<T>(0);
  T* out = run_buffer<T>(1);
  for (std::int64_t i = a; i < b; i += kStridedRun) {
    const std::int64_t len = std::min(kStridedRun, b - i);
    const T* px = ss == unit ? element<T>(src, ss, i) : in;
    T* py = ds == unit ? element<T>(dst, ds, i) : out;
    if (ss != unit)
      for (std::int64_t j = 0; j < len; ++j) in[j] = *element<T>(src, ss, i + j);
    f(px, py, len);
    if (ds != unit)
      for (std::int64_t j = 0; j < len; ++j) *element<T>(dst, ds, i + j) = out[j];
  }
}

// f(pa, pb, len) over runs covering a[lo:hi) and b[lo:hi), gathered where strided.
template <class T, class F>
void read_runs2(const char* a, std::int64_t as, const char* b, std::int64_t bs, std::int64_t lo, std::int64_t hi,
                F&& f) {
  const std::int64_t unit = static_cast<std::int64_t>(sizeof(T));
  T* ga = run_buffer<T>(0);
  T* gb = run_buffer<T>(1);
  const std::int64_t step = as == unit && bs == unit ? kContiguousRun : kStridedRun;
  for (std::int64_t i = lo; i < hi; i += step) {
    const std::int64_t len = std::min(step, hi - i);
    const T* pa = as == unit ? element<T>(a, as, i) : ga;
    const T* pb = bs == unit ? element<T>(b, bs, i) : gb;
    if (as != unit)
      for (std::int64_t j = 0; j < len; ++j) ga[j] = *element<T>(a, as, i + j);
    if (bs != unit)
      for (std::int64_t j = 0; j < len; ++j) gb[j] = *element<T>(b, bs, i + j);
    f(pa, pb, len);
  }
}

// f(pa, pb, pd, len) reading a[lo:hi) and b[lo:hi) and writing dst[lo:hi), through the per-thread
// buffers where strided. dst may be a or b element for element: each run is read before it is written.
template <class T, class F>
void map_runs2(const char* a, std::int64_t as, const char* b, std::int64_t bs, char* dst, std::int64_t ds,
               std::int64_t lo, std::int64_t hi, F&& f) {
  const std::int64_t unit = static_cast<std::int64_t>(sizeof(T));
  T* ga = run_buffer<T>(0);
  T* gb = run_buffer<T>(1);
  T* gd = run_buffer<T>(2);
  const std::int64_t step = as == unit && bs == unit && ds == unit ? kContiguousRun : kStridedRun;
  for (std::int64_t i = lo; i < hi; i += step) {
    const std::int64_t len = std::min(step, hi - i);
    const T* pa = as == unit ? element<T>(a, as, i) : ga;
    const T* pb = bs == unit ? element<T>(b, bs, i) : gb;
    T* pd = ds == unit ? element<T>(dst, ds, i) : gd;
    if (as != unit)
      for (std::int64_t j = 0; j < len; ++j) ga[j] = *element<T>(a, as, i + j);
    if (bs != unit)
      for (std::int64_t j = 0; j < len; ++j) gb[j] = *element<T>(b, bs, i + j);
    f(pa, pb, pd, len);
    if (ds != unit)
      for (std::int64_t j = 0; j < len; ++j) *element<T>(dst, ds, i + j) = gd[j];
  }
}

}  // namespace numkern
