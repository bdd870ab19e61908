"""Quant peers: OpenBLAS sgemm (np.matmul float32), torch._int_mm (oneDNN s8 GEMM), bf16 torch.matmul,
and a NumPy per-channel quantizer; ratios in one process, interleaved."""

from __future__ import annotations

import contextlib

import numpy as np

import numkern
from numkern import _core
from numkern import quant as Q

from ._harness import Case
from ._peers import torch_or_none


def _with(threads=None, isa=None):
    """Wrap a call so it runs capped at ``threads`` and/or at ISA level ``isa``.

    Both are scoped to the call (``thread_limit`` caps the calling thread only), so the scaling
    mode's own per-thread cap still applies around them and no process-wide setting changes.
    """

    def wrap(fn):
        def run():
            with contextlib.ExitStack() as stack:
                if threads is not None:
                    stack.enter_context(numkern.thread_limit(threads))
                if isa is not None:
                    stack.enter_context(numkern.use_isa(isa))
                return fn()

        return run

    return wrap


def _float_peers(impls, af, bf, torch):
    impls["np.matmul float32 (OpenBLAS sgemm)"] = lambda: af @ bf
    if torch is not None:
        ta, tb = torch.from_numpy(af).bfloat16(), torch.from_numpy(bf).bfloat16()
        impls["torch.matmul bf16"] = lambda: ta @ tb


def _int8_case(n, quick):
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (n, n), dtype=np.int8)
    b = rng.integers(-128, 128, (n, n), dtype=np.int8)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    threads = numkern.get_num_threads()
    torch = torch_or_none(threads)
    impls = {f"numkern int8_matmul ({threads} threads)": lambda: Q.int8_matmul(a, b)}
    impls["numkern int8_matmul (1 thread)"] = _with(threads=1)(lambda: Q.int8_matmul(a, b))
    impls["numkern int8_matmul AVX2 level"] = _with(isa="avx2")(lambda: Q.int8_matmul(a, b))
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        impls["torch._int_mm (oneDNN)"] = lambda: torch._int_mm(ta, tb)
    _float_peers(impls, af, bf, torch)
    return Case("quant", f"int8_matmul {n}^3", impls, reference=next(iter(impls)), work=2.0 * n**3)


def _one_thread_case(n, quick):
    """Every implementation on one thread: the per-core ratio, unaffected by how a busy machine
    schedules the second thread."""
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (n, n), dtype=np.int8)
    b = rng.integers(-128, 128, (n, n), dtype=np.int8)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    x = (rng.standard_normal((n, n)) * np.logspace(-3, 0, n)).astype(np.float32)
    threads = numkern.get_num_threads()
    torch = torch_or_none(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        threadpool_limits = None
    one = _with(threads=1)
    impls = {
        "numkern int8_matmul": one(lambda: Q.int8_matmul(a, b)),
        "numkern int8_matmul AVX2 level": _with(threads=1, isa="avx2")(lambda: Q.int8_matmul(a, b)),
        "numkern matmul(float32, float32) 4-bit, quantization included": one(lambda: Q.matmul(x, bf, bits=4)),
    }
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        tfa, tfb = torch.from_numpy(af).bfloat16(), torch.from_numpy(bf).bfloat16()

        def torch_one(fn):
            def run():
                torch.set_num_threads(1)
                try:
                    return fn()
                finally:
                    torch.set_num_threads(threads)

            return run

        impls["torch._int_mm (oneDNN)"] = torch_one(lambda: torch._int_mm(ta, tb))
        impls["torch.matmul bf16"] = torch_one(lambda: tfa @ tfb)
    if threadpool_limits is not None:

        def sgemm():
            with threadpool_limits(1):
                return af @ bf

        impls["np.matmul float32 (OpenBLAS sgemm)"] = sgemm
    return Case("quant", f"1 thread: int8_matmul {n}^3", impls, reference="numkern int8_matmul", work=2.0 * n**3)


def _shiftquant_mm_case(n, quick):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((n, n)) * np.logspace(-3, 0, n)).astype(np.float32)
    w = rng.standard_normal((n, n)).astype(np.float32)
    threads = numkern.get_num_threads()
    torch = torch_or_none(threads)
    ta, tb = Q.shiftquant(x, 4), Q.shiftquant(w, 4)
    pa, pb = ta.pack(), tb.pack()
    impls = {
        "numkern matmul(float32, float32) 4-bit, quantization included": lambda: Q.matmul(x, w, bits=4),
        "numkern matmul(float32, float32) 8-bit, quantization included": lambda: Q.matmul(x, w, bits=8),
        "numkern matmul(ShiftQuantTensor x2) 4-bit": lambda: Q.matmul(ta, tb),
        "numkern matmul(packed int4 x2)": lambda: Q.matmul(pa, pb),
    }
    _float_peers(impls, x, w, torch)
    return Case("quant", f"ShiftQuant matmul {n}^3", impls, reference=next(iter(impls)), work=2.0 * n**3)


def _prepacked_case(m, quick):
    """quant.matmul of float32 x (m rows) by a 4096 x 4096 weight, prepacked against quantized
    and packed at every call: what the prepacked weight saves (the target is 1.5x or more)."""
    rng = np.random.default_rng(3)
    k = n = 4096
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = (rng.standard_normal((k, n)) * np.logspace(-2, 0, n)).astype(np.float32)
    pw = Q.prepack(w, bits=4)
    impls = {
        "numkern matmul(x, prepack(w, 4))": lambda: Q.matmul(x, pw),
        "numkern matmul(x, w, bits=4), on the fly": lambda: Q.matmul(x, w, bits=4),
        "np.matmul float32 (OpenBLAS sgemm)": lambda: x @ w,
    }

    def two_reads():
        # Quantizing w on the fly with per-column exponents reads it twice (the column maxima come
        # before any rounding): the bound of the on-the-fly row, which also packs and multiplies.
        _core.bandwidth_read(w)
        _core.bandwidth_read(w)

    return Case(
        "quant",
        f"prepacked vs on-the-fly matmul {m}x{k} @ {k}x{n} 4-bit",
        impls,
        reference=next(iter(impls)),
        work=2.0 * m * k * n,
        note="the on-the-fly row's ratio is the prepacked weight's speed-up",
        threaded_bound=two_reads,
    )


def _numpy_per_channel(x, Qm):
    s = np.abs(x).max(axis=0) / Qm
    return np.clip(np.rint(x / s), -Qm, Qm).astype(np.int8)


def _quantizer_case(shape, quick):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * np.logspace(-3, 0, shape[-1])).astype(np.float32)
    impls = {
        "numkern shiftquant 4-bit nearest": lambda: Q.shiftquant(x, 4),
        "numkern shiftquant 4-bit stochastic": lambda: Q.shiftquant(x, 4, rounding="stochastic", rng=0),
        "numkern shiftquant block 32": lambda: Q.shiftquant(x, 8, granularity="block"),
        "numpy per-channel round (max, div, rint, clip, cast)": lambda: _numpy_per_channel(x, 7),
        "bandwidth bound (copy float32 -> int8 cast)": lambda: x.astype(np.int8),
    }
    return Case(
        "quant",
        f"quantizer {shape[0]}x{shape[1]} float32",
        impls,
        reference=next(iter(impls)),
        bound=("bandwidth bound (copy float32 -> int8 cast)",),
        threaded_bound=lambda: _core.bandwidth_read(x),
    )


def cases(quick: bool) -> list[Case]:
    if quick:
        return [
            _int8_case(1024, quick),
            _one_thread_case(1024, quick),
            _shiftquant_mm_case(1024, quick),
            _quantizer_case((1024, 1024), quick),
            *(_prepacked_case(m, quick) for m in (1, 8, 64)),
        ]
    return [
        _int8_case(2048, quick),
        _shiftquant_mm_case(2048, quick),
        _one_thread_case(2048, quick),
        _int8_case(512, quick),
        _quantizer_case((4096, 4096), quick),
        *(_prepacked_case(m, quick) for m in (1, 8, 64)),
    ]
