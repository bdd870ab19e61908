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
for so in build/dev/_core*.so; do
  # A new file renamed into place: a process that has the old module loaded keeps its mapping
  # (copying over the file in place would change the code under it).
  name=$(basename "$so")
  cp "$so" "python/numkern/.$name.tmp" && mv -f "python/numkern/.$name.tmp" "python/numkern/$name"
done
