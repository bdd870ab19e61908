// google-benchmark micro-benchmarks of the dp kernels: pair sums (every kind) and the random-feature
// kernels, per ISA x size, calling the per-ISA tables directly on one packed query group (levels the
// CPU lacks are skipped). Built with -DNUMKERN_BUILD_BENCHMARKS=ON.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/isa.h"
#include "dp/dp.h"

namespace {

using numkern::Isa;
namespace dp = numkern::dp;

const dp::Kernels* table(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(numkern::detected_isa())) return nullptr;
  switch (isa) {
    case Isa::scalar:
      return &dp::kernels_scalar;
    // nullptr (skipped) in builds without the x86 units.
    case Isa::avx2:
      return NUMKERN_X86_TABLE(dp::kernels_avx2);
    case Isa::avx512:
      return NUMKERN_X86_TABLE(dp::kernels_avx512);
    case Isa::neon:
      return NUMKERN_ARM_TABLE(dp::kernels_neon);
    case Isa::neon_dotprod:
    case Isa::neon_i8mm:
      return nullptr;  // dp has one NEON level
  }
  return nullptr;
}

std::vector<double> normals(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<double> x(n);
  for (auto& v : x) v = dist(gen);
  return x;
}

// nx rows of d = 32 against one packed group of queries: nx * group pairs per call.
void pair_sum_bench(benchmark::State& state, Isa isa, int kind) {
  const dp::Kernels* k = table(isa);
  if (!k) return state.SkipWithError("ISA not supported by this CPU");
  const std::size_t nx = state.range(0), d = 32, g = k->y_group;
  auto X = normals(nx * d, 1), Yp = normals(g * d, 2);
  std::vector<double> out(g, 0.0);
  for (auto _ : state) {
    k->pair_sum(X.data(), nx, d, nullptr, Yp.data(), kind, 1.0 / 32, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * nx * g);  // pairs
}

// Fixed-point feature sums of nx rows (d = 32) over m = 1024 features.
void rff_sum_bench(benchmark::State& state, Isa isa) {
  const dp::Kernels* k = table(isa);
  if (!k) return state.SkipWithError("ISA not supported by this CPU");
  const std::size_t nx = state.range(0), d = 32, m = 1024;
  auto X = normals(nx * d, 3), Wt = normals(d * m, 4), b = normals(m, 5);
  std::vector<std::int64_t> acc(m, 0);
  for (auto _ : state) {
    k->rff_sum(X.data(), nx, d, Wt.data(), m, b.data(), m, 4294967296.0, acc.data());
    benchmark::DoNotOptimize(acc.data());
  }
  state.SetItemsProcessed(state.iterations() * nx * m);  // feature values
}

void rff_features_bench(benchmark::State& state, Isa isa) {
  const dp::Kernels* k = table(isa);
  if (!k) return state.SkipWithError("ISA not supported by this CPU");
  const std::size_t m = state.range(0), d = 32;
  auto Y = normals(d, 6), Wt = normals(d * m, 7), b = normals(m, 8);
  std::vector<double> out(m);
  for (auto _ : state) {
    k->rff_features(Y.data(), 1, d, Wt.data(), m, b.data(), m, out.data(), m);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * m);
}

void register_all() {
  int count = 0;
  const Isa* levels = numkern::levels_of_build(&count);
  const std::pair<const char*, int> kinds[] = {{"gaussian", dp::gaussian},
                                               {"laplacian", dp::laplacian},
                                               {"cauchy", dp::cauchy},
                                               {"l1", dp::l1},
                                               {"l2", dp::l2},
                                               {"sqeuclidean", dp::sqeuclidean}};
  for (int l = 0; l < count; ++l) {
    const Isa isa = levels[l];
    if (isa == Isa::neon_dotprod || isa == Isa::neon_i8mm) continue;
    const std::string suffix = std::string("/") + numkern::isa_name(isa);
    for (const auto& [kind_name, kind] : kinds)
      benchmark::RegisterBenchmark((std::string("f64_pair_sum_") + kind_name + suffix).c_str(), pair_sum_bench, isa,
                                   kind)
          ->RangeMultiplier(16)
          ->Range(256, 1 << 16);
    benchmark::RegisterBenchmark(("f64_rff_sum" + suffix).c_str(), rff_sum_bench, isa)
        ->RangeMultiplier(16)
        ->Range(16, 4096);
    benchmark::RegisterBenchmark(("f64_rff_features_1query" + suffix).c_str(), rff_features_bench, isa)
        ->RangeMultiplier(4)
        ->Range(256, 4096);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
