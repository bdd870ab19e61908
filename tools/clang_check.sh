#!/usr/bin/env bash
# Builds numkern._core with Clang (and its own thread pool) instead of GCC, with the usual -Wall
# -Wextra turned into errors (NUMKERN_WERROR), and runs the test suite against that build: a second
# compiler catches code that only GCC accepts and warnings GCC does not give. It runs the ISA-object
# guard on the Clang objects, and checks that the module the tests import is the Clang build and
# that cpu_info() reports the pool.
# Usage: tools/clang_check.sh [pytest args...]   (default: the whole suite)
# CLANGXX names the compiler (default: clang++); Debian's clang is installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${CLANGXX:-clang++}
if ! command -v "$cxx" >/dev/null; then
  if command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq clang) >/dev/null
  else
    echo "$cxx is missing and apt-get is not available" >&2
    exit 1
  fi
fi
build=build/clang
pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DNUMKERN_WERROR=ON \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
if ! grep -q 'CMAKE_CXX_COMPILER_ID "Clang"' "$build"/CMakeFiles/*/CMakeCXXCompiler.cmake; then
  echo "$build was configured with a compiler other than Clang ($cxx)" >&2
  exit 1
fi
cmake --build "$build" -j 2 --target _core >/dev/null
# Clang lays out inline functions and statics its own way: the ISA objects must still keep their
# code to themselves.
python tools/isa_guard.py "$build"
so=$(ls "$build"/_core*.so)
cp -r python/numkern "$pkg/numkern"
rm -f "$pkg"/numkern/_core*.so
cp "$so" "$pkg/numkern/"
# The module imported must be the one just built (not an installed numkern, nor a stale _core
# next to the sources).
PYTHONPATH="$pkg" python - "$pkg/numkern/$(basename "$so")" <<'EOF'
import os, sys
import numkern
from numkern import _core
built = sys.argv[1]
assert os.path.samefile(_core.__file__, built), f"imported {_core.__file__}, expected {built}"
info = numkern.cpu_info()
assert info["threading"] == "pool", info["threading"]
print(f"clang build imported: {_core.__file__} (threading {info['threading']}, "
      f"{info['num_threads']} threads, level {info['detected']})")
EOF
PYTHONPATH="$pkg" python -m pytest -p no:cacheprovider -q "$@"
echo "clang check: warning-free build, tests passed"
