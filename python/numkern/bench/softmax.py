"""Softmax peers: NumPy reference, scipy.special.softmax, torch.softmax and its backward kernels, and
the memory bound."""

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

    def two_passes_new():
        _core.bandwidth_read(x)
        _core.convert(np.empty_like(out), x)

    def reload_passes():  # max (read x), exp stored (read x, write y), scaled (read y, write y)
        _core.bandwidth_read(x)
        _core.convert(out, x)
        _core.convert(out, x)

    def recompute_passes():  # max (read x), sum (read x), exp scaled (read x, write y)
        _core.bandwidth_read(x)
        _core.bandwidth_read(x)
        _core.convert(out, x)

    return Case(
        "softmax",
        name,
        impls,
        reference="numkern auto",
        bound=bound,
        threaded_bound=two_passes if with_bound else None,
        threaded_bound_new=two_passes_new if with_bound else None,
        threaded_bound_of=(
            {"numkern three_pass_reload": reload_passes, "numkern three_pass_recompute": recompute_passes}
            if with_bound and with_algorithms
            else {}
        ),
    )


def _backward_case(name, shape):
    """softmax_backward and log_softmax_backward against torch's backward kernels and NumPy."""
    rng = np.random.default_rng(0)
    y = numkern.softmax(rng.standard_normal(shape, dtype=np.float32))
    ly = numkern.log_softmax(rng.standard_normal(shape, dtype=np.float32))
    dy = rng.standard_normal(shape, dtype=np.float32)
    out = np.empty_like(y)
    out.fill(0)
    threads = numkern.get_num_threads()
    impls: dict[str, Callable[[], object]] = {
        "numkern softmax_backward": lambda: numkern.softmax_backward(y, dy, out=out),
        "numkern log_softmax_backward": lambda: numkern.log_softmax_backward(ly, dy, out=out),
        "numkern softmax_backward (new output)": lambda: numkern.softmax_backward(y, dy),
    }
    torch = torch_or_none(threads)
    if torch is not None:
        ty, tly, tdy = torch.from_numpy(y), torch.from_numpy(ly), torch.from_numpy(dy)
        impls["torch._softmax_backward_data"] = lambda: torch._softmax_backward_data(tdy, ty, -1, torch.float32)
        impls["torch._log_softmax_backward_data"] = lambda: torch._log_softmax_backward_data(
            tdy, tly, -1, torch.float32
        )

    def numpy_backward():
        np.multiply(y, dy, out=out)
        s = out.sum(axis=-1, keepdims=True)
        np.subtract(dy, s, out=out)
        np.multiply(out, y, out=out)

    impls["numpy (y * (dy - sum(y * dy)))"] = numpy_backward

    def two_passes():  # read y and dy; read them again and write dx
        y.sum()
        dy.sum()
        np.add(y, dy, out=out)

    impls["bandwidth bound (2 reads, then 2 reads + write)"] = two_passes

    def threaded():
        _core.bandwidth_read(y)
        _core.bandwidth_read(dy)
        _core.bandwidth_read(dy)
        _core.convert(out, y)

    def threaded_new():
        _core.bandwidth_read(y)
        _core.bandwidth_read(dy)
        _core.bandwidth_read(dy)
        _core.convert(np.empty_like(out), y)

    return Case(
        "softmax",
        name,
        impls,
        reference="numkern softmax_backward",
        bound=("bandwidth bound (2 reads, then 2 reads + write)",),
        threaded_bound=threaded,
        threaded_bound_new=threaded_new,
    )


def _masked_case(name, shape):
    """where= (a padding mask: each row keeps a prefix) against the unmasked call and torch."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    keep = np.arange(shape[-1]) < rng.integers(1, shape[-1] + 1, size=(shape[0], 1))
    out = np.empty_like(x)
    out.fill(0)
    threads = numkern.get_num_threads()
    impls: dict[str, Callable[[], object]] = {
        "numkern softmax(where=mask)": lambda: numkern.softmax(x, out=out, where=keep),
        "numkern softmax (no mask)": lambda: numkern.softmax(x, out=out),
    }
    torch = torch_or_none(threads)
    if torch is not None:
        tx, tkeep, tout = torch.from_numpy(x), torch.from_numpy(~keep), torch.from_numpy(out)
        filled = tx.masked_fill(tkeep, float("-inf"))
        impls["torch masked_fill(-inf) + softmax"] = lambda: torch.softmax(
            tx.masked_fill(tkeep, float("-inf")), dim=-1, out=tout
        )
        impls["torch.softmax on a pre-filled input"] = lambda: torch.softmax(filled, dim=-1, out=tout)

    # A row fits in cache, so the two passes read x from memory once: one read and one write of the
    # array, and the masked call reads the mask's bytes as well.
    def one_pass():
        _core.convert(out, x)

    def one_pass_and_mask():
        _core.bandwidth_read(keep)
        _core.convert(out, x)

    return Case(
        "softmax",
        name,
        impls,
        reference="numkern softmax(where=mask)",
        threaded_bound=one_pass,
        threaded_bound_of={"numkern softmax(where=mask)": one_pass_and_mask},
    )


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            _case("1-D float32 2^24", (1 << 24,), True, True, quick),
            _case("rows 256 x 32000 float32", (256, 32000), False, True, quick),
            _case("rows 16384 x 128 float32", (16384, 128), False, False, quick),
            _case("in cache: 4096 float32", (4096,), True, False, quick),
            _backward_case("backward: 1-D float32 2^24", (1 << 24,)),
            _backward_case("backward: rows 1024 x 32000 float32", (1024, 32000)),
            _masked_case("masked: rows 1024 x 32000 float32", (1024, 32000)),
        ]
    return [
        _case("1-D float32 2^26", (1 << 26,), True, True, quick),
        _case("1-D float32 2^20", (1 << 20,), True, True, quick),
        _case("1-D float32 2^16", (1 << 16,), True, False, quick),
        _case("rows 1024 x 32000 float32", (1024, 32000), True, True, quick),
        _case("rows 65536 x 128 float32", (65536, 128), True, True, quick),
        _case("in cache: 4096 float32", (4096,), True, False, quick),
        _case("in cache: 256 float32", (256,), True, False, quick),
        _backward_case("backward: 1-D float32 2^24", (1 << 24,)),
        _backward_case("backward: rows 1024 x 32000 float32", (1024, 32000)),
        _masked_case("masked: rows 1024 x 32000 float32", (1024, 32000)),
        _masked_case("masked: rows 16384 x 128 float32", (16384, 128)),
    ]
