"""Runs every kernel test once per ISA level this machine has (scalar, AVX2, AVX-512), so the
lower paths are tested on an AVX-512 machine too."""

import numpy as np
import pytest

import numkern
from numkern import _core

_ORDER = ("scalar", "avx2", "avx512")
AVAILABLE_ISAS = _ORDER[: _ORDER.index(_core.detected_isa()) + 1]


def pytest_generate_tests(metafunc):
    if "isa" in metafunc.fixturenames:
        independent = metafunc.definition.get_closest_marker("isa_independent") is not None
        metafunc.parametrize("isa", [None] if independent else AVAILABLE_ISAS, indirect=True)


@pytest.fixture(autouse=True)
def isa(request):
    """The ISA level the test runs at (None for tests that call no kernel)."""
    level = getattr(request, "param", None)
    if level is None:
        yield None
        return
    with numkern.use_isa(level):
        assert numkern.get_isa() == level
        yield level


@pytest.fixture
def rng():
    return np.random.default_rng(20261129)
