"""ISA dispatch control and thread settings shared by every kernel family."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Iterator

import numpy as np

from . import _core

# The levels of the architecture the extension was built for, lowest first: ("scalar", "avx2",
# "avx512") on x86-64, ("scalar", "neon", "neon_dotprod", "neon_i8mm") on AArch64, ("scalar",)
# elsewhere.
ISA_LEVELS = tuple(_core.isa_levels())
_isa_lock = threading.Lock()


def _check_level(name: str) -> str:
    if not isinstance(name, str) or name not in ISA_LEVELS:
        raise ValueError(f"ISA level must be one of {ISA_LEVELS}, got {name!r}")
    return name


def set_isa(name: str) -> str:
    """Cap the instruction-set level every kernel uses.

    Parameters
    ----------
    name : str
        The highest level to use, one of ``ISA_LEVELS`` (x86-64: ``"scalar"``, ``"avx2"``,
        ``"avx512"``; AArch64: ``"scalar"``, ``"neon"``, ``"neon_dotprod"``, ``"neon_i8mm"``). A
        level above what this CPU supports is clamped to the best supported one, with a
        ``RuntimeWarning``.

    Returns
    -------
    str
        The level now active.

    Raises
    ------
    ValueError
        If `name` is not a known level.
    """
    _check_level(name)
    with _isa_lock:
        active = _core.set_isa(name)
    if active != name:
        warnings.warn(
            f"numkern: ISA level {name!r} is not supported by this CPU; using {active!r}",
            RuntimeWarning,
            stacklevel=2,
        )
    return active


def get_isa() -> str:
    """Return the instruction-set level the kernels use now."""
    return _core.active_isa()


@contextlib.contextmanager
def use_isa(name: str) -> Iterator[str]:
    """Context manager: run the block with the ISA level capped at `name`, then restore it.

    The level is process-wide, so this is meant for tests and benchmarks, not for concurrent use.
    """
    previous = get_isa()
    try:
        yield set_isa(name)
    finally:
        _core.set_isa(previous)


def get_num_threads() -> int:
    """Return how many threads a kernel may use now.

    This is the value given to :func:`set_num_threads` (by default the OpenMP limit at import),
    further capped by the calling thread's OpenMP limit, so ``threadpoolctl.threadpool_limits``
    also limits numkern.
    """
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads numkern's kernels use (at least 1).

    Raises
    ------
    ValueError
        If `n` is not a positive integer (Python or NumPy) below 2**31.
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 2**31 - 1:
        raise ValueError(f"number of threads must be a positive integer below 2**31, got {n!r}")
    _core.set_num_threads(int(n))


def cpu_info() -> dict:
    """Describe the CPU and what numkern chose for it.

    Returns
    -------
    dict
        ``features`` (x86-64: CPUID flags and OS register-state support; AArch64: the HWCAP
        flags ``asimd``, ``asimddp``, ``i8mm``, ``fphp``, ``asimdhp``, ``bf16``), ``detected`` (best ISA level
        the CPU supports), ``active`` (level in use, after ``NUMKERN_ISA`` / :func:`set_isa`),
        ``kernels`` (the kernel chosen per family), ``arch`` (the architecture the extension was
        built for), ``threading`` (``"openmp"``, or ``"none"`` for a build without a threading
        runtime, which then runs every kernel on the calling thread) and ``num_threads``.
    """
    return {
        "features": dict(_core.cpu_features()),
        "detected": _core.detected_isa(),
        "active": _core.active_isa(),
        "kernels": dict(_core.kernel_names()),
        "arch": _core.target_arch(),
        "threading": _core.threading(),
        "num_threads": _core.get_num_threads(),
    }


def _apply_environment() -> None:
    requested = os.environ.get("NUMKERN_ISA")
    if requested:
        requested = requested.strip().lower()
        if requested not in ISA_LEVELS:
            warnings.warn(
                f"numkern: ignoring NUMKERN_ISA={requested!r}; expected one of {ISA_LEVELS}",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        set_isa(requested)


_apply_environment()


_THREADPOOL_CONTROLLER = None


def limit_threads(user_api: str, limit: int = 1):
    """Context capping the thread pools of ``user_api`` ("blas" or "openmp") at ``limit`` threads
    through threadpoolctl (its controller is built once: scanning the loaded libraries is slow);
    a no-op context when threadpoolctl is not installed (it is an optional dependency)."""
    global _THREADPOOL_CONTROLLER
    try:
        if _THREADPOOL_CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _THREADPOOL_CONTROLLER = ThreadpoolController()
        return _THREADPOOL_CONTROLLER.limit(limits=limit, user_api=user_api)
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
