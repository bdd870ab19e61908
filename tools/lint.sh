#!/usr/bin/env bash
# Fails when a linter flags something or a formatter would change a file: ruff (lint), ruff format,
# clang-format over cpp/ and bench/, and mypy over python/numkern. The tools are the versions pinned
# in pyproject.toml's `lint` extra, installed here unless --no-install is given.
# To apply the formatters instead of checking them: tools/format.sh.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" != "--no-install" ]]; then
  # Only the pinned tools, read from pyproject.toml (installing ".[lint]" would also rebuild numkern).
  python - <<'PY' > /tmp/numkern-lint-requirements.txt || exit 1
import sys
try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["lint"]))
PY
  pip install -q -r /tmp/numkern-lint-requirements.txt || exit 1
fi

status=0
run() {
  echo "lint: $*"
  if ! "$@"; then
    echo "lint: FAILED: $*"
    status=1
  fi
}

run ruff check .
run ruff format --check .
mapfile -t cpp_files < <(git ls-files 'cpp/*.h' 'cpp/*.cpp' 'cpp/*.inl' 'bench/*.h' 'bench/*.cc' 'bench/*.cpp')
run clang-format --dry-run -Werror "${cpp_files[@]}"
run mypy

if [[ $status -eq 0 ]]; then echo "lint: all clean"; fi
exit $status
