// google-benchmark micro-benchmarks of the quant kernels: the GEMM micro-kernel over an L2-resident
// block (the driver's inner loops), B packing, and the quantizer, per ISA table (levels the CPU
// lacks are skipped). Built with -DNUMKERN_BUILD_BENCHMARKS=ON.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

#include "common/isa.h"
#include "quant/quant.h"

namespace {

using numkern::Isa;
namespace q = numkern::quant;

const q::GemmKernels* gemm(Isa isa) {
  const auto& f = numkern::cpu_features();
  if (static_cast<int>(isa) > static_cast<int>(numkern::detected_isa())) return nullptr;
  switch (isa) {
    case Isa::scalar:
      return &q::kernels_scalar_gemm;
    case Isa::avx2:
      return NUMKERN_X86_TABLE(q::kernels_avx2_gemm);
    case Isa::avx512:
      return f.avx512vnni ? NUMKERN_X86_TABLE(q::kernels_avx512vnni_gemm) : nullptr;
    case Isa::neon:
      return NUMKERN_ARM_TABLE(q::kernels_neon_gemm);
    case Isa::neon_dotprod:
      return NUMKERN_ARM_TABLE(q::kernels_neon_dotprod_gemm);
    case Isa::neon_i8mm:
      return NUMKERN_ARM_TABLE(q::kernels_neon_i8mm_gemm);
  }
  return nullptr;
}

const q::QuantKernels* quant(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(numkern::detected_isa())) return nullptr;
  switch (isa) {
    case Isa::scalar:
      return &q::kernels_scalar_quant;
    case Isa::avx2:
      return NUMKERN_X86_TABLE(q::kernels_avx2_quant);
    case Isa::avx512:
      return NUMKERN_X86_TABLE(q::kernels_avx512_quant);
    case Isa::neon:
    case Isa::neon_dotprod:
    case Isa::neon_i8mm:
      return NUMKERN_ARM_TABLE(q::kernels_neon_quant);  // one quantizer for the three
  }
  return nullptr;
}

struct Aligned {
  void* p;
  explicit Aligned(std::size_t n) : p(std::aligned_alloc(64, (n + 63) / 64 * 64)) {}
  ~Aligned() { std::free(p); }
  char* c() const { return static_cast<char*>(p); }
};

// One mc x (64 panels) block with kc = state.range(0): B panels outer, A panels inner.
void ukernel_block(benchmark::State& state, Isa isa) {
  const q::GemmKernels* g = gemm(isa);
  if (!g) return state.SkipWithError("ISA not supported by this CPU");
  const std::int64_t k = state.range(0), na = std::max<std::int64_t>(1, (256 * 1024) / (k * g->mr * g->a_bytes)),
                     nbp = 64;
  std::vector<std::int8_t> A(g->mr * k), B(k * g->nr);
  std::mt19937 gen(1);
  for (auto& v : A) v = static_cast<std::int8_t>(gen());
  for (auto& v : B) v = static_cast<std::int8_t>(gen());
  const std::int64_t asz = k * g->mr * g->a_bytes, bsz = k * g->nr * g->b_bytes + (g->has_corr ? g->nr * 4 : 0);
  Aligned ap(asz * na), bp(bsz * nbp);
  for (std::int64_t i = 0; i < na; ++i) g->pack_a(A.data(), k, g->mr, k, ap.c() + i * asz);
  for (std::int64_t j = 0; j < nbp; ++j) g->pack_b(B.data(), g->nr, g->nr, k, bp.c() + j * bsz, bsz);
  const std::int64_t ldc = nbp * g->nr;
  std::vector<std::int32_t> C(na * g->mr * ldc);
  for (auto _ : state) {
    for (std::int64_t j = 0; j < nbp; ++j)
      for (std::int64_t i = 0; i < na; ++i)
        g->ukernel(k, ap.c() + i * asz, bp.c() + j * bsz, C.data() + i * g->mr * ldc + j * g->nr, ldc, 1);
    benchmark::DoNotOptimize(C.data());
  }
  state.counters["GOP/s"] =
      benchmark::Counter(2.0 * g->mr * g->nr * k * na * nbp, benchmark::Counter::kIsIterationInvariantRate);
}

void pack_b(benchmark::State& state, Isa isa) {
  const q::GemmKernels* g = gemm(isa);
  if (!g) return state.SkipWithError("ISA not supported by this CPU");
  // About 1024 columns, a whole number of 8-panel groups (nr is 12 for the SDOT kernel).
  const std::int64_t k = state.range(0), n = 8 * g->nr * std::max<std::int64_t>(1, 1024 / (8 * g->nr));
  std::vector<std::int8_t> B(k * n, 3);
  const std::int64_t bsz = k * g->nr * g->b_bytes + (g->has_corr ? g->nr * 4 : 0);
  Aligned bp(bsz * (n / g->nr));
  for (auto _ : state) {
    for (std::int64_t j = 0; j < n; j += 8 * g->nr)
      g->pack_b(B.data() + j, n, 8 * g->nr, k, bp.c() + (j / g->nr) * bsz, bsz);
    benchmark::DoNotOptimize(bp.p);
  }
  state.SetBytesProcessed(state.iterations() * k * n);
}

void quantize(benchmark::State& state, Isa isa, bool stochastic) {
  const q::QuantKernels* k = quant(isa);
  if (!k) return state.SkipWithError("ISA not supported by this CPU");
  const std::int64_t n = state.range(0);
  std::vector<float> x(n), f(n, 4.0f), g(n, 1.0f);
  std::mt19937 gen(2);
  std::normal_distribution<float> dist;
  for (auto& v : x) v = dist(gen);
  std::vector<std::int8_t> out(n);
  for (auto _ : state) {
    k->quantize(x.data(), out.data(), n, f.data(), g.data(), true, 0.25f, 7, stochastic, 0, 12345);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 4);
}

void absmax(benchmark::State& state, Isa isa) {
  const q::QuantKernels* k = quant(isa);
  if (!k) return state.SkipWithError("ISA not supported by this CPU");
  const std::int64_t n = state.range(0);
  std::vector<float> x(n, 1.5f);
  for (auto _ : state) benchmark::DoNotOptimize(k->absmax(x.data(), n));
  state.SetBytesProcessed(state.iterations() * n * 4);
}

}  // namespace

// The levels of the build's architecture.
#if defined(NUMKERN_ARM_KERNELS)
#define PER_ISA(fn, ...)                                                                                \
  BENCHMARK_CAPTURE(fn, scalar, Isa::scalar __VA_OPT__(, ) __VA_ARGS__)->ArgsProduct(ARGS);             \
  BENCHMARK_CAPTURE(fn, neon, Isa::neon __VA_OPT__(, ) __VA_ARGS__)->ArgsProduct(ARGS);                 \
  BENCHMARK_CAPTURE(fn, neon_dotprod, Isa::neon_dotprod __VA_OPT__(, ) __VA_ARGS__)->ArgsProduct(ARGS); \
  BENCHMARK_CAPTURE(fn, neon_i8mm, Isa::neon_i8mm __VA_OPT__(, ) __VA_ARGS__)->ArgsProduct(ARGS);
#else
#define PER_ISA(fn, ...)                                                                    \
  BENCHMARK_CAPTURE(fn, scalar, Isa::scalar __VA_OPT__(, ) __VA_ARGS__)->ArgsProduct(ARGS); \
  BENCHMARK_CAPTURE(fn, avx2, Isa::avx2 __VA_OPT__(, ) __VA_ARGS__)->ArgsProduct(ARGS);     \
  BENCHMARK_CAPTURE(fn, avx512, Isa::avx512 __VA_OPT__(, ) __VA_ARGS__)->ArgsProduct(ARGS);
#endif

#define ARGS {{256, 1024, 2048}}
PER_ISA(ukernel_block)
PER_ISA(pack_b)
#undef ARGS
#define ARGS {{4096, 1 << 20}}
PER_ISA(quantize, false)
PER_ISA(absmax)
#undef ARGS

BENCHMARK_MAIN();
