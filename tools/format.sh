#!/usr/bin/env bash
# Applies the mechanical formatting that tools/lint.sh checks: import order (ruff's isort rules),
# ruff format over the Python sources, clang-format over cpp/ and bench/. Re-running it is safe and
# changes nothing on formatted sources.
set -euo pipefail
cd "$(dirname "$0")/.."

ruff check --select I --fix .
ruff format .
git ls-files -z 'cpp/*.h' 'cpp/*.cpp' 'cpp/*.inl' 'bench/*.h' 'bench/*.cc' 'bench/*.cpp' | xargs -0 clang-format -i
