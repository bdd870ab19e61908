#!/usr/bin/env bash
# An aarch64 wheel from the cross build of tools/aarch64_emulated.sh (run its setup and build steps
# first), installed into a fresh virtual environment of the emulated arm64 Python and tested there.
#
# The wheel is assembled rather than built by pip: the package's Python files, the cross-compiled
# _core module and a dist-info (METADATA from pyproject.toml's fields, WHEEL with the tag
# cp311-cp311-linux_aarch64), zipped with RECORD by `wheel pack`. It links libgomp and libstdc++
# dynamically, like an unrepaired wheel; release wheels come from cibuildwheel (pyproject.toml),
# whose auditwheel step bundles them into a manylinux_2_28 wheel.
#
# The fresh environment: `python3.11 -m venv --copies --without-pip` under qemu, then pip run from
# its own wheel with --no-index, from a directory holding only this wheel and PyPI's aarch64 wheels
# of NumPy, SciPy, pytest and hypothesis (what the softmax tests import) and their dependencies.
# Then a README-style selection: -k softmax.
# Usage: tools/aarch64_wheel.sh [pytest -k expression]
set -euo pipefail
cd "$(dirname "$0")/.."
selection=${1:-"softmax and not 2_pow and not fuzz and not subprocess"}
emu=$PWD/build/aarch64-emu
root=$emu/sysroot
so=$(ls "$emu"/build/_core.cpython-311-aarch64-linux-gnu.so)
out=$emu/wheel
rm -rf "$out"
mkdir -p "$out/dist" "$out/wheels"

version=$(python -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])")
tree=$out/numkern-$version
mkdir -p "$tree/numkern-$version.dist-info"
cp -r python/numkern "$tree/numkern"
find "$tree/numkern" \( -name '__pycache__' -o -name '_core*.so' \) -prune -exec rm -rf {} +
cp "$so" "$tree/numkern/"
python - "$tree/numkern-$version.dist-info" <<'EOF'
import pathlib, sys, tomllib
meta = tomllib.load(open("pyproject.toml", "rb"))["project"]
d = pathlib.Path(sys.argv[1])
lines = ["Metadata-Version: 2.1", f"Name: {meta['name']}", f"Version: {meta['version']}",
         f"Summary: {meta['description']}", f"Requires-Python: {meta['requires-python']}"]
lines += [f"Requires-Dist: {r}" for r in meta["dependencies"]]
d.joinpath("METADATA").write_text("\n".join(lines) + "\n")
d.joinpath("WHEEL").write_text("Wheel-Version: 1.0\nGenerator: numkern tools/aarch64_wheel.sh\n"
                               "Root-Is-Purelib: false\nTag: cp311-cp311-linux_aarch64\n")
scripts = meta.get("scripts", {})
if scripts:
    d.joinpath("entry_points.txt").write_text(
        "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items()))
EOF
python -c "import wheel" 2>/dev/null || python -m pip install -q wheel
python -m wheel pack "$tree" -d "$out/dist" >/dev/null
whl=$(ls "$out"/dist/numkern-*.whl)
echo "wheel: $(basename "$whl") ($(du -k "$whl" | cut -f1) KiB)"

# Only these wheels are visible to the installer (--no-index): the package and the test dependencies.
cp "$whl" "$out/wheels/"
python -m pip download -q -d "$out/wheels" --platform manylinux2014_aarch64 --only-binary=:all: \
  --python-version 3.11 --implementation cp numpy scipy pytest hypothesis
python -m pip download -q -d "$out/pip" --no-deps pip
pipwhl=$(ls "$out"/pip/pip-*.whl)

venv=$out/venv
qemu-aarch64-static -L "$root" "$root/usr/bin/python3.11" -m venv --copies --without-pip "$venv"
vpy() { QEMU_CPU=${QEMU_CPU:-max} qemu-aarch64-static -L "$root" "$venv/bin/python3.11" "$@"; }
vpy "$pipwhl/pip" install -q --no-index --no-cache-dir --find-links "$out/wheels" numkern scipy pytest hypothesis
vpy -m pip --version 2>/dev/null || true
vpy -c "import sys, numkern; print(sys.prefix, numkern.__file__); print(numkern.cpu_info())"
# The installed package, not the source tree: run from an empty directory with the tests copied.
mkdir -p "$out/run"
cp -r tests "$out/run/tests"
cp pyproject.toml "$out/run/"
# At the level the emulated CPU gives (NUMKERN_TEST_ISAS, default neon_i8mm: -cpu max), the level a
# user of this wheel gets; tools/aarch64_emulated.sh covers the others.
(cd "$out/run" && NUMKERN_TEST_ISAS=${NUMKERN_TEST_ISAS:-neon_i8mm} vpy -m pytest -p no:cacheprovider -x \
  tests/test_softmax.py -k "$selection")
echo "aarch64 wheel: installed into a fresh emulated environment, selection passed"
