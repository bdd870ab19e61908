"""64-bit indexing: kernels on arrays of more than 2**31 elements, where an int32 index
or byte offset would wrap. Each test needs several GiB and skips cleanly when /proc/meminfo's
MemAvailable is short; only one big array is alive at a time. Names contain ``2_pow`` so a run can
deselect them (``-k "not 2_pow"``, as the sanitizer run in .ci/run does). Softmax's test of this
kind is in test_concurrency.py."""

import gc

import numpy as np
import pytest
from conftest import AVAILABLE_ISAS
from test_norm import ref_int8

import numkern

pytestmark = [pytest.mark.slow, pytest.mark.isa_independent]  # each test walks the ISA levels itself

GiB = 1 << 30


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _need(nbytes):
    if _available_bytes() < nbytes:
        pytest.skip(f"needs about {nbytes / GiB:.0f} GiB of available memory")


@pytest.fixture(autouse=True)
def _release_memory():
    yield
    gc.collect()


def test_l1_norm_int8_on_2_pow_31_plus_elements_reads_and_writes_every_row():
    # 2**15 + 1 rows of 2**16 int8: the last rows start past byte offset 2**31.
    _need(5 * GiB)
    rows, n = (1 << 15) + 1, 1 << 16
    rng = np.random.default_rng(3)
    row = rng.integers(-128, 128, n, dtype=np.int8)
    last = np.roll(row, 12345)
    last[:100] = 127  # a different slice, so a wrapped offset cannot reproduce it
    expect_row = np.clip(np.round(ref_int8(row[None])[0]), -128, 127)
    expect_last = np.clip(np.round(ref_int8(last[None])[0]), -128, 127)
    big = np.empty((rows, n), dtype=np.int8)
    for level in AVAILABLE_ISAS:
        big[:] = row
        big[-1] = last
        with numkern.use_isa(level):
            numkern.l1_norm_int8(big, out=big)  # in place: one 2 GiB array
        for r in (0, (1 << 15) - 1, 1 << 15):  # rows starting before and after 2**31 bytes
            want = expect_last if r == rows - 1 else expect_row
            assert np.abs(big[r].astype(np.int64) - want).max() <= 1, (level, r)
        assert (big[1 : rows - 1 : 997] == big[0]).all(), level
    del big


def test_int8_matmul_with_2_pow_31_plus_elements_in_a():
    # a is (2**15 + 3) x 2**16 int8: row offsets pass 2**31 bytes; b sums or picks columns.
    _need(5 * GiB)
    M, K = (1 << 15) + 3, 1 << 16
    rng = np.random.default_rng(4)
    row = rng.integers(-128, 128, K, dtype=np.int8)
    b = np.zeros((K, 3), dtype=np.int8)
    b[:, 0] = 1  # row sums
    b[K - 1, 1] = 1  # the last element of each row
    b[::2, 2] = -1
    a = np.empty((M, K), dtype=np.int8)
    a[:] = row
    a[-1, -1] = 77
    a[-2] = -row
    for level in AVAILABLE_ISAS:
        with numkern.use_isa(level):
            c = numkern.int8_matmul(a, b)
        assert c.dtype == np.int32 and c.shape == (M, 3)
        for r in (0, M // 2, M - 3, M - 2, M - 1):
            np.testing.assert_array_equal(c[r], a[r].astype(np.int64) @ b.astype(np.int64), err_msg=f"{level} row {r}")
        assert (c[1 : M - 3 : 1013] == c[0]).all(), level
    del a


def test_l1_norm_and_layer_norm_on_one_slice_of_2_pow_31_plus_float32():
    # One slice of 2**31 + 16 float32 (8 GiB, normalized in place): +-1 alternating, so the mean is
    # 0, mean |x - mean| and the RMS are 1, and with eps = 1 (l1) / eps = 3 (l2) every output is
    # x / 2, including those past element 2**31 that a wrapped index would leave untouched.
    _need(12 * GiB)
    n = (1 << 31) + 16
    big = np.empty(n, dtype=np.float32)
    pair = np.array([1.0, -1.0], dtype=np.float32).view(np.float64)[0]
    probes = (0, 1, (1 << 31) - 1, 1 << 31, (1 << 31) + 1, n - 1)
    for fn, eps in ((numkern.l1_norm, 1.0), (numkern.layer_norm, 3.0)):
        big.view(np.float64).fill(pair)  # (1, -1) pairs in one contiguous pass
        fn(big, eps=eps, out=big)
        for i in probes:
            want = 0.5 if i % 2 == 0 else -0.5
            assert abs(float(big[i]) - want) <= 1e-6, (fn.__name__, i, float(big[i]))
    del big
