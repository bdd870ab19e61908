"""What every numkern.dask function shares: one kernel thread per Dask thread, and tree merges."""

from __future__ import annotations

import functools

import dask
import numpy as np

from .._runtime import thread_limit


def _one_kernel_thread():
    """Caps the kernels called from this thread at one thread, so N Dask threads run N kernel
    threads, not N x cores. The limit is per thread, so concurrent tasks do not race on it."""
    return thread_limit(1)


def task(fn):
    """Decorates a function run inside Dask tasks: one kernel thread while it runs."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with _one_kernel_thread():
            return fn(*args, **kwargs)

    return run


def aligned(a, dtype=None, contiguous=True):
    """`a` as an aligned (and by default C-contiguous) ndarray: arrays that come over the network to
    a worker can start at any byte offset of a message frame, and the kernels need aligned data."""
    return np.require(a, dtype=dtype, requirements=("C", "A") if contiguous else ("A",))


def aligned_plan(plan):
    """A copy of a plan object whose ndarray attributes are aligned (see `aligned`)."""
    clone = object.__new__(type(plan))
    clone.__dict__.update({k: aligned(v) if isinstance(v, np.ndarray) else v for k, v in plan.__dict__.items()})
    return clone


def tree_reduce(parts, merge, split_every):
    """Merges a list of delayed partial results with `merge(*parts)` in a tree of fan-in
    `split_every` (adjacent parts together, so an order-sensitive merge sees them in order)."""
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every!r}")
    parts = list(parts)
    if not parts:
        raise ValueError("nothing to reduce")
    while len(parts) > 1:
        groups = [parts[i : i + split_every] for i in range(0, len(parts), split_every)]
        parts = [g[0] if len(g) == 1 else dask.delayed(merge, pure=True)(*g) for g in groups]
    return parts[0]
