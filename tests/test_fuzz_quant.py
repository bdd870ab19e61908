"""Fuzzing the rest of numkern.quant: shiftquant's granularity/block/n_groups arguments,
ShiftQuantTensor.dequantize/pack/unpack, pack_int4/unpack_int4, quant.matmul on float and
quantized operands, and int8_matmul's batch dimensions and out_dtype. References: exact integer /
float64 NumPy; bad inputs raise TypeError/ValueError; inputs are never mutated."""

import numpy as np
import pytest
from _fuzz_strategies import arrays, assert_raised_for, checked, fuzz, pick, snapshot
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numkern
from numkern import quant


@st.composite
def _sq_case(draw):
    x = draw(
        arrays(
            dtypes=[np.float32, np.float64, np.int32, np.float16], max_side=8, special=draw(pick([False], [True], 20))
        )
    )
    bits = draw(pick([4, 6, 8], [3, 16, True], 6))
    axis = draw(pick(st.integers(-x.ndim, x.ndim - 1), [x.ndim, -4], 6))
    n_groups = draw(pick([None, 1, 2, 5, 32], [0, 33, 2.0], 8))
    granularity = draw(pick(["channel", "block"], ["tensor"], 5))
    block_size = draw(pick([32, 1, 3, 8], [0, -1, 4.0], 6))
    rounding = draw(pick(["nearest", "stochastic"], ["floor"], 5))
    rng = draw(pick([None, 0, 5, np.random.default_rng(1)], ["seed", 1.5], 4))
    return x, bits, axis, n_groups, granularity, block_size, rounding, rng


def test_fuzz_shiftquant_arguments_and_tensor_methods(fuzz_settings, isa):
    def run(case):
        x, bits, axis, n_groups, granularity, block_size, rounding, rng = case
        problems = []
        if isinstance(bits, bool) or bits not in (4, 6, 8):
            problems.append("bits")
        if not -x.ndim <= axis < x.ndim:
            problems.append("axis")
        if n_groups is not None and (not isinstance(n_groups, int) or not 1 <= n_groups <= 32):
            problems.append("n_groups")
        if granularity not in ("channel", "block"):
            problems.append("granularity")
        if not isinstance(block_size, int) or block_size < 1:
            problems.append("block_size")
        if rounding not in ("nearest", "stochastic"):
            problems.append("rounding")
        if rounding == "stochastic" and isinstance(rng, (str, float)):
            problems.append("rng")
        xf = x.astype(np.float64)
        if x.size and not (np.isfinite(xf).all() and np.abs(xf).max() <= np.finfo(np.float32).max):
            problems.append("non-finite")
        before = snapshot(x)
        try:
            t = numkern.shiftquant(
                x,
                bits,
                axis=axis,
                n_groups=n_groups,
                rounding=rounding,
                granularity=granularity,
                block_size=block_size,
                rng=rng,
            )
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert snapshot(x) == before
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        assert snapshot(x) == before
        Q = 2 ** (bits - 1) - 1
        q = t.values()
        assert q.dtype == np.int8 and q.shape == x.shape and np.all(np.abs(q.astype(np.int32)) <= Q)
        ng = quant.DEFAULT_N_GROUPS[bits] if n_groups is None else n_groups
        assert t.shift.dtype == np.uint8 and np.all(t.shift <= ng - 1)
        x32 = x.astype(np.float32).astype(np.float64)
        for dtype in (np.float32, np.float64):
            deq = t.dequantize(dtype)
            assert deq.dtype == dtype and deq.shape == x.shape
        err = np.abs(t.dequantize(np.float64) - x32)
        scale = np.broadcast_to(t.scales(), x.shape) if x.size else err
        limit = 0.5 if rounding == "nearest" else 1.0
        # Clamping at +-Q: the largest channel maps to exactly Q, so clamping never adds error.
        assert np.all(err <= limit * scale * (1 + 1e-6) + 2.0**-149)  # a float32 base scale can underflow
        with pytest.raises(TypeError, match="dtype"):
            t.dequantize(np.int32)
        if bits == 4 and x.ndim:
            p = t.pack()
            assert p.packed and p.qdata.dtype == np.uint8
            np.testing.assert_array_equal(p.values(), q)
            np.testing.assert_array_equal(p.unpack().qdata, q)
            np.testing.assert_array_equal(p.dequantize(np.float64), t.dequantize(np.float64))
        else:
            with pytest.raises(ValueError, match="4-bit"):
                t.pack()

    fuzz(fuzz_settings, run, case=_sq_case())


@st.composite
def _pack_case(draw):
    dtype = draw(pick([np.int8, np.int16, np.int64, np.uint8], [np.float32, np.bool_], 8))
    shape = draw(pick(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=7), [()], 4))
    lo, hi = draw(pick([(-8, 7)], [(-9, 7), (-8, 8)], 10))
    if np.dtype(dtype).kind == "u":
        lo = 0
    if np.dtype(dtype).kind == "b":
        lo, hi = 0, 1
    x = draw(
        hnp.arrays(
            dtype,
            shape,
            elements=st.integers(lo, hi) if np.dtype(dtype).kind != "f" else st.integers(lo, hi).map(float),
        )
    )
    n = draw(pick([None, "full", "odd"], ["short", "long", 2.0], 8))
    return x, n


def test_fuzz_pack_unpack_int4(fuzz_settings, isa):
    def run(case):
        x, n = case
        problems = []
        if x.dtype.kind not in "iu":
            problems.append("dtype")
        if x.ndim == 0:
            problems.append("0-d")
        if x.size and (x.min() < -8 or x.max() > 7):
            problems.append("range")
        before = snapshot(x)
        try:
            p = quant.pack_int4(x)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert snapshot(x) == before
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        assert snapshot(x) == before
        L = x.shape[-1]
        assert p.dtype == np.uint8 and p.shape == x.shape[:-1] + ((L + 1) // 2,)
        full = 2 * p.shape[-1]
        nn = {None: None, "full": full, "odd": L, "short": full - 2, "long": full + 1, 2.0: 2.0}[n]
        nproblem = n in ("short", "long", 2.0)
        pb = snapshot(p)
        try:
            u = quant.unpack_int4(p, nn)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, ["n"] if nproblem else [])
            return
        assert not nproblem, f"unpack accepted n={nn}"
        assert snapshot(p) == pb
        assert u.dtype == np.int8
        np.testing.assert_array_equal(u[..., :L], x.astype(np.int8))
        if u.shape[-1] > L:
            assert not u[..., L:].any()
        # A reversed (negative-stride) view of the bytes unpacks to the byte pairs in reverse order.
        if p.size:
            nb = p.shape[-1]
            pairs = quant.unpack_int4(p).reshape(p.shape[:-1] + (nb, 2))
            rev = quant.unpack_int4(p[..., ::-1]).reshape(p.shape[:-1] + (nb, 2))
            np.testing.assert_array_equal(rev, pairs[..., ::-1, :])

    fuzz(fuzz_settings, run, case=_pack_case())


def test_fuzz_unpack_int4_rejects_bad_input(fuzz_settings, isa):
    def run(dtype, zero_d):
        p = np.zeros(() if zero_d else (2, 3), dtype=dtype)
        if dtype != np.uint8:
            with pytest.raises(TypeError, match="uint8"):
                quant.unpack_int4(p)
        elif zero_d:
            with pytest.raises(ValueError, match="dimension"):
                quant.unpack_int4(p)
        else:
            assert quant.unpack_int4(p).shape == (2, 6)

    fuzz(
        fuzz_settings,
        run,
        scale=0.3,
        dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.float32]),
        zero_d=st.booleans(),
    )


@st.composite
def _matmul_case(draw):
    batch = draw(st.sampled_from([(), (), (2,), (1, 2)]))
    M, K, N = draw(st.integers(0, 6)), draw(st.integers(0, 40)), draw(st.integers(0, 6))
    a = draw(
        arrays(
            dtypes=[np.float32, np.float64, np.int32],
            shape=batch + (M, K),
            special=False,
            layouts=("plain", "fortran", "reversed", "strided", "unaligned"),
        )
    )
    b = draw(
        arrays(
            dtypes=[np.float32, np.float64],
            shape=(K, N),
            special=False,
            layouts=("plain", "fortran", "reversed", "strided", "unaligned"),
        )
    )
    a_q = draw(st.sampled_from([None, "channel_k", "block", "channel_m"]))
    b_q = draw(st.sampled_from([None, "channel_n", "channel_k", "block"]))
    bits = draw(st.sampled_from([None, 4, 6, 8]))
    ng = draw(st.sampled_from([None, None, 1, 4, 8]))
    out_dtype = draw(pick([np.float32, np.float64], [np.int32, np.float16], 6))
    bad = draw(pick([None], ["inner", "b3d", "a1d", "nan"], 10))
    return a, b, a_q, b_q, bits, ng, out_dtype, bad


def test_fuzz_quant_matmul(fuzz_settings, isa):
    def run(case):
        a, b, a_q, b_q, bits, ng, out_dtype, bad = case
        problems = []
        if bad == "inner":
            b = np.ones((b.shape[0] + 1, b.shape[1]))
        elif bad == "b3d":
            b = b[None]
        elif bad == "a1d":
            a = a.reshape(-1)
        elif bad == "nan" and a.size:
            a = a.astype(np.float64)
            a.flat[0] = np.nan
        if bad is not None and not (bad == "nan" and (a.size == 0)):
            problems.append(bad)
        if out_dtype not in (np.float32, np.float64):
            problems.append("out_dtype")
        qbits = bits or 8
        A, B = a, b
        if not problems:
            if a_q is not None and a.ndim >= 2:
                axis = {"channel_k": -1, "block": -1, "channel_m": -2}[a_q]
                A = numkern.shiftquant(
                    a, qbits, axis=axis, n_groups=ng, granularity="block" if a_q == "block" else "channel", block_size=8
                )
            if b_q is not None and b.ndim == 2:
                axis = {"channel_n": -1, "channel_k": 0, "block": 0}[b_q]
                B = numkern.shiftquant(
                    b, qbits, axis=axis, n_groups=ng, granularity="block" if b_q == "block" else "channel", block_size=8
                )
        before = snapshot(a, b)
        try:
            c = quant.matmul(A, B, out_dtype=out_dtype, bits=bits)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert snapshot(a, b) == before
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        assert snapshot(a, b) == before
        assert c.dtype == out_dtype and c.shape == a.shape[:-1] + (b.shape[1],)
        # Reference: the float64 product of the dequantized operands (quantized as matmul documents).
        known = A if isinstance(A, quant.ShiftQuantTensor) else (B if isinstance(B, quant.ShiftQuantTensor) else None)
        rbits = bits if bits is not None else (known.bits if known is not None else 8)
        ta = A if isinstance(A, quant.ShiftQuantTensor) else numkern.shiftquant(a, rbits, axis=-1)
        tb = B if isinstance(B, quant.ShiftQuantTensor) else numkern.shiftquant(b, rbits, axis=-1)
        da, db = ta.dequantize(np.float64), tb.dequantize(np.float64)
        ref = da @ db
        mag = np.abs(da) @ np.abs(db)
        ulp = np.finfo(out_dtype).eps
        tiny = 2.0**-149 if out_dtype == np.float32 else 2.0**-1074  # a denormal result: one ulp absolute
        bound = 4 * (a.shape[-1] + 1) * 2.0**-53 * mag + ulp * np.abs(ref) + tiny
        assert np.all(np.abs(c.astype(np.float64) - ref) <= bound), "matmul differs from the dequantized product"

    fuzz(fuzz_settings, run, case=_matmul_case())


@st.composite
def _int8_mm_case(draw):
    batch = draw(st.sampled_from([(), (), (3,), (2, 1)]))
    M, K, N = draw(st.integers(0, 5)), draw(st.integers(0, 80)), draw(st.integers(0, 5))
    extreme = draw(st.booleans())
    el = st.sampled_from([-128, 127]) if extreme else st.integers(-128, 127)
    a = draw(hnp.arrays(np.int8, batch + (M, K), elements=el))
    b = draw(hnp.arrays(np.int8, (K, N), elements=el))
    if draw(st.booleans()) and a.ndim >= 2:
        a = np.swapaxes(np.ascontiguousarray(np.swapaxes(a, -1, -2)), -1, -2)  # column-major inner matrices
    if draw(st.booleans()):
        b = b[::-1][::-1]
    out_dtype = draw(pick([None, np.int32, np.int64], [np.float64, np.int16], 8))
    bad = draw(pick([None], ["inner", "b1d", "a1d", "uint8"], 8))
    return a, b, out_dtype, bad


def test_fuzz_int8_matmul_batches_and_out_dtype(fuzz_settings, isa):
    def run(case):
        a, b, out_dtype, bad = case
        problems = []
        if bad == "inner":
            b = np.zeros((b.shape[0] + 1, b.shape[1]), np.int8)
        elif bad == "b1d":
            b = b.reshape(-1)
        elif bad == "a1d":
            a = a.reshape(-1)
        elif bad == "uint8":
            a = a.view(np.uint8)
        if bad:
            problems.append(bad)
        if out_dtype in (np.float64, np.int16):
            problems.append("out_dtype")
        before = snapshot(a, b)
        try:
            c = numkern.int8_matmul(a, b, out_dtype=out_dtype)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert snapshot(a, b) == before
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        assert snapshot(a, b) == before
        assert c.dtype == (np.int32 if out_dtype is None else out_dtype)
        np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))

    fuzz(fuzz_settings, run, case=_int8_mm_case())
