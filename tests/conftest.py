"""Runs every kernel test once per ISA level this machine has (x86-64: scalar, AVX2, AVX-512;
AArch64: scalar, NEON, NEON+dotprod, NEON+i8mm), so the lower paths are tested on the best machine too."""

import os

import numpy as np
import pytest
from hypothesis import settings

import numkern
from numkern import _core

_ORDER = tuple(_core.isa_levels())  # the build architecture's levels, lowest first
AVAILABLE_ISAS = _ORDER[: _ORDER.index(_core.detected_isa()) + 1]
# NUMKERN_TEST_ISAS=neon,neon_i8mm limits the levels the kernel tests run at (for slow emulated runs,
# where levels that share a family's kernels need not run its tests twice); a level the machine
# lacks is an error, so a typo cannot silently skip everything.
if os.environ.get("NUMKERN_TEST_ISAS"):
    _wanted = tuple(v.strip() for v in os.environ["NUMKERN_TEST_ISAS"].split(",") if v.strip())
    _missing = [v for v in _wanted if v not in AVAILABLE_ISAS]
    if _missing or not _wanted:
        raise pytest.UsageError(
            f"NUMKERN_TEST_ISAS={os.environ['NUMKERN_TEST_ISAS']!r}: "
            f"levels {_missing} not among this machine's {AVAILABLE_ISAS}"
        )
    AVAILABLE_ISAS = tuple(v for v in AVAILABLE_ISAS if v in _wanted)


# Fuzz profiles (max_examples per fuzz test and ISA level; a test may scale it for costly bodies):
# the default keeps CI short; --fuzz-long runs >= 10^5 examples over the fuzz suite. The count of
# examples actually run is printed in the terminal summary.
settings.register_profile("fuzz-ci", max_examples=40, deadline=None)
settings.register_profile("fuzz-long", max_examples=2000, deadline=None)


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true", help="run the fuzz tests with >= 10^5 examples in total")


def pytest_configure(config):
    config.fuzz_profile = "fuzz-long" if config.getoption("--fuzz-long") else "fuzz-ci"


def pytest_terminal_summary(terminalreporter):
    import _fuzz_strategies

    total = _fuzz_strategies.EXAMPLES["total"]
    if total:
        profile = terminalreporter.config.fuzz_profile
        terminalreporter.write_sep("-", f"hypothesis fuzz examples run: {total} (profile {profile})")
        if terminalreporter.verbosity > 0:
            for name, c in sorted(_fuzz_strategies.TALLIES.items()):
                terminalreporter.write_line(
                    f"  {name}: {c['run']} run, {c['checked']} compared with the "
                    f"reference, {c['raised']} raised TypeError/ValueError"
                )


@pytest.fixture
def fuzz_settings(request):
    """The hypothesis settings of the active fuzz profile (fuzz-ci, or fuzz-long with --fuzz-long)."""
    return settings.get_profile(request.config.fuzz_profile)


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
