"""Softmax peers: NumPy reference, scipy.special.softmax, torch.softmax, and the memory bound."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

import numkern
from numkern import _core

from ._harness import Case
from ._peers import scipy_special_or_none, torch_or_none


def _sum_and_copy(x: np.ndarray, out: np.ndarray) -> None:
    """One read pass plus one read-write pass over the same bytes: what two passes must move."""
    x.sum()
    np.copyto(out, x)


def _numpy_softmax(x, out):
    m = x.max(axis=-1, keepdims=True)
    np.subtract(x, m, out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def _case(name, shape, with_algorithms, with_bound, quick):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    out = np.empty_like(x)
    out.fill(0)  # fault the pages in once, as every peer below writes into reused memory too
    threads = numkern.get_num_threads()
    impls: dict[str, Callable[[], object]] = {"numkern auto": lambda: numkern.softmax(x, out=out)}
    if with_algorithms:
        for alg in ("two_pass", "three_pass_reload", "three_pass_recompute"):
            impls[f"numkern {alg}"] = functools.partial(numkern.softmax, x, out=out, algorithm=alg)
    impls["numkern auto (new output)"] = lambda: numkern.softmax(x)
    sp = scipy_special_or_none()
    if sp is not None:
        impls["scipy.special.softmax"] = lambda: sp.softmax(x, axis=-1)
    torch = torch_or_none(threads)
    if torch is not None:
        tx = torch.from_numpy(x)
        tout = torch.from_numpy(out)
        impls["torch.softmax (out=)"] = lambda: torch.softmax(tx, dim=-1, out=tout)
        impls["torch.softmax"] = lambda: torch.softmax(tx, dim=-1)
    impls["numpy (max, exp, sum, div)"] = lambda: _numpy_softmax(x, out)
    bound: tuple[str, ...] = ()
    if with_bound:
        # One read pass plus one read-write pass over the same bytes: what two passes must move.
        impls["bandwidth bound (sum + copyto)"] = lambda: _sum_and_copy(x, out)
        bound = ("bandwidth bound (sum + copyto)",)

    def two_passes():  # the traffic of a two-pass softmax: one read, then a read and a write
        _core.bandwidth_read(x)
        _core.convert(out, x)

    threaded = two_passes if with_bound else None
    return Case("softmax", name, impls, reference="numkern auto", bound=bound, threaded_bound=threaded)


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            _case("1-D float32 2^24", (1 << 24,), True, True, quick),
            _case("rows 256 x 32000 float32", (256, 32000), False, True, quick),
            _case("rows 16384 x 128 float32", (16384, 128), False, False, quick),
            _case("in cache: 4096 float32", (4096,), True, False, quick),
        ]
    return [
        _case("1-D float32 2^26", (1 << 26,), True, True, quick),
        _case("1-D float32 2^20", (1 << 20,), True, True, quick),
        _case("1-D float32 2^16", (1 << 16,), True, False, quick),
        _case("rows 1024 x 32000 float32", (1024, 32000), True, True, quick),
        _case("rows 65536 x 128 float32", (65536, 128), True, True, quick),
        _case("in cache: 4096 float32", (4096,), True, False, quick),
        _case("in cache: 256 float32", (256,), True, False, quick),
    ]
