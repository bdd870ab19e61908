#!/usr/bin/env bash
# Builds that the release (x86-64, GCC, threads) never exercises, so that they do not rot:
#   no-threads numkern._core configured with NUMKERN_THREADS=OFF (a platform without threads):
#              warning-free, no thread is ever started (no pthread_create or OpenMP symbol in the
#              extension), and a test subset passes with cpu_info() reporting threading "none" and
#              one thread.
#   aarch64    the kernel library alone (NUMKERN_BUILD_EXTENSION=OFF) cross-compiled with Debian's
#              aarch64-linux-gnu-g++: the scalar and NEON units and no x86 unit are built, and
#              tools/portable_smoke.cpp linked against it reports aarch64, the NEON level and correct
#              softmax results under qemu-aarch64-static -cpu cortex-a72 (no dot product). The
#              extension itself is built and tested for aarch64 by tools/aarch64_emulated.sh.
# Usage: tools/portable_build.sh [no-threads] [aarch64]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(no-threads aarch64)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

no_threads() {
  echo "== build without threads"
  local build=build/no-threads pkg="$tmp/no-threads"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNUMKERN_THREADS=OFF -DNUMKERN_WERROR=ON \
    -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
  cmake --build "$build" -j 2 --target _core >/dev/null
  local so
  so=$(ls "$build"/_core*.so)
  if nm -D --undefined-only "$so" | grep -E -w -q 'pthread_create|omp_[a-z_]+|GOMP_[A-Za-z_]+|__kmpc_[a-z_]+'; then
    echo "$so starts threads although built without them:" >&2
    nm -D --undefined-only "$so" | grep -E -w 'pthread_create|omp_[a-z_]+|GOMP_[A-Za-z_]+|__kmpc_[a-z_]+' >&2
    exit 1
  fi
  mkdir -p "$pkg"
  cp -r python/numkern "$pkg/numkern"
  rm -f "$pkg"/numkern/_core*.so
  cp "$so" "$pkg/numkern/"
  PYTHONPATH="$pkg" python - "$pkg/numkern/$(basename "$so")" <<'EOF'
import os, sys
import numkern
from numkern import _core
assert os.path.samefile(_core.__file__, sys.argv[1]), f"imported {_core.__file__}, expected {sys.argv[1]}"
info = numkern.cpu_info()
assert info["threading"] == "none", info["threading"]
assert info["num_threads"] == 1 and numkern.get_num_threads() == 1, info["num_threads"]
numkern.set_num_threads(4)  # accepted, but there is nothing to run more threads on
assert numkern.get_num_threads() == 1, numkern.get_num_threads()
print(f"build without threads imported: threading {info['threading']}, {info['num_threads']} thread")
EOF
  # Kernels on every ISA level, plus concurrent calls from Python threads (the GIL is released, so
  # the single-threaded loops run in parallel on the callers' threads).
  PYTHONPATH="$pkg" python -m pytest -p no:cacheprovider -q -x tests \
    -k "(cpu_info or every_axis or random_slices or concurrent_calls) and not fuzz"
  echo "build without threads: no thread started, tests passed single-threaded"
}

aarch64() {
  echo "== aarch64 cross build"
  if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq g++-aarch64-linux-gnu qemu-user-static) >/dev/null
  fi
  local build=build/aarch64
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNUMKERN_BUILD_EXTENSION=OFF \
    -DCMAKE_TOOLCHAIN_FILE="$PWD/tools/cmake/aarch64-linux-gnu.cmake" >/dev/null
  cmake --build "$build" -j 2 --target numkern_kernels >/dev/null
  # Scalar and NEON units, one of each per family, no x86 unit, all of them AArch64 code.
  local objects x86 scalar neon families
  objects=$(find "$build/CMakeFiles/numkern_kernels.dir" -name '*.o' | sort)
  x86=$(grep -E '_(avx2|avx512|avx512vnni)\.cpp\.o$' <<<"$objects" || true)
  if [ -n "$x86" ]; then
    echo "x86 ISA units were built for aarch64:" >&2
    echo "$x86" >&2
    exit 1
  fi
  scalar=$(grep -c '_scalar\.cpp\.o$' <<<"$objects" || true)
  families=$(find cpp -name '*_scalar.cpp' | wc -l)
  neon=$(grep -c '_neon\.cpp\.o$' <<<"$objects" || true)
  if [ "$scalar" -ne "$families" ] || [ "$neon" -ne "$families" ]; then
    echo "expected $families scalar and NEON units, found $scalar and $neon" >&2
    exit 1
  fi
  while read -r obj; do
    if ! readelf -h "$obj" | grep -q 'Machine:.*AArch64'; then
      echo "$obj is not an AArch64 object" >&2
      exit 1
    fi
  done <<<"$objects"
  echo "$(wc -l <<<"$objects") objects, $scalar scalar units, $neon NEON units, no x86 unit"
  # Link the smoke driver the way a C++ user of the library would (with threads: the pool).
  # --whole-archive links every object, not just softmax's, so a family driver that still names an
  # x86 kernel table (instead of NUMKERN_X86_TABLE) fails here with an undefined reference.
  aarch64-linux-gnu-g++ -std=c++17 -O2 -Wall -Wextra -Werror -pthread -Icpp tools/portable_smoke.cpp \
    -Wl,--whole-archive "$build/libnumkern_kernels.a" -Wl,--no-whole-archive -o "$build/portable_smoke"
  local out
  out=$(qemu-aarch64-static -cpu cortex-a72 -L /usr/aarch64-linux-gnu "$build/portable_smoke")
  echo "$out"
  for want in "arch: aarch64" "detected: neon" "active: neon" "softmax kernels: neon" "smoke: ok"; do
    if ! grep -q -x "$want" <<<"$out"; then
      echo "aarch64 smoke run: missing '$want'" >&2
      exit 1
    fi
  done
  echo "aarch64 build: scalar and NEON kernels, smoke run correct under qemu"
}

for step in "${steps[@]}"; do
  case "$step" in
    no-threads) no_threads ;;
    aarch64) aarch64 ;;
    *)
      echo "unknown step '$step' (expected no-threads or aarch64)" >&2
      exit 2
      ;;
  esac
done
