// google-benchmark micro-benchmarks of the softmax kernels: every kernel x ISA x size, calling the
// per-ISA tables directly (levels the CPU lacks are skipped). Built with -DNUMKERN_BUILD_BENCHMARKS=ON.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/isa.h"
#include "softmax/softmax.h"

namespace {

using numkern::Isa;
namespace sm = numkern::softmax;

const sm::Kernels* table(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(numkern::detected_isa())) return nullptr;
  switch (isa) {
    case Isa::scalar: return &sm::kernels_scalar;
    case Isa::avx2: return &sm::kernels_avx2;
    case Isa::avx512: return &sm::kernels_avx512;
  }
  return nullptr;
}

std::vector<float> inputs(std::size_t n) {
  std::mt19937 gen(42);
  std::normal_distribution<float> dist(0.0f, 4.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(gen);
  return x;
}

void two_pass(benchmark::State& state, Isa isa) {
  const sm::Kernels* k = table(isa);
  if (!k) return state.SkipWithError("ISA not supported by this CPU");
  const std::size_t n = state.range(0);
  auto x = inputs(n);
  std::vector<float> y(n);
  for (auto _ : state) {
    const sm::ExtSum s = k->f32.raddextexp(x.data(), n);
    k->f32.vscaleextexp(x.data(), y.data(), n, static_cast<float>(1.0 / s.m), static_cast<float>(s.e));
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 12);
}

void three_pass_reload(benchmark::State& state, Isa isa) {
  const sm::Kernels* k = table(isa);
  if (!k) return state.SkipWithError("ISA not supported by this CPU");
  const std::size_t n = state.range(0);
  auto x = inputs(n);
  std::vector<float> y(n);
  for (auto _ : state) {
    const float mx = k->f32.rmax(x.data(), n);
    const double s = k->f32.raddstoreexpminusmax(x.data(), y.data(), n, mx);
    k->f32.vscale(y.data(), y.data(), n, static_cast<float>(1.0 / s));
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 20);
}

void three_pass_recompute(benchmark::State& state, Isa isa) {
  const sm::Kernels* k = table(isa);
  if (!k) return state.SkipWithError("ISA not supported by this CPU");
  const std::size_t n = state.range(0);
  auto x = inputs(n);
  std::vector<float> y(n);
  for (auto _ : state) {
    const float mx = k->f32.rmax(x.data(), n);
    const double s = k->f32.raddexpminusmax(x.data(), n, mx);
    k->f32.vscaleexpminusmax(x.data(), y.data(), n, mx, static_cast<float>(1.0 / s));
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 16);
}

void register_all() {
  const std::pair<const char*, Isa> isas[] = {{"scalar", Isa::scalar}, {"avx2", Isa::avx2}, {"avx512", Isa::avx512}};
  for (const auto& [name, isa] : isas) {
    const std::string suffix = std::string("/") + name;
    benchmark::RegisterBenchmark(("f32_softmax_two_pass" + suffix).c_str(), two_pass, isa)->RangeMultiplier(16)->Range(256, 1 << 24);
    benchmark::RegisterBenchmark(("f32_softmax_three_pass_reload" + suffix).c_str(), three_pass_reload, isa)->RangeMultiplier(16)->Range(256, 1 << 24);
    benchmark::RegisterBenchmark(("f32_softmax_three_pass_recompute" + suffix).c_str(), three_pass_recompute, isa)->RangeMultiplier(16)->Range(256, 1 << 24);
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
