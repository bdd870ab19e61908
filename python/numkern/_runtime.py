"""ISA dispatch control and thread settings shared by every kernel family."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator

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

    Examples
    --------
    >>> import numkern
    >>> previous = numkern.get_isa()
    >>> numkern.set_isa("scalar")
    'scalar'
    >>> numkern.get_isa()
    'scalar'
    >>> _ = numkern.set_isa(previous)
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
    """Return the instruction-set level the kernels use now.

    Examples
    --------
    >>> import numkern
    >>> numkern.get_isa() in ("scalar", "avx2", "avx512")
    True
    """
    return _core.active_isa()


@contextlib.contextmanager
def use_isa(name: str) -> Iterator[str]:
    """Context manager: run the block with the ISA level capped at `name`, then restore it.

    The level is process-wide, so this is meant for tests and benchmarks, not for concurrent use.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> with numkern.use_isa("scalar"):
    ...     y = numkern.softmax(np.array([0.0, 1.0]))
    ...     print(numkern.get_isa(), y.round(4))
    scalar [0.2689 0.7311]
    """
    previous = get_isa()
    try:
        yield set_isa(name)
    finally:
        _core.set_isa(previous)


def get_num_threads() -> int:
    """Return how many threads a kernel called from this thread may use now.

    This is the value given to :func:`set_num_threads` (by default ``NUMKERN_NUM_THREADS``, else
    ``OMP_NUM_THREADS``, else the CPUs this process may run on, read at import), further capped by
    the calling thread's own limit, which ``threadpoolctl.threadpool_limits`` sets.

    Examples
    --------
    >>> import numkern
    >>> numkern.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads numkern's kernels use (at least 1), for the whole process.

    Every kernel runs on numkern's own thread pool, whose threads start on first use. The calling
    thread takes part in the work, so ``n`` counts it: ``set_num_threads(1)`` starts no thread.

    Raises
    ------
    ValueError
        If `n` is not a positive integer (Python or NumPy) below 2**31.

    Examples
    --------
    >>> import numkern
    >>> previous = numkern.get_num_threads()
    >>> numkern.set_num_threads(1)
    >>> numkern.get_num_threads()
    1
    >>> numkern.set_num_threads(previous)
    """
    _core.set_num_threads(_check_thread_count(n))


def _check_thread_count(n) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 2**31 - 1:
        raise ValueError(f"number of threads must be a positive integer below 2**31, got {n!r}")
    return int(n)


@contextlib.contextmanager
def thread_limit(n: int) -> Iterator[int]:
    """Context manager: cap the threads of kernels called from *this* thread at `n` in the block.

    Other threads are not affected, so concurrent tasks (Dask's threaded scheduler, a web server's
    request threads) can each run numkern on one thread without racing on the process-wide
    setting. ``threadpoolctl.threadpool_limits`` uses the same per-thread limit.

    Parameters
    ----------
    n : int
        The most threads a kernel called from this thread may use in the block (at least 1).

    Yields
    ------
    int
        The thread count in effect in the block.

    Raises
    ------
    ValueError
        If `n` is not a positive integer below 2**31.

    Examples
    --------
    >>> import numkern
    >>> with numkern.thread_limit(1) as n:
    ...     print(n, numkern.get_num_threads())
    1 1
    """
    previous = _core.get_thread_limit()
    _core.set_thread_limit(_check_thread_count(n))
    try:
        yield _core.get_num_threads()
    finally:
        _core.set_thread_limit(previous)


def cpu_info() -> dict:
    """Describe the CPU and what numkern chose for it.

    Returns
    -------
    dict
        ``features`` (x86-64: CPUID flags and OS register-state support; AArch64: the HWCAP
        flags ``asimd``, ``asimddp``, ``i8mm``, ``fphp``, ``asimdhp``, ``bf16``), ``detected`` (best ISA level
        the CPU supports), ``active`` (level in use, after ``NUMKERN_ISA`` / :func:`set_isa`),
        ``kernels`` (the kernel chosen per family), ``arch`` (the architecture the extension was
        built for), ``threading`` (``"pool"``, numkern's own thread pool, or ``"none"`` for a build
        without threads, which runs every kernel on the calling thread), ``num_threads`` and
        ``cpus`` (the CPUs this process may run on).

    Examples
    --------
    >>> import numkern
    >>> info = numkern.cpu_info()
    >>> sorted(info)
    ['active', 'arch', 'cpus', 'detected', 'features', 'kernels', 'num_threads', 'threading']
    >>> info["active"] == numkern.get_isa()
    True
    """
    return {
        "features": dict(_core.cpu_features()),
        "detected": _core.detected_isa(),
        "active": _core.active_isa(),
        "kernels": dict(_core.kernel_names()),
        "arch": _core.target_arch(),
        "threading": _core.threading(),
        "num_threads": _core.get_num_threads(),
        "cpus": _core.available_cpus(),
    }


def _threads_from_environment() -> int | None:
    """The thread count NUMKERN_NUM_THREADS (else OMP_NUM_THREADS, whose first entry is the outer
    level's) asks for, or None; a value that is not a positive integer is ignored with a warning."""
    for var in ("NUMKERN_NUM_THREADS", "OMP_NUM_THREADS"):
        raw = os.environ.get(var, "").strip()
        if not raw:
            continue
        first = raw.split(",")[0].strip()
        if first.isdigit() and 1 <= int(first) <= 2**31 - 1:
            return int(first)
        warnings.warn(f"numkern: ignoring {var}={raw!r}; expected a positive integer", RuntimeWarning, stacklevel=3)
    return None


def _apply_environment() -> None:
    threads = _threads_from_environment()
    if threads is not None:
        _core.set_num_threads(threads)
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


def _register_threadpoolctl() -> None:
    """Make numkern's pool visible to threadpoolctl (``threadpool_info()`` lists it with user_api
    ``"numkern"``; ``threadpool_limits`` caps it for the calling thread, as it does OpenMP), when
    threadpoolctl is installed and new enough to take third-party controllers (3.5+)."""
    try:
        import threadpoolctl
    except ImportError:
        return
    register = getattr(threadpoolctl, "register", None)
    core_file = getattr(_core, "__file__", None)
    if register is None or core_file is None:
        return
    core_path = os.path.realpath(core_file)

    class NumkernController(threadpoolctl.LibController):
        user_api = "numkern"
        internal_api = "numkern"
        # threadpoolctl matches loaded libraries by file-name prefix; the whole name of numkern's
        # extension keeps another package's "_core" module from matching.
        filename_prefixes = (os.path.basename(core_path).lower(),)
        # Another package's module of the same file name lacks this symbol and is skipped.
        check_symbols = ("numkern_get_num_threads",)

        def _ours(self) -> bool:
            return os.path.realpath(self.filepath) == core_path

        def get_num_threads(self):
            return _core.get_num_threads() if self._ours() else None

        def set_num_threads(self, num_threads):
            if self._ours():
                # At or above the process-wide count the per-thread cap is lifted, so leaving
                # threadpool_limits restores "no cap" rather than a fixed number.
                _core.set_thread_limit(0 if num_threads >= _core.get_max_threads() else int(num_threads))

        def get_version(self):
            from . import __version__

            return __version__

    register(NumkernController)


_register_threadpoolctl()


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
