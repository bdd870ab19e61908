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
  static const sm::Kernels* const tables[numkern::kIsaCount] = {&sm::kernels_scalar,
                                                                NUMKERN_X86_TABLE(sm::kernels_avx2),
                                                                NUMKERN_X86_TABLE(sm::kernels_avx512),
                                                                NUMKERN_ARM_TABLE(sm::kernels_neon),
                                                                nullptr,
                                                                nullptr};  // softmax has one NEON level
  return tables[static_cast<int>(isa)];
}

std::vector<float> inputs(std::size_t n) {
  std::mt19937 gen(42);
  std::normal_distribution<float> dist(0.0f, 4.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(gen);
  return x;
}

enum class Algo { two_pass, three_pass_reload, three_pass_recompute };

// One softmax of n floats with the given algorithm, calling the kernels as the driver does.
void softmax_once(const sm::TypedKernels<float>& k, Algo algo, const float* x, float* y, std::size_t n) {
  if (algo == Algo::two_pass) {
    const sm::ExtSum s = k.raddextexp(x, n);
    k.vscaleextexp(x, y, n, static_cast<float>(1.0 / s.m), static_cast<float>(s.e));
    return;
  }
  const float mx = k.rmax(x, n);
  if (algo == Algo::three_pass_reload) {
    const double s = k.raddstoreexpminusmax(x, y, n, mx);
    k.vscale(y, y, n, static_cast<float>(1.0 / s));
  } else {
    const double s = k.raddexpminusmax(x, n, mx);
    k.vscaleexpminusmax(x, y, n, mx, static_cast<float>(1.0 / s));
  }
}

void softmax_bench(benchmark::State& state, Isa isa, Algo algo) {
  const sm::Kernels* k = table(isa);
  if (!k) return state.SkipWithError("ISA not supported by this CPU");
  const std::size_t n = state.range(0);
  auto x = inputs(n);
  std::vector<float> y(n);
  for (auto _ : state) {
    softmax_once(k->f32, algo, x.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  // Bytes the algorithm moves: reads of x per pass plus the writes (and re-reads) of y.
  const int bytes_per_element = algo == Algo::two_pass ? 12 : algo == Algo::three_pass_reload ? 20 : 16;
  state.SetBytesProcessed(state.iterations() * n * bytes_per_element);
}

void register_all() {
  int count = 0;
  const Isa* levels = numkern::levels_of_build(&count);
  for (int l = 0; l < count; ++l) {
    const Isa isa = levels[l];
    if (isa == Isa::neon_dotprod || isa == Isa::neon_i8mm) continue;  // the neon kernels again
    const std::string suffix = std::string("/") + numkern::isa_name(isa);
    const std::pair<const char*, Algo> algos[] = {{"f32_softmax_two_pass", Algo::two_pass},
                                                  {"f32_softmax_three_pass_reload", Algo::three_pass_reload},
                                                  {"f32_softmax_three_pass_recompute", Algo::three_pass_recompute}};
    for (const auto& [algo_name, algo] : algos)
      benchmark::RegisterBenchmark((algo_name + suffix).c_str(), softmax_bench, isa, algo)
          ->RangeMultiplier(16)
          ->Range(256, 1 << 24);
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
