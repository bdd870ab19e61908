#!/usr/bin/env bash
# Developer loop: incremental CMake build into build/dev and a copy of _core next to the sources,
# so `PYTHONPATH=python python -m pytest` runs without reinstalling. CI uses `pip install .`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/dev
if [ ! -f build/dev/build.ninja ]; then
  cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
fi
cmake --build build/dev
cp build/dev/_core*.so python/numkern/
