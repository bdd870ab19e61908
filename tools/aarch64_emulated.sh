#!/usr/bin/env bash
# Cross-builds numkern._core for AArch64 and tests it under qemu-aarch64-static on two CPU models:
#   -cpu max         every extension qemu knows (SDOT, SMMLA, FP16): detected level neon_i8mm
#   -cpu cortex-a72  Armv8.0 Advanced SIMD only: detected level neon
# Everything comes from Debian apt and PyPI: g++-aarch64-linux-gnu and qemu-user-static on the host;
# Debian 12's arm64 python3.11 (+ its libraries and headers) unpacked with dpkg -x into a sysroot
# that qemu runs it from (-L); PyPI's aarch64 wheels of NumPy, SciPy, pytest and hypothesis for
# CPython 3.11, installed with pip --target into a site directory.
#
# Steps (default: setup build test):
#   setup   the sysroot and site directory under build/aarch64-emu (kept: a second run reuses them)
#   build   the extension, with the host's pybind11 headers and the arm64 Python headers; the
#           interpreter CMake queries is the arm64 one under qemu, so the module gets its suffix
#   test    the detected level per CPU model (printed and asserted), then a test subset at each
#   wheel   tools/aarch64_wheel.sh: the wheel assembled from this build, installed into a fresh
#           emulated virtual environment, and a README-style test selection run there
#   bench   the google-benchmark micro-benchmarks (bench/cpp) cross-built against Debian's arm64
#           libbenchmark-dev and each run for a token time under qemu -cpu max
#   coverage  the `test` step's -cpu max selection against a gcov-instrumented build: lists every
#           function of the NEON translation units (kernel table entries and what they call) that no
#           test of the selection reached, and fails if there is one
# Usage: tools/aarch64_emulated.sh [setup] [build] [test] [wheel] [bench] [coverage]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(setup build test)
emu=$PWD/build/aarch64-emu
root=$emu/sysroot
site=$emu/site
build=$emu/build
pkg=$emu/pkg

# The arm64 interpreter under qemu, the model taken from QEMU_CPU (qemu-user reads it).
python_wrapper() {
  mkdir -p "$emu"
  cat >"$emu/python3" <<EOF
#!/bin/sh
exec qemu-aarch64-static -L "$root" "$root/usr/bin/python3.11" "\$@"
EOF
  chmod +x "$emu/python3"
}

setup() {
  echo "== setup: cross compiler, qemu, arm64 Python 3.11 sysroot, aarch64 wheels"
  if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq g++-aarch64-linux-gnu qemu-user-static) >/dev/null
  fi
  if [ ! -x "$root/usr/bin/python3.11" ]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      dpkg --add-architecture arm64
    fi
    apt-get update -qq
    local debs=$emu/debs
    mkdir -p "$debs"
    # python3.11 and what its interpreter, stdlib extension modules and numkern's module load:
    # the C and C++ runtimes and the libraries of the stdlib's C modules.
    (cd "$debs" && apt-get download -qq \
      python3.11:arm64 python3.11-minimal:arm64 libpython3.11:arm64 libpython3.11-minimal:arm64 \
      libpython3.11-stdlib:arm64 libpython3.11-dev:arm64 \
      libc6:arm64 libgcc-s1:arm64 libstdc++6:arm64 libgomp1:arm64 zlib1g:arm64 libexpat1:arm64 \
      libffi8:arm64 libbz2-1.0:arm64 liblzma5:arm64 libssl3:arm64 libuuid1:arm64 libncursesw6:arm64 \
      libtinfo6:arm64 libreadline8:arm64 libsqlite3-0:arm64 libcrypt1:arm64 libnsl2:arm64 \
      libtirpc3:arm64 libdb5.3:arm64 libgssapi-krb5-2:arm64 libkrb5-3:arm64 libk5crypto3:arm64 \
      libkrb5support0:arm64 libcom-err2:arm64 libkeyutils1:arm64 2>&1 | grep -v unsandboxed || true)
    rm -rf "$root"
    mkdir -p "$root"
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root"; done
  fi
  if [ ! -d "$site/numpy" ] || [ ! -d "$site/scipy" ]; then
    python -m pip install -q --target "$site" --platform manylinux2014_aarch64 --only-binary=:all: \
      --python-version 3.11 --implementation cp numpy scipy pytest hypothesis threadpoolctl
  fi
  python_wrapper
  "$emu/python3" -c "import platform, sys; sys.path.insert(0, '$site'); import numpy; \
print('arm64 python', platform.python_version(), platform.machine(), 'numpy', numpy.__version__)"
}

build() {
  echo "== build: numkern._core for aarch64"
  python_wrapper
  python -c "import pybind11" 2>/dev/null || python -m pip install -q pybind11
  # Python_EXECUTABLE is the arm64 interpreter under qemu (version and extension suffix); the
  # headers are the arm64 ones (Debian's pyconfig.h includes its multiarch part from usr/include).
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNUMKERN_WERROR=ON \
    -DCMAKE_TOOLCHAIN_FILE="$PWD/tools/cmake/aarch64-linux-gnu.cmake" \
    -DPython_EXECUTABLE="$emu/python3" -DPython_INCLUDE_DIR="$root/usr/include/python3.11" \
    -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" -DCMAKE_CXX_FLAGS="-idirafter $root/usr/include" \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
  cmake --build "$build" -j 2
  if grep -E -q -- '-m(arch|tune)=native' "$build/compile_commands.json"; then
    echo "an object was compiled with -march=native / -mtune=native" >&2
    exit 1
  fi
  python tools/isa_guard.py "$build"
  rm -rf "$pkg"
  mkdir -p "$pkg"
  cp -r python/numkern "$pkg/numkern"
  rm -f "$pkg"/numkern/_core*.so
  cp "$build"/_core*.so "$pkg/numkern/"
  readelf -h "$pkg"/numkern/_core*.so | grep -q 'Machine:.*AArch64'
  echo "built $(basename "$pkg"/numkern/_core*.so)"
}

# The level qemu's CPU model gives, printed and checked, and the kernel of every family named in it.
check_level() {
  local cpu=$1 expect=$2 info
  info=$(QEMU_CPU=$cpu PYTHONPATH="$pkg:$site" "$emu/python3" -c \
    "import json, numkern; print(json.dumps(numkern.cpu_info()))")
  echo "-cpu $cpu: $info"
  python - "$expect" "$info" <<'EOF'
import json, sys
expect, info = sys.argv[1], json.loads(sys.argv[2])
assert info["arch"] == "aarch64", info["arch"]
assert info["detected"] == info["active"] == expect, (info["detected"], info["active"], expect)
for family in ("softmax", "norm", "quant", "sketch", "dp"):
    assert "neon" in info["kernels"][family], (family, info["kernels"][family])
EOF
}

run_tests() {
  local cpu=$1
  shift
  local start=$SECONDS
  QEMU_CPU=$cpu PYTHONPATH="$pkg:$site" "$emu/python3" -m pytest -p no:cacheprovider "$@"
  echo "-cpu $cpu: tests took $((SECONDS - start)) s"
}

test_() {
  python_wrapper
  echo "== test: -cpu max (expect neon_i8mm)"
  check_level max neon_i8mm
  select_max
  echo "== test: -cpu cortex-a72 (expect neon)"
  check_level cortex-a72 neon
  select_a72
  echo "aarch64 emulated: levels detected as expected, tests passed at both CPU models"
}

select_max() {
  # Emulation runs Python ~50x slower than native, so the selection aims at coverage, not volume:
  # every entry of every NEON table called on odd sizes, tails, strided slices and special values.
  # Left out everywhere: tests that start a subprocess (the child would run natively, outside the
  # emulator), the multi-GiB ones, and the fuzz suites (the x86 CI runs them on the same kernels).
  # quant at all four levels: each NEON level has its own GEMM (smlal, sdot, smmla), and every level's
  # results must equal the scalar level's bit for bit.
  run_tests max -x tests/test_quant.py tests/test_runtime.py -k "not numkern_isa and not 2_pow"
  run_tests max -x tests/test_quant_prepack.py -k "not thread"
  # The other families have one NEON kernel set, shared by the three NEON levels: run at neon only.
  # norm: f32/f64 fwd/bwd (l1, l2, uncentred L1, RMS; affine, streaming, strided) and the int8
  # kernels (centred or not); softmax: every
  # algorithm on random, special-value, denormal, huge and strided slices; sketch: FWHT at every
  # length up to 4096 (in-register and radix stages), NaN/inf, layouts, the sketches' kernels
  # (Gaussian fill, signed accumulation), the residual kernel (float32 and float64) and the
  # least-squares refinement, the sparse (CSR) kernels and the float32-stored passes; dp: every
  # pair_sum kind, weights, strides, subnormal results, random features and their exact
  # fixed-point sums, and the ChaCha20 stream behind the noise.
  NUMKERN_TEST_ISAS=neon run_tests max -x tests/test_norm.py -k "not 2_pow and not grow_memory"
  # the fused residual add (the norm's vadd kernel, streamed and not) and the masked softmax
  # kernels (the mask bytes read in the loads) and the masked backward
  NUMKERN_TEST_ISAS=neon run_tests max -x tests/test_norm_residual.py -k "not torch"
  NUMKERN_TEST_ISAS=neon run_tests max -x tests/test_softmax_where.py tests/test_softmax_backward.py -k "not torch"
  NUMKERN_TEST_ISAS=neon run_tests max -x tests/test_softmax.py \
    -k "special_values or every_axis or random_slices or strided or denormal or neg_inf or nan_anywhere or largest_finite or huge_magnitudes or length_one or in_place or long_slice"
  NUMKERN_TEST_ISAS=neon run_tests max -x tests/test_sketch.py tests/test_lstsq.py \
    -k "every_length_up_to_4096 or nan_and_inf or unaligned or any_axis or gaussian_matches or sparse_sketches or srht_matches or refinement_residual or float32_inputs or multiple_right_hand_sides"
  NUMKERN_TEST_ISAS=neon run_tests max -x tests/test_dp_exact.py \
    -k "cdist or weights or strided or nan_propagates or far_points or random_feature or fixed_point or cosine"
  NUMKERN_TEST_ISAS=neon run_tests max -x tests/test_dp_mechanisms.py -k "chacha20 or any_strides"
  NUMKERN_TEST_ISAS=neon run_tests max -x tests/test_sparse.py \
    -k "sketch_of_sparse_matches or float32_stored_A_reaches or sparse_precondition_equals_dense or apply_widened or transposed_kernels"
}

select_a72() {
  # No dot product, no i8mm: the smlal GEMM and the shared NEON kernels on a CPU without the
  # extensions (a stray sdot / smmla anywhere would be a SIGILL), on a smaller selection.
  run_tests cortex-a72 -x tests/test_quant.py -k "exact or odd or identical or kernel_name or int4"
  NUMKERN_TEST_ISAS=neon run_tests cortex-a72 -x tests/test_softmax.py tests/test_norm.py \
    -k "(special_values or strided or int8) and not 2_pow and not large_output"
}

coverage() {
  echo "== coverage: the NEON functions the -cpu max selection reaches"
  python_wrapper
  local cbuild=$emu/cov-build
  cmake -S . -B "$cbuild" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$PWD/tools/cmake/aarch64-linux-gnu.cmake" \
    -DPython_EXECUTABLE="$emu/python3" -DPython_INCLUDE_DIR="$root/usr/include/python3.11" \
    -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" \
    -DCMAKE_CXX_FLAGS="-idirafter $root/usr/include --coverage -fprofile-update=atomic" \
    -DCMAKE_MODULE_LINKER_FLAGS=--coverage >/dev/null
  cmake --build "$cbuild" -j 2
  find "$cbuild" -name '*.gcda' -delete
  pkg=$emu/cov-pkg
  rm -rf "$pkg"
  mkdir -p "$pkg"
  cp -r python/numkern "$pkg/numkern"
  rm -f "$pkg"/numkern/_core*.so
  cp "$cbuild"/_core*.so "$pkg/numkern/"
  select_max
  python - "$cbuild" <<'EOF'
import pathlib, re, subprocess, sys

# gcov -f prints, per function emitted in the object, "Function '<name>'" then "Lines executed:P% of N".
missed, total = [], 0
for gcda in sorted(pathlib.Path(sys.argv[1]).rglob("*_neon*.gcda")):
    out = subprocess.run(["aarch64-linux-gnu-gcov", "-f", "-m", "-n", "-o", str(gcda.parent), str(gcda)],
                         capture_output=True, text=True, check=True).stdout
    for name, pct in re.findall(r"Function '(.*)'\nLines executed:([0-9.]+)%", out):
        total += 1
        if float(pct) == 0.0:
            missed.append(f"{gcda.name}: {name}")
print(f"NEON units: {total} functions, {total - len(missed)} reached by the selection")
for m in missed:
    print("  never called:", m)
sys.exit(1 if missed or not total else 0)
EOF
}

bench() {
  echo "== bench: C++ micro-benchmarks for aarch64"
  local broot=$emu/bench-sysroot bbuild=$emu/bench-build
  if [ ! -f "$broot/usr/include/benchmark/benchmark.h" ]; then
    local debs=$emu/bench-debs
    mkdir -p "$debs"
    (cd "$debs" && apt-get download -qq libbenchmark-dev:arm64 libbenchmark1debian:arm64 2>&1 | grep -v unsandboxed || true)
    mkdir -p "$broot"
    for deb in "$debs"/*.deb; do dpkg -x "$deb" "$broot"; done
  fi
  cmake -S . -B "$bbuild" -DCMAKE_BUILD_TYPE=Release -DNUMKERN_BUILD_EXTENSION=OFF -DNUMKERN_BUILD_BENCHMARKS=ON \
    -DCMAKE_TOOLCHAIN_FILE="$PWD/tools/cmake/aarch64-linux-gnu.cmake" \
    -Dbenchmark_DIR="$broot/usr/lib/aarch64-linux-gnu/cmake/benchmark" \
    -DCMAKE_CXX_FLAGS="-idirafter $broot/usr/include" >/dev/null
  cmake --build "$bbuild" -j 2 --target numkern_cpp_benchmarks >/dev/null
  # libbenchmark.so.1 from the arm64 package; the C++ runtime from the cross toolchain's root.
  for exe in "$bbuild"/bench_*; do
    [ -x "$exe" ] || continue
    echo "== $(basename "$exe") (token run, -cpu max)"
    QEMU_CPU=max LD_LIBRARY_PATH="$broot/usr/lib/aarch64-linux-gnu" \
      qemu-aarch64-static -L /usr/aarch64-linux-gnu "$exe" --benchmark_min_time=0.001 \
      --benchmark_filter='(neon|scalar).*/(256|4096|16)$' >/dev/null
  done
  echo "aarch64 C++ micro-benchmarks: built and ran"
}

for step in "${steps[@]}"; do
  case "$step" in
    setup) setup ;;
    build) build ;;
    test) test_ ;;
    wheel) bash tools/aarch64_wheel.sh ;;
    bench) bench ;;
    coverage) coverage ;;
    *)
      echo "unknown step '$step' (expected setup, build, test, wheel, bench or coverage)" >&2
      exit 2
      ;;
  esac
done
