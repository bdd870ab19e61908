#!/usr/bin/env bash
# Builds numkern._core with AddressSanitizer + UndefinedBehaviorSanitizer and runs the test suite
# against it (the ASan runtime is preloaded into the uninstrumented Python). Any report fails the run.
# Usage: tools/sanitize.sh [pytest args...]   (default: the whole suite)
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/sanitize
pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNUMKERN_SANITIZE=address,undefined \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
cmake --build "$build" -j 2 --target _core >/dev/null
cp -r python/numkern "$pkg/numkern"
rm -f "$pkg"/numkern/_core*.so
cp "$build"/_core*.so "$pkg/numkern/"
asan=$(${CXX:-g++} -print-file-name=libasan.so)
ubsan=$(${CXX:-g++} -print-file-name=libubsan.so)
# Python itself leaks by design at exit, so leak checking is off; everything else aborts.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:verify_asan_link_order=0:detect_odr_violation=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
PYTHONPATH="$pkg" LD_PRELOAD="$asan:$ubsan" python -m pytest -p no:cacheprovider -q "$@"
echo "sanitizers: no report"
