#!/usr/bin/env bash
# Builds the google-benchmark micro-benchmarks (bench/cpp) and runs each for a token time, so they
# never rot. Installs Debian's libbenchmark-dev if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! { [ -f /usr/include/benchmark/benchmark.h ] || [ -f /usr/local/include/benchmark/benchmark.h ]; }; then
  if command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq libbenchmark-dev) >/dev/null
  else
    echo "libbenchmark-dev is missing and apt-get is not available" >&2
    exit 1
  fi
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNUMKERN_BUILD_BENCHMARKS=ON \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build" -j 2 --target numkern_cpp_benchmarks >/dev/null
for exe in "$build"/bench_*; do
  [ -x "$exe" ] || continue
  echo "== $(basename "$exe") (token run)"
  "$exe" --benchmark_min_time=0.001 >/dev/null
done
echo "C++ micro-benchmarks: built and ran"
