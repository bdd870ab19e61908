#!/usr/bin/env bash
# The thread pool under ThreadSanitizer (tools/pool_stress.cpp: concurrent callers, every loop
# kind, nested loops, task exceptions), then the same driver without TSan, which adds a fork.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CXX=${CXX:-g++}
flags=(-std=c++17 -O1 -g -Icpp -pthread)
$CXX "${flags[@]}" -fsanitize=thread tools/pool_stress.cpp cpp/common/parallel.cpp -o "$tmp/pool_stress_tsan"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$tmp/pool_stress_tsan"
$CXX "${flags[@]}" tools/pool_stress.cpp cpp/common/parallel.cpp -o "$tmp/pool_stress"
"$tmp/pool_stress"
