"""prepack / PackedWeight and the GEMM with a prepacked operand: bit-identical to the on-the-fly
matmul, equal to the exact product of the dequantized operands rounded once (Python-integer
reference), on every ISA level, from many threads, across pickling and ISA level changes."""

import copy
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _reference import matmul_exact

import numkern
from numkern import _core
from numkern import quant as Q
from numkern.quant import MAX_K_INT32, PackedWeight


def graded(rng, shape, axis=-1):
    """Gaussian values with channel ranges spread over three decades along `axis` (several exponents)."""
    view = [1] * len(shape)
    view[axis] = -1
    return (rng.standard_normal(shape) * np.logspace(-3, 0, shape[axis]).reshape(view)).astype(np.float32)


def exact(a, b, dtype):
    """The float64 product of two ShiftQuant operands' dequantized values, exact, rounded once to
    float64 (then to dtype): what the integer GEMM and its epilogue compute."""
    da, db = a.dequantize(np.float64), b.dequantize(np.float64)
    return matmul_exact(da, db).astype(dtype)


LEVELS = tuple(_core.isa_levels()[: _core.isa_levels().index(_core.detected_isa()) + 1])  # this machine's


def other_level(isa):
    """The highest level of this machine other than `isa`, or None."""
    others = [v for v in LEVELS if v != isa]
    return others[-1] if others else None


def aligned(buf):
    """A copy of buf at a 64-byte boundary (the alignment int8_gemm_packed requires)."""
    raw = np.zeros(buf.size + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start : start + buf.size]
    out[...] = buf
    return out


# ------------------------------------------------------------------------------ results


@pytest.mark.parametrize("bits", [4, 6, 8])
@pytest.mark.parametrize("M", [1, 8, 37])
def test_prepacked_matmul_is_bit_identical_to_the_on_the_fly_matmul(rng, bits, M):
    K, N = 70, 45
    w = graded(rng, (K, N), 1)
    x = graded(rng, (M, K), 1)
    pw = Q.prepack(w, bits)
    for dt in (np.float32, np.float64):
        np.testing.assert_array_equal(Q.matmul(x, pw, out_dtype=dt), Q.matmul(x, w, bits=bits, out_dtype=dt))
    qx = Q.shiftquant(x, bits)  # a quantized left operand, rounded to nearest like w
    np.testing.assert_array_equal(Q.matmul(qx, pw), Q.matmul(qx, w))
    xb = graded(rng, (2, 3, K), 2)  # batched left operand
    np.testing.assert_array_equal(Q.matmul(xb, pw), Q.matmul(xb, w, bits=bits))


@pytest.mark.parametrize("bits", [4, 6, 8])
@pytest.mark.parametrize("granularity", ["channel", "block"])
def test_prepacked_matmul_equals_the_exact_product_of_the_dequantized_operands(rng, bits, granularity):
    K, N = 67, 41
    w = graded(rng, (K, N), 1)
    pw = Q.prepack(w, bits, granularity=granularity, block_size=16)
    tw = Q.shiftquant(w, bits, granularity=granularity, block_size=16)
    np.testing.assert_array_equal(pw.dequantize(np.float64), tw.dequantize(np.float64))
    for M in (1, 8, 13):
        qx = Q.shiftquant(graded(rng, (M, K), 1), bits)
        for dt in (np.float32, np.float64):
            out = Q.matmul(qx, pw, out_dtype=dt)
            assert out.dtype == dt and out.shape == (M, N)
            np.testing.assert_array_equal(out, exact(qx, tw, dt))
        np.testing.assert_array_equal(Q.matmul(qx, pw), Q.matmul(qx, tw))


@pytest.mark.parametrize(
    "bits,axis,n_groups,granularity",
    [(4, 0, None, "channel"), (8, 0, 9, "channel"), (4, 0, 8, "channel"), (6, 1, 5, "channel"), (4, 0, None, "block")],
)
def test_prepack_of_a_shiftquant_tensor_gives_matmul_of_that_tensor(rng, bits, axis, n_groups, granularity):
    """Groups along K are pre-shifted into the panels; more groups than fit int8 once shifted give
    one packed operand per chunk of exponents."""
    t = Q.shiftquant(graded(rng, (96, 23), axis), bits, axis=axis, n_groups=n_groups, granularity=granularity)
    pw = Q.prepack(t, bits, granularity=granularity)
    np.testing.assert_array_equal(pw.dequantize(), t.dequantize())
    for M in (1, 9):
        qx = Q.shiftquant(graded(rng, (M, 96), 1), bits)
        np.testing.assert_array_equal(Q.matmul(qx, pw), Q.matmul(qx, t))
        ref = qx.dequantize(np.float64) @ t.dequantize(np.float64)
        np.testing.assert_allclose(Q.matmul(qx, pw, out_dtype=np.float64), ref, rtol=1e-12, atol=1e-12)
    assert Q.prepack(pw, bits, granularity=granularity) is not None  # a PackedWeight packs as its tensor


def test_prepacked_matmul_with_k_beyond_the_int32_bound_is_exact(rng):
    K = MAX_K_INT32 + 4
    x = rng.standard_normal((2, K)).astype(np.float32)
    x[:, :3] = 50.0
    w = np.full((K, 3), -1.0, np.float32)
    w[::7] = 0.5
    qx, pw = Q.shiftquant(x, 8), Q.prepack(w, 8)
    np.testing.assert_array_equal(Q.matmul(qx, pw, out_dtype=np.float64), Q.matmul(qx, w, out_dtype=np.float64))
    ref = qx.dequantize(np.float64) @ pw.dequantize(np.float64)
    np.testing.assert_allclose(Q.matmul(qx, pw, out_dtype=np.float64), ref, rtol=1e-12)


def test_prepacked_matmul_of_empty_shapes(rng):
    w = graded(rng, (0, 5), 1)
    out = Q.matmul(np.ones((3, 0), np.float32), Q.prepack(w))
    np.testing.assert_array_equal(out, np.zeros((3, 5), np.float32))
    pw = Q.prepack(graded(rng, (6, 5), 1))
    assert Q.matmul(np.ones((0, 6), np.float32), pw).shape == (0, 5)
    assert Q.matmul(np.ones((4, 6), np.float32), Q.prepack(np.ones((6, 0), np.float32))).shape == (4, 0)


# ------------------------------------------------------------------------------ the object


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_packed_weight_attributes_and_dequantize(rng, bits):
    w = graded(rng, (50, 33), 1)
    pw = Q.prepack(w, bits)
    t = Q.shiftquant(w, bits)
    assert pw.shape == (50, 33) and pw.bits == bits and pw.granularity == "channel" and pw.block_size == 32
    assert pw.kernel == _core.gemm_kernel()
    assert pw.tensor.packed == (bits == 4)
    _, bufs = pw._packed
    assert pw.nbytes == pw.tensor.nbytes + sum(b.nbytes for b in bufs) + 33 * 8  # + the column factors
    assert all(not b.flags.writeable and b.ctypes.data % 64 == 0 for b in bufs)
    np.testing.assert_array_equal(pw.dequantize(), t.dequantize())
    assert pw.dequantize(np.float64).dtype == np.float64
    with pytest.raises(TypeError):
        pw.dequantize(np.int32)
    assert repr(pw).startswith("PackedWeight(shape=(50, 33)")


def test_int4_packed_weight_uses_the_documented_nibble_order(rng):
    w = graded(rng, (4, 7), 1)
    pw = Q.prepack(w, 4)
    q = Q.shiftquant(w, 4).qdata
    p = pw.tensor.qdata
    assert p.dtype == np.uint8 and p.shape == (4, 4)
    low = (p & 0x0F).astype(np.int8)
    high = (p >> 4).astype(np.int8)
    low[low > 7] -= 16  # two's complement nibbles
    high[high > 7] -= 16
    np.testing.assert_array_equal(low, q[:, 0::2])  # element 2j in the low nibble of byte j
    np.testing.assert_array_equal(high[:, :3], q[:, 1::2])  # element 2j + 1 in the high nibble
    np.testing.assert_array_equal(high[:, 3], 0)  # the odd last column padded with a zero nibble


@pytest.mark.isa_independent
def test_packed_weight_is_immutable():
    pw = Q.prepack(np.ones((8, 4), np.float32))
    with pytest.raises(AttributeError):
        pw.bits = 8
    with pytest.raises(AttributeError):
        pw._tensor = None
    with pytest.raises(AttributeError):
        del pw._packed
    with pytest.raises(TypeError, match="prepack"):
        PackedWeight()
    buf = pw._packed[1][0]
    with pytest.raises(ValueError):
        buf[70] = 1


def test_many_threads_share_one_packed_weight(rng):
    w = graded(rng, (300, 200), 1)
    pw = Q.prepack(w, 4)
    xs = [graded(rng, (m, 300), 1) for m in (1, 3, 8, 17, 64) * 4]
    serial = [Q.matmul(x, pw) for x in xs]
    with numkern.thread_limit(1), ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda x: Q.matmul(x, pw), xs))
    with ThreadPoolExecutor(4) as pool:  # each call on the pool as well
        threaded2 = list(pool.map(lambda x: Q.matmul(x, pw), xs))
    for s, t, t2, x in zip(serial, threaded, threaded2, xs):
        np.testing.assert_array_equal(t, s)
        np.testing.assert_array_equal(t2, s)
        np.testing.assert_array_equal(s, Q.matmul(x, w, bits=4))


# ------------------------------------------------------------------------ pickling and ISA levels


@pytest.mark.parametrize("bits,granularity", [(4, "channel"), (8, "block")])
def test_pickle_round_trip_keeps_the_panels_of_the_same_kernel(rng, bits, granularity):
    w = graded(rng, (90, 37), 1)
    x = graded(rng, (5, 90), 1)
    pw = Q.prepack(w, bits, granularity=granularity)
    for back in (pickle.loads(pickle.dumps(pw)), copy.deepcopy(pw), copy.copy(pw)):
        assert isinstance(back, PackedWeight) and back.kernel == pw.kernel and back.nbytes == pw.nbytes
        assert all(b.ctypes.data % 64 == 0 and not b.flags.writeable for b in back._packed[1])
        for b0, b1 in zip(pw._packed[1], back._packed[1]):
            np.testing.assert_array_equal(b0, b1)
        np.testing.assert_array_equal(Q.matmul(x, back), Q.matmul(x, pw))
    assert b"numkern.quant" in pickle.dumps(pw)  # pickled by its public name


def test_pickle_from_another_isa_level_is_repacked(rng, isa):
    other = other_level(isa)
    if other is None:
        pytest.skip("one ISA level only")
    w = graded(rng, (90, 37), 1)
    x = graded(rng, (5, 90), 1)
    with numkern.use_isa(other):
        blob = pickle.dumps(Q.prepack(w, 4))
        theirs = pickle.loads(blob).kernel
    back = pickle.loads(blob)
    assert back.kernel == _core.gemm_kernel()
    if theirs != back.kernel:  # repacked: the panels of a fresh prepack at this level
        np.testing.assert_array_equal(back._packed[1][0], Q.prepack(w, 4)._packed[1][0])
    np.testing.assert_array_equal(Q.matmul(x, back), Q.matmul(x, w, bits=4))


def test_pickle_with_damaged_panels_header_is_repacked(rng):
    w = graded(rng, (40, 20), 1)
    x = graded(rng, (3, 40), 1)
    pw = Q.prepack(w, 6)
    state = pw.__getstate__()
    bad = state["buffers"][0].copy()
    bad[8] ^= 1  # K in the header
    state = dict(state, buffers=(bad,))
    back = PackedWeight.__new__(PackedWeight)
    back.__setstate__(state)
    np.testing.assert_array_equal(Q.matmul(x, back), Q.matmul(x, w, bits=6))
    back2 = PackedWeight.__new__(PackedWeight)
    back2.__setstate__(dict(state, kernel="s8gemm_of_another_cpu"))
    np.testing.assert_array_equal(Q.matmul(x, back2), Q.matmul(x, w, bits=6))


def test_a_change_of_isa_level_after_packing_repacks(rng, isa):
    w = graded(rng, (64, 48), 1)
    x = graded(rng, (8, 64), 1)
    pw = Q.prepack(w, 4)
    packed_for = pw.kernel
    for level in LEVELS:
        with numkern.use_isa(level):
            np.testing.assert_array_equal(Q.matmul(x, pw), Q.matmul(x, w, bits=4))
            assert pw.kernel == _core.gemm_kernel()
    np.testing.assert_array_equal(Q.matmul(x, pw), Q.matmul(x, w, bits=4))
    assert pw.kernel == packed_for


def test_dask_matmul_takes_a_packed_weight(rng):
    da = pytest.importorskip("dask.array")
    from numkern import dask as nkd

    w = graded(rng, (64, 20), 1)
    x = graded(rng, (30, 64), 1)
    pw = Q.prepack(w, 4)
    out = nkd.matmul(da.from_array(x, chunks=(10, 64)), pw, chunks=(10, 32)).compute()
    np.testing.assert_array_equal(out, Q.matmul(x, pw))


# ------------------------------------------------------------------------------ errors


@pytest.mark.isa_independent
def test_prepack_and_matmul_reject_bad_input():
    w = np.ones((8, 4), np.float32)
    for bad in ({"bits": 5}, {"bits": True}, {"granularity": "row"}, {"block_size": 0}):
        with pytest.raises(ValueError):
            Q.prepack(w, **{"bits": 4, **bad})
    with pytest.raises(TypeError):
        Q.prepack(w, block_size=1.5)
    for shape in ((8,), (2, 8, 4), ()):
        with pytest.raises(ValueError, match="2-D"):
            Q.prepack(np.ones(shape, np.float32))
    with pytest.raises(ValueError, match="finite"):
        Q.prepack(np.full((3, 3), np.nan, np.float32))
    with pytest.raises(TypeError):
        Q.prepack(np.array([["a", "b"]]))
    t8 = Q.shiftquant(w, 8)
    with pytest.raises(ValueError, match="bits=8"):
        Q.prepack(t8)  # bits=4 by default
    with pytest.raises(ValueError, match="granularity"):
        Q.prepack(t8, 8, granularity="block")
    with pytest.raises(ValueError, match="2-D"):
        Q.prepack(Q.shiftquant(np.ones((2, 3, 4), np.float32), 4), 4)
    pw = Q.prepack(w)
    with pytest.raises(ValueError, match="inner"):
        Q.matmul(np.ones((2, 9), np.float32), pw)
    with pytest.raises(ValueError):
        Q.matmul(np.ones(8, np.float32), pw)
    with pytest.raises(TypeError, match="right operand"):
        Q.matmul(pw, np.ones((4, 2), np.float32))
    with pytest.raises(TypeError):
        Q.matmul(np.ones((2, 8), np.float32), pw, out_dtype=np.int32)


def test_core_gemm_packed_checks_the_packed_operand(rng):
    a = rng.integers(-128, 128, (4, 6), dtype=np.int8)
    b = rng.integers(-128, 128, (6, 5), dtype=np.int8)
    packed, kernel = _core.int8_pack_b(b)
    assert kernel == _core.gemm_kernel() and packed.ctypes.data % 64 == 0
    out = np.zeros((4, 5), np.int32)
    _core.int8_gemm_packed(a, packed, out, 0, 1.0, None, None)
    np.testing.assert_array_equal(out, a.astype(np.int64) @ b.astype(np.int64))

    def rejects(buf, a=a, out=out, match=None):
        with pytest.raises(ValueError, match=match):
            _core.int8_gemm_packed(a, buf, out, 0, 1.0, None, None)

    raw = aligned(np.append(packed, np.uint8(0)))
    misaligned = raw[1:]
    assert np.array_equal(raw[:-1], packed)
    rejects(misaligned, match="aligned")
    rejects(raw, match="size")
    for offset, what in ((0, "header"), (8, "K or N"), (16, "K or N"), (24, "size"), (32, "another GEMM kernel")):
        bad = aligned(packed)
        bad[offset] ^= 1
        rejects(bad, match=what)
    rejects(aligned(packed[:40]), match="header")
    rejects(packed, a=rng.integers(-128, 128, (4, 7), dtype=np.int8), match="K or N")
    rejects(packed, out=np.zeros((4, 6), np.int32), match="K or N")
    other = other_level(_core.active_isa())
    if other is not None:
        with numkern.use_isa(other):
            theirs, their_kernel = _core.int8_pack_b(b)
        if their_kernel != kernel:
            rejects(theirs, match="another GEMM kernel")
