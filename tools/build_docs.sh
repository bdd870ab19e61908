#!/usr/bin/env bash
# Builds the documentation site into docs/_build/html with warnings as errors and no network access
# (no linkcheck, no intersphinx). Usage: tools/build_docs.sh [--no-install] [extra sphinx-build args]
#   --no-install  use the numkern already importable (e.g. PYTHONPATH=python after tools/dev_build.sh)
# The API pages are generated from the docstrings of the numkern that Python imports, and the
# benchmarks page from docs/bench/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--no-install" ]]; then
  shift
else
  pip install ".[docs]"
fi

rm -rf docs/_build docs/api/generated
python -m sphinx -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html "$@"
echo "docs: built docs/_build/html/index.html"
