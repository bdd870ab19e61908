#!/usr/bin/env bash
# Runs import and a test subset on emulated CPUs without AVX-512 (Haswell-v4: AVX2+FMA) and without
# AVX2 (Nehalem: SSE4.2), under Debian's qemu-user-static; an instruction the CPU lacks is a SIGILL
# and fails the run. Uses the installed numkern.
# Usage: tools/emulated_cpus.sh [pytest -k expression]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v qemu-x86_64-static >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq qemu-user-static) >/dev/null
fi
py=$(python -c "import sys, os; print(os.path.realpath(sys.executable))")
# Subprocess-spawning tests are left out: their child would run natively, outside the emulator.
subset=${1:-"(random_slices or special_values or every_axis or strided or use_isa or cpu_info or every_level) and not concurrency"}
for spec in Nehalem:scalar Haswell-v4:avx2; do
  cpu=${spec%%:*}
  expect=${spec##*:}
  echo "== qemu -cpu $cpu (expect level $expect)"
  got=$(qemu-x86_64-static -cpu "$cpu" "$py" -c "import numkern; print(numkern.cpu_info()['detected'])" 2>/dev/null)
  if [ "$got" != "$expect" ]; then
    echo "detected level '$got' on $cpu, expected '$expect'" >&2
    exit 1
  fi
  qemu-x86_64-static -cpu "$cpu" "$py" -m pytest -p no:cacheprovider -q -x tests -k "$subset" 2> >(grep -v "TCG doesn't support" >&2)
done
echo "emulated CPUs: no SIGILL, tests passed"
