"""Fuzzing the runtime controls (set_isa/get_isa/use_isa, set_num_threads/get_num_threads,
cpu_info) and the public numkern.nn layers: each call returns the documented answer or
raises TypeError/ValueError naming the problem; the process-wide settings are always restored."""

import warnings

import numpy as np
import pytest
from _fuzz_strategies import arrays, assert_raised_for, checked, fuzz, pick
from _reference import WIDE, matmul_wide
from hypothesis import strategies as st
from test_norm import ref_backward, ref_forward

import numkern
from numkern import nn
from numkern._runtime import ISA_LEVELS

pytestmark = pytest.mark.isa_independent  # the runtime test walks the levels itself


def test_fuzz_isa_and_thread_controls(fuzz_settings):
    detected = numkern.cpu_info()["detected"]
    top = ISA_LEVELS.index(detected)

    def run(level, threads, nested):
        start_isa, start_threads = numkern.get_isa(), numkern.get_num_threads()
        try:
            bad_level = not (isinstance(level, str) and level in ISA_LEVELS)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    with numkern.use_isa(level) as active:
                        assert not bad_level
                        checked()
                        want = ISA_LEVELS[min(ISA_LEVELS.index(level), top)]
                        assert active == want == numkern.get_isa() == numkern.cpu_info()["active"]
                        assert bool(caught) == (ISA_LEVELS.index(level) > top)
                        if nested in ISA_LEVELS:
                            with numkern.use_isa(nested):
                                pass
                            assert numkern.get_isa() == want
                        y = numkern.softmax(np.arange(5.0))
                        np.testing.assert_allclose(y, np.exp(np.arange(5.0)) / np.exp(np.arange(5.0)).sum(), rtol=1e-14)
            except ValueError as exc:
                assert_raised_for(exc, ["level"] if bad_level else [])
                assert "ISA level" in str(exc)
            assert numkern.get_isa() == start_isa
            bad_threads = isinstance(threads, (bool, float, str)) or not (1 <= threads <= 2**31 - 1)
            try:
                numkern.set_num_threads(threads)
            except (TypeError, ValueError) as exc:
                assert_raised_for(exc, ["threads"] if bad_threads else [])
                assert "thread" in str(exc)
                assert numkern.get_num_threads() == start_threads
            else:
                assert not bad_threads, f"set_num_threads accepted {threads!r}"
                assert 1 <= numkern.get_num_threads() <= int(threads)
                assert numkern.cpu_info()["num_threads"] == numkern.get_num_threads()
                np.testing.assert_array_equal(numkern.fwht(np.eye(8)), numkern.fwht(np.eye(8)))
        finally:
            numkern.set_num_threads(start_threads)
            numkern.set_isa(start_isa)

    fuzz(
        fuzz_settings,
        run,
        scale=2,
        level=pick(list(ISA_LEVELS), ["avx1024", "", None, 2, "AVX2"], 15),
        threads=pick(
            st.one_of(st.integers(1, 8), st.just(np.int64(2)), st.just(2**31 - 1)),
            [0, -1, 2.0, True, "2", 2**31, 2**64],
            15,
        ),
        nested=st.sampled_from([None] + list(ISA_LEVELS)),
    )


def test_fuzz_cpu_info_is_consistent(fuzz_settings):
    def run(_):
        info = numkern.cpu_info()
        assert set(info) == {"features", "detected", "active", "kernels", "arch", "threading", "num_threads", "cpus"}
        assert info["detected"] in ISA_LEVELS and info["active"] in ISA_LEVELS
        assert ISA_LEVELS.index(info["active"]) <= ISA_LEVELS.index(info["detected"])
        assert all(isinstance(v, bool) for v in info["features"].values())
        assert {"softmax", "quant", "norm", "sketch", "dp"} <= set(info["kernels"])
        checked()

    fuzz(fuzz_settings, run, scale=0.2, _=st.just(0))


@st.composite
def _norm_layer_case(draw):
    kind = draw(st.sampled_from(["l1", "l2", "rms"]))
    features = draw(pick(st.integers(1, 9), [0, -2, 2.5], 6))
    dtype = draw(pick([np.float32, np.float64], [np.float16, np.int32], 6))
    shape_ok = draw(pick([True], [False], 10))
    f = features if isinstance(features, int) and features > 0 else 3
    x = draw(
        arrays(
            dtypes=[np.float32, np.float64], shape=(draw(st.integers(0, 5)), f if shape_ok else f + 1), special=False
        )
    )
    g = draw(arrays(dtypes=[np.float32, np.float64], shape=x.shape, special=False))
    affine = draw(st.booleans())
    return kind, features, dtype, shape_ok, x, g, affine


def test_fuzz_nn_norm_layers(fuzz_settings, isa):
    def run(case):
        kind, features, dtype, shape_ok, x, g, affine = case
        cls = {"l1": nn.L1LayerNorm, "l2": nn.LayerNorm, "rms": nn.RMSNorm}[kind]
        problems = []
        if isinstance(features, float) or features < 1:
            problems.append("features")
        if dtype not in (np.float32, np.float64):
            problems.append("dtype")
        try:
            layer = cls(features, dtype=dtype, affine=affine)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            return
        assert not problems
        try:
            y = layer.forward(x)
        except ValueError as exc:
            assert_raised_for(exc, [] if shape_ok else ["shape"])
            return
        assert shape_ok, "accepted a wrong last axis"
        checked()
        eps = layer.eps
        ref = ref_forward(x, -1, None, None, eps, kind)
        tol = 2e-5 if x.dtype == np.float32 else 1e-12
        xh = np.abs(ref)
        if np.float32 in (g.dtype, np.dtype(dtype)):  # float32 gradients or parameters
            tol = 2e-5
        assert np.all(np.abs(y.astype(np.float64) - ref) <= 10 * (2e-5 if x.dtype == np.float32 else 1e-12) * (1 + xh))
        dx = layer.backward(g)
        rdx, rdw, rdb = ref_backward(g, x, -1, None, eps, kind)
        scale = (1 + np.abs(g).max(initial=0)) / eps
        assert np.all(np.abs(dx.astype(np.float64) - rdx) <= 100 * tol * scale * (1 + np.abs(rdx)))
        if affine:
            assert layer.weight.grad.shape == (x.shape[1],)
            np.testing.assert_allclose(
                layer.weight.grad, rdw, rtol=100 * tol, atol=100 * tol * (1 + x.shape[0]) * scale
            )
            if kind == "rms":  # a weight and no bias
                assert layer.bias is None and len(layer.parameters()) == 1
            else:
                np.testing.assert_allclose(layer.bias.grad, rdb, rtol=100 * tol, atol=100 * tol * (1 + x.shape[0]))

    fuzz(fuzz_settings, run, case=_norm_layer_case())


@st.composite
def _linear_case(draw):
    fin, fout = draw(st.integers(1, 12)), draw(st.integers(1, 6))
    bits = draw(pick([None, 4, 6, 8], [3, "8"], 6))
    batch = draw(st.integers(0, 6))
    width = draw(pick([fin], [fin + 1], 8))
    x = draw(arrays(dtypes=[np.float32, np.float64], shape=(batch, width), special=False))
    g = draw(arrays(dtypes=[np.float32], shape=(batch, fout), special=False))
    return fin, fout, bits, x, g


def test_fuzz_nn_linear(fuzz_settings, isa):
    def run(case):
        fin, fout, bits, x, g = case
        try:
            layer = nn.Linear(fin, fout, bits=bits, rng=0, dtype=np.float64)
        except ValueError as exc:
            assert_raised_for(exc, [] if bits in (None, 4, 6, 8) else ["bits"])
            return
        assert bits in (None, 4, 6, 8)
        try:
            y = layer.forward(x)
        except ValueError as exc:
            assert_raised_for(exc, [] if x.shape[1] == fin else ["shape"])
            return
        assert x.shape[1] == fin
        checked()
        W, b = layer.weight.data, layer.bias.data
        # Reference without BLAS (long double, NumPy's own loop), so it is the same whatever BLAS
        # NumPy runs; mag = |x| |W|^T + |b| scales the rounding of any summation order.
        x64 = x.astype(np.float64)
        ref = matmul_wide(x64, W.T) + b.astype(WIDE)
        mag = (matmul_wide(np.abs(x64), np.abs(W).T) + np.abs(b)).astype(np.float64)
        if bits is None:
            # Each entry of x @ W.T + b is a dot product of length fin plus one addition, in float64
            # in some order: |y - exact| <= gamma_(fin+1) mag (1.01: gamma_k = k u / (1 - k u)), one
            # more u for the reference, and an ulp of the subnormal range per rounding.
            bound = 1.01 * (fin + 2) * 2.0**-53 * mag + (fin + 2) * 2.0**-1074
            assert np.all(np.abs(y - ref) <= bound)
        else:
            # ShiftQuant with `bits`: error within the quantization steps of x and W.
            # Each operand is off by at most half its step (<= max / (2 Q)) per element.
            Q = 2 ** (bits - 1) - 1
            bound = fin * 1.5 * np.abs(x).max(initial=0) * np.abs(W).max() / Q * 1.01 + 1e-5
            assert np.all(np.abs(y - ref) <= bound)
        dx = layer.backward(g)
        assert dx.shape == x.shape and np.isfinite(dx).all()
        assert layer.weight.grad.shape == W.shape
        np.testing.assert_allclose(layer.bias.grad, g.astype(np.float64).sum(axis=0), rtol=1e-6, atol=1e-6)
        if bits is None:  # dx = g @ W: dot products of length fout, bounded as y above
            g64 = g.astype(np.float64)
            bound = 1.01 * (fout + 1) * 2.0**-53 * matmul_wide(np.abs(g64), np.abs(W)).astype(np.float64)
            assert np.all(np.abs(dx - matmul_wide(g64, W)) <= bound + (fout + 1) * 2.0**-1074)

    fuzz(fuzz_settings, run, case=_linear_case())
