"""ISA selection, NUMKERN_ISA, cpu_info and thread settings."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import numkern
from numkern import _core
from numkern._runtime import ISA_LEVELS

pytestmark = pytest.mark.isa_independent


def _run_python(code, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=True)


def test_cpu_info_reports_features_levels_and_kernels():
    info = numkern.cpu_info()
    assert set(info) == {"features", "detected", "active", "kernels", "arch", "threading", "num_threads", "cpus"}
    assert info["threading"] in ("pool", "none")
    assert info["threading"] == "none" or info["num_threads"] >= 1
    assert info["detected"] in ISA_LEVELS
    assert info["kernels"]["softmax"].endswith(_family_level(info["active"]))
    if info["arch"] == "x86_64":
        assert ISA_LEVELS == ("scalar", "avx2", "avx512")
        assert isinstance(info["features"]["avx2"], bool)
        if info["detected"] == "avx512":
            assert info["features"]["avx512f"] and info["features"]["os_saves_zmm"]
    elif info["arch"] == "aarch64":
        assert ISA_LEVELS == ("scalar", "neon", "neon_dotprod", "neon_i8mm")
        f = info["features"]
        assert f["asimd"] and info["detected"] != "scalar"
        assert (info["detected"] == "neon_i8mm") == (f["asimddp"] and f["i8mm"])
        assert (info["detected"] == "neon") == (not f["asimddp"])


def _family_level(level):
    """The level whose kernels softmax runs at `level`: the NEON levels above plain NEON differ only
    in the quant GEMM, so the other families run their NEON kernels there."""
    return "neon" if level.startswith("neon") else level


@pytest.mark.parametrize("rank", [0, 1])
def test_numkern_isa_env_caps_the_level(rank):
    if rank >= len(ISA_LEVELS) or ISA_LEVELS.index(_core.detected_isa()) < rank:
        pytest.skip("CPU below the requested level")
    level = ISA_LEVELS[rank]
    out = _run_python("import numkern, json; print(json.dumps(numkern.cpu_info()))", NUMKERN_ISA=level)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["active"] == level
    assert info["kernels"]["softmax"].endswith(_family_level(level))


def test_numkern_isa_above_the_cpu_is_clamped_with_a_warning():
    code = (
        "import warnings, numkern\n"
        "from numkern import _runtime\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        f"    got = numkern.set_isa({ISA_LEVELS[-1]!r})\n"
        "print(got, numkern._core.detected_isa(), len(w))\n"
    )
    out = _run_python(code, NUMKERN_ISA="scalar")
    got, detected, warned = out.stdout.split()
    assert got == detected
    assert (warned == "1") == (detected != ISA_LEVELS[-1])


def test_unknown_numkern_isa_value_warns_and_is_ignored():
    out = _run_python("import numkern; print(numkern.get_isa())", NUMKERN_ISA="sse9")
    assert out.stdout.strip() == _core.detected_isa()
    assert "NUMKERN_ISA" in out.stderr


def test_use_isa_restores_the_previous_level():
    before = numkern.get_isa()
    with numkern.use_isa("scalar"):
        assert numkern.get_isa() == "scalar"
        assert numkern.cpu_info()["kernels"]["softmax"].endswith("scalar")
    assert numkern.get_isa() == before


def test_set_isa_rejects_unknown_names():
    with pytest.raises(ValueError, match="ISA level must be one of"):
        numkern.set_isa("sse2")


def test_every_level_gives_the_same_softmax_within_tolerance():
    x = np.random.default_rng(1).standard_normal((50, 999)).astype(np.float32)
    levels = ISA_LEVELS[: ISA_LEVELS.index(_core.detected_isa()) + 1]
    results = []
    for level in levels:
        with numkern.use_isa(level):
            results.append(numkern.softmax(x))
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], rtol=2e-6)


@pytest.mark.isa_independent
def test_set_num_threads_accepts_numpy_integers_and_rejects_huge_counts_with_value_error():
    # Found by fuzzing: numpy.int64(2) was refused, and 2**31 escaped as pybind11's TypeError.
    before = numkern.get_num_threads()
    try:
        numkern.set_num_threads(np.int64(1))
        assert numkern.get_num_threads() == 1
        for bad in (2**31, 2**64, 0, np.int64(-1), True, 2.0):
            with pytest.raises(ValueError, match="positive integer"):
                numkern.set_num_threads(bad)
        assert numkern.get_num_threads() == 1
    finally:
        numkern.set_num_threads(before)
