"""Norm peers: torch.nn.functional.layer_norm and rms_norm, numkern's own L2 layer_norm and RMS norm,
the fused residual add against an add and a norm, and the memory bound (one read and one write of
the array, np.copyto; two of each with the residual), all in one process."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import numkern
from numkern import _core

from ._harness import Case
from ._peers import torch_or_none


def _numpy_l1(x, out):
    d = x - x.mean(axis=-1, keepdims=True)
    np.divide(d, np.abs(d).mean(axis=-1, keepdims=True) + 1e-5, out=out)
    return out


def _one_thread(fn):
    """fn run with numkern limited to one thread (on a shared machine, a second thread that the OS
    does not schedule in time makes a threaded call wait for it)."""

    def run():
        with numkern.thread_limit(1):  # scoped to this call: no process-wide setting changes
            return fn()

    return run


def _case(shape, quick):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    out = np.zeros_like(x)  # faulted in once: every implementation below writes reused memory
    q = rng.integers(-128, 128, size=shape, dtype=np.int8)
    qout = np.zeros_like(q)
    n = shape[-1]
    w = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    threads = numkern.get_num_threads()
    impls: dict[str, Callable[[], object]] = {
        "numkern l1_norm f32 (out=)": lambda: numkern.l1_norm(x, out=out),
        "numkern layer_norm f32 (out=)": lambda: numkern.layer_norm(x, out=out),
        "numkern l1_norm f32 w,b (out=)": lambda: numkern.l1_norm(x, weight=w, bias=b, out=out),
        "numkern l1_norm f32 (new output)": lambda: numkern.l1_norm(x),
        "numkern l1_norm_int8 (out=)": lambda: numkern.l1_norm_int8(q, out=qout),
        "numkern rms_norm f32 w (out=)": lambda: numkern.rms_norm(x, weight=w, out=out),
    }
    torch = torch_or_none(threads)
    if torch is not None:
        tx, tout = torch.from_numpy(x), torch.from_numpy(out)
        tw, tb = torch.from_numpy(w), torch.from_numpy(b)
        F = torch.nn.functional
        impls["torch layer_norm f32"] = lambda: F.layer_norm(tx, (n,), eps=1e-5)
        impls["torch layer_norm f32 w,b"] = lambda: F.layer_norm(tx, (n,), tw, tb, eps=1e-5)
        impls["torch layer_norm f32 (copy to out)"] = lambda: tout.copy_(F.layer_norm(tx, (n,), eps=1e-5))
        impls["torch rms_norm f32 w"] = lambda: F.rms_norm(tx, (n,), tw, eps=1e-6)
    if not quick:
        impls["numpy l1 (reference)"] = lambda: _numpy_l1(x, out)
    impls["bandwidth bound f32 (copyto)"] = lambda: np.copyto(out, x)
    impls["bandwidth bound int8 (copyto)"] = lambda: np.copyto(qout, q)
    bound: tuple[str, ...] = ("bandwidth bound f32 (copyto)", "bandwidth bound int8 (copyto)")
    if torch is not None:  # a threaded copy: one thread may not saturate the memory bus
        impls["bandwidth bound f32 (torch copy_, threaded)"] = lambda: tout.copy_(tx)
        bound += ("bandwidth bound f32 (torch copy_, threaded)",)
    return Case(
        "norm",
        f"rows {shape[0]} x {shape[1]}",
        impls,
        reference="numkern l1_norm f32 (out=)",
        bound=bound,
        threaded_bound=lambda: _core.convert(out, x),
        threaded_bound_new=lambda: _core.convert(np.empty_like(out), x),
        note="bounds: one read and one write of the array (what any norm must move); the lower one counts",
    )


def one_thread_case(shape):
    """numkern on one thread against NumPy's (one-thread) copy, in rounds of their own: a threaded
    call just before leaves a pool worker spinning that a one-thread call would compete with."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    out = np.zeros_like(x)
    q = rng.integers(-128, 128, size=shape, dtype=np.int8)
    qout = np.zeros_like(q)
    impls: dict[str, Callable[[], object]] = {
        "numkern l1_norm f32 (out=, 1 thread)": _one_thread(lambda: numkern.l1_norm(x, out=out)),
        "numkern layer_norm f32 (out=, 1 thread)": _one_thread(lambda: numkern.layer_norm(x, out=out)),
        "numkern l1_norm_int8 (out=, 1 thread)": _one_thread(lambda: numkern.l1_norm_int8(q, out=qout)),
        "bandwidth bound f32 (copyto)": lambda: np.copyto(out, x),
        "bandwidth bound int8 (copyto)": lambda: np.copyto(qout, q),
    }
    return Case(
        "norm",
        f"one thread rows {shape[0]} x {shape[1]}",
        impls,
        reference="numkern l1_norm f32 (out=, 1 thread)",
        bound=("bandwidth bound f32 (copyto)", "bandwidth bound int8 (copyto)"),
    )


def backward_case(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    out = np.zeros_like(x)
    n = shape[-1]
    impls: dict[str, Callable[[], object]] = {
        "numkern l1_norm_backward f32": lambda: numkern.l1_norm_backward(dy, x, out=out),
        "numkern layer_norm_backward f32": lambda: numkern.layer_norm_backward(dy, x, out=out),
    }
    torch = torch_or_none(numkern.get_num_threads())
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_(True)
        tdy = torch.from_numpy(dy)
        tw = torch.ones(n, requires_grad=True)
        tb = torch.zeros(n, requires_grad=True)

        def torch_bwd():
            y = torch.nn.functional.layer_norm(tx, (n,), tw, tb, eps=1e-5)
            return torch.autograd.grad(y, (tx, tw, tb), tdy)

        impls["torch layer_norm fwd+bwd f32"] = torch_bwd
    return Case("norm", f"backward rows {shape[0]} x {shape[1]}", impls, reference="numkern l1_norm_backward f32")


def residual_case(shape):
    """The fused residual add, (norm(x + r), x + r), against an add and a norm (two calls)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape, dtype=np.float32)
    r = rng.standard_normal(shape, dtype=np.float32)
    out, h = np.zeros_like(x), np.zeros_like(x)
    n = shape[-1]
    w = rng.standard_normal(n).astype(np.float32)

    def separate(norm, **kw):
        def run():
            np.add(x, r, out=h)
            return norm(h, out=out, **kw)

        return run

    impls: dict[str, Callable[[], object]] = {
        "numkern layer_norm f32 residual= (out=)": lambda: numkern.layer_norm(x, residual=r, out=(out, h)),
        "numkern rms_norm f32 w residual= (out=)": lambda: numkern.rms_norm(x, weight=w, residual=r, out=(out, h)),
        "np.add + numkern layer_norm (out=)": separate(numkern.layer_norm),
        "np.add + numkern rms_norm w (out=)": separate(numkern.rms_norm, weight=w),
    }
    torch = torch_or_none(numkern.get_num_threads())
    if torch is not None:
        tx, tr, tout, th = (torch.from_numpy(a) for a in (x, r, out, h))
        tw = torch.from_numpy(w)
        F = torch.nn.functional

        def torch_add_then(norm):
            def run():
                torch.add(tx, tr, out=th)  # threaded, into reused memory
                return norm(th)

            return run

        impls["torch add + layer_norm f32"] = torch_add_then(lambda t: F.layer_norm(t, (n,), eps=1e-5))
        impls["torch add + rms_norm f32 w"] = torch_add_then(lambda t: F.rms_norm(t, (n,), tw, eps=1e-6))
        # The best two-call alternative: a threaded add, then numkern's norm.
        impls["torch add + numkern layer_norm (out=)"] = torch_add_then(lambda t: numkern.layer_norm(h, out=out))

    def two_copies():
        np.copyto(out, x)
        np.copyto(h, r)

    impls["bandwidth bound f32 (2 x copyto)"] = two_copies

    def threaded_bound():
        _core.convert(out, x)
        _core.convert(h, r)

    return Case(
        "norm",
        f"residual rows {shape[0]} x {shape[1]}",
        impls,
        reference="numkern layer_norm f32 residual= (out=)",
        bound=("bandwidth bound f32 (2 x copyto)",),
        threaded_bound=threaded_bound,
        note="fused: two reads and two writes of the array; an add then a norm: three reads and two writes",
    )


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            _case((2048, 4096), quick),
            _case((8192, 4096), quick),
            one_thread_case((8192, 4096)),
            residual_case((8192, 4096)),
        ]
    return [
        _case((8192, 4096), quick),
        one_thread_case((8192, 4096)),
        _case((65536, 256), quick),
        _case((1024, 32768), quick),
        backward_case((8192, 4096)),
        residual_case((8192, 4096)),
    ]
