#!/usr/bin/env bash
# Runs the tests whose result could depend on the BLAS kernel NumPy uses, once per OpenBLAS core
# type, against the installed numkern (CI runs `pip install .` first; this script sets no
# PYTHONPATH). NumPy's bundled OpenBLAS otherwise picks one kernel for the CPU, and a test whose
# reference or assertion depends on the last bits of a BLAS product passes on one machine and fails
# on another (or under MKL, Accelerate, BLIS). Core types: Haswell (AVX2 + FMA), SkylakeX
# (AVX-512) and Sandybridge (AVX without FMA: different rounding). Zen is not run: NumPy's
# scipy-openblas maps it to the Haswell kernels (threadpoolctl reports "Haswell"). A core type the
# CPU cannot run falls back to an older kernel; the line before each run names the active one.
#
# The tests, and why each is here:
#   tests/test_dp_exact.py                kernel/distance sums, random-feature projections and the
#                                         fixed-point feature sums against references formed
#                                         without BLAS (all of it: a few seconds)
#   tests/test_lstsq.py (-k below)        numkern.lstsq runs LAPACK/BLAS for its small SVDs and
#                                         products; multi-column b vs column by column, accuracy
#                                         of "precondition" against exact solutions, LAPACK references
#   tests/test_dask.py (-k below)         numkern.dask.lstsq is bit-identical to numkern.lstsq: both
#                                         make the same BLAS calls on the same inputs
#   tests/test_fuzz_runtime_nn.py (-k)    nn.Linear's float path is a BLAS product
#
# Runtime: about 15 s per core type (one pytest start included), 45 s in all on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=(tests/test_dp_exact.py tests/test_lstsq.py tests/test_dask.py tests/test_fuzz_runtime_nn.py)
SELECT="test_dp_exact"
SELECT+=" or (test_lstsq and (multiple_right_hand_sides or precondition or weights or auto_chooses"
SELECT+=" or float32 or lapack or exact_reference))"
SELECT+=" or (test_dask and lstsq_is_bit_identical)"
SELECT+=" or (test_fuzz_runtime_nn and nn_linear)"

for core in Haswell SkylakeX Sandybridge; do
  active=$(OPENBLAS_CORETYPE=$core python -c \
    "import numpy, threadpoolctl; print(' '.join(str(i.get('architecture')) for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas') or 'no OpenBLAS')")
  echo "== OPENBLAS_CORETYPE=$core (active: $active)"
  OPENBLAS_CORETYPE=$core python -m pytest -p no:cacheprovider -q -x "${FILES[@]}" -k "$SELECT"
done
