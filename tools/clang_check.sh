#!/usr/bin/env bash
# Builds numkern._core with Clang and LLVM's OpenMP runtime (libomp) instead of GCC and libgomp, with
# the usual -Wall -Wextra turned into errors (NUMKERN_WERROR), and runs the test suite against that
# build: a second compiler catches code that only GCC accepts, warnings GCC does not give, and
# reliance on libgomp. It runs the ISA-object guard on the Clang objects, and checks that the module
# the tests import is the Clang build, that it links libomp, and that cpu_info() reports OpenMP
# threading.
# Usage: tools/clang_check.sh [pytest args...]   (default: the whole suite)
# CLANGXX names the compiler (default: clang++); Debian's clang and libomp-dev are installed if
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${CLANGXX:-clang++}
omp_links() { echo 'int main() {}' | "$cxx" -fopenmp -x c++ - -o /dev/null 2>/dev/null; }
if ! command -v "$cxx" >/dev/null || ! omp_links; then
  if command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq clang libomp-dev) >/dev/null
  else
    echo "$cxx or libomp is missing and apt-get is not available" >&2
    exit 1
  fi
fi
build=build/clang
pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
# CMAKE_REQUIRE_FIND_PACKAGE_OpenMP: a Clang without libomp must fail here, not fall back to a
# single-threaded build that would pass the tests without testing the threaded paths.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DNUMKERN_WERROR=ON \
  -DCMAKE_REQUIRE_FIND_PACKAGE_OpenMP=ON -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
if ! grep -q 'CMAKE_CXX_COMPILER_ID "Clang"' "$build"/CMakeFiles/*/CMakeCXXCompiler.cmake; then
  echo "$build was configured with a compiler other than Clang ($cxx)" >&2
  exit 1
fi
cmake --build "$build" -j 2 --target _core >/dev/null
# Clang lays out inline functions and statics its own way: the ISA objects must still keep their
# code to themselves.
python tools/isa_guard.py "$build"
so=$(ls "$build"/_core*.so)
if ! readelf -d "$so" | grep -q 'NEEDED.*libomp\.so'; then
  echo "$so does not link LLVM's libomp:" >&2
  readelf -d "$so" | grep NEEDED >&2
  exit 1
fi
cp -r python/numkern "$pkg/numkern"
rm -f "$pkg"/numkern/_core*.so
cp "$so" "$pkg/numkern/"
# The module imported must be the one just built (not an installed numkern, nor a stale _core
# next to the sources), and the process must run on libomp.
PYTHONPATH="$pkg" python - "$pkg/numkern/$(basename "$so")" <<'EOF'
import os, sys
import numkern
from numkern import _core
built = sys.argv[1]
assert os.path.samefile(_core.__file__, built), f"imported {_core.__file__}, expected {built}"
info = numkern.cpu_info()
assert info["threading"] == "openmp", info["threading"]
with open("/proc/self/maps") as maps:
    assert "/libomp.so" in maps.read(), "libomp is not loaded"
print(f"clang build imported: {_core.__file__} (threading {info['threading']}, "
      f"{info['num_threads']} threads, level {info['detected']})")
EOF
PYTHONPATH="$pkg" python -m pytest -p no:cacheprovider -q "$@"
echo "clang check: warning-free build, tests passed"
