"""Thread safety, memory stability and 64-bit indexing of every public kernel entry point."""

import concurrent.futures
import os
import warnings

import numpy as np
import pytest

import numkern

pytestmark = pytest.mark.isa_independent  # each test below walks the ISA levels itself where needed


def _entry_points():
    """(name, fn(x) -> result, input) for each public kernel call; inputs are small but not tiny,
    and fn also accepts ``_small(input)``, the input the memory test repeats 10^5 times."""
    rng = np.random.default_rng(7)
    x32 = rng.standard_normal((64, 257)).astype(np.float32)
    x64 = rng.standard_normal((33, 130))
    a8 = rng.integers(-128, 128, (37, 300), dtype=np.int8)
    b8 = rng.integers(-128, 128, (300, 45), dtype=np.int8)
    w = rng.standard_normal((300, 300)).astype(np.float32)
    q8 = rng.integers(-128, 128, (64, 257), dtype=np.int8)
    X = rng.standard_normal((300, 8))
    S = numkern.sketch.SRHT(64, 16, rng=5)
    A = rng.standard_normal((256, 5))
    y = A @ rng.standard_normal(5) + 0.01 * rng.standard_normal(256)
    G = numkern.sketch.Gaussian(64, 16, rng=6)
    SS = numkern.sketch.SparseSign(64, 16, nnz_per_col=4, rng=7)
    CS = numkern.sketch.CountSketch(64, 16, rng=8)
    packed = numkern.quant.pack_int4(rng.integers(-8, 8, (64, 257), dtype=np.int8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", numkern.dp.NotPrivateWarning)
        kde = numkern.dp.KernelDensity(bandwidth=2.0, n_components=64, rng=9).fit(X)
        l1sum = numkern.dp.DistanceSum("l1", 1.0, bounds=4.0, rng=10).fit(X)
    return [
        ("Gaussian apply", lambda a: G.apply(np.resize(a, (64, a.shape[1]))), x64),
        ("SparseSign apply", lambda a: SS.apply(np.resize(a, (64, a.shape[1]))), x32),
        ("CountSketch apply", lambda a: CS.apply(np.resize(a, (64, a.shape[1]))), x64),
        ("unpack_int4", lambda p: numkern.quant.unpack_int4(p), packed),
        ("KernelDensity query", lambda a: kde.query(a[:, :8]), x64),
        ("DistanceSum l1 query", lambda a: l1sum.query(a[:, :8]), x64),
        ("fwht f64 axis0", lambda a: numkern.fwht(a[: 1 << (a.shape[0].bit_length() - 1)], axis=0), x64),
        ("SRHT apply", lambda a: S.apply(np.resize(a, (64, a.shape[1]))), x64),
        ("lstsq sketch", lambda a: numkern.lstsq(A, y + a.ravel()[:1], method="sketch", m=64, rng=2).x, x64),
        ("l1_norm f32", lambda a: numkern.l1_norm(a), x32),
        ("layer_norm f64 axis0", lambda a: numkern.layer_norm(a, axis=0), x64),
        ("l1_norm_backward", lambda a: numkern.l1_norm_backward(a, a * 0.5)[0], x32),
        ("layer_norm_backward", lambda a: numkern.layer_norm_backward(a, a * 0.5)[0], x64),
        ("l1_norm_int8", lambda a: numkern.l1_norm_int8(a), q8),
        ("kernel_sum gaussian", lambda a: numkern.kernel_sum(X, a[:, :8], kernel="gaussian", bandwidth=2.0), x64),
        ("distance_sum l1", lambda a: numkern.distance_sum(X, a[:, :8], metric="l1"), x64),
        ("int8_matmul", lambda a: numkern.int8_matmul(a, b8[: a.shape[1]]), a8),
        ("shiftquant 4-bit", lambda a: numkern.shiftquant(a, 4).qdata, x32),
        ("shiftquant stochastic", lambda a: numkern.shiftquant(a, 6, rounding="stochastic", rng=3).qdata, x32),
        ("quant.matmul float32", lambda a: numkern.quant.matmul(a, w[: a.shape[1], :40], bits=8), w.T.copy()),
        ("softmax f32", lambda a: numkern.softmax(a), x32),
        ("softmax f64 axis0 two_pass", lambda a: numkern.softmax(a, axis=0, algorithm="two_pass"), x64),
        ("log_softmax f32", lambda a: numkern.log_softmax(a), x32),
        ("log_softmax f64 strided", lambda a: numkern.log_softmax(a[:, ::3], algorithm="three_pass_reload"), x64),
    ]


ENTRY_POINTS = _entry_points()


@pytest.mark.parametrize("name,fn,x", ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_concurrent_calls_match_serial_results(name, fn, x):
    expected = fn(x)
    calls_per_thread = 1000

    def worker(_):
        for _ in range(calls_per_thread):
            if not np.array_equal(fn(x), expected, equal_nan=True):
                return False
        return True

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(worker, range(8)))


def _small(x):
    """A few rows and columns of x: the memory test measures per-call leaks, not throughput."""
    return x[:4, :64].copy()


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
@pytest.mark.parametrize("name,fn,x", ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_repeated_calls_do_not_grow_memory(name, fn, x):
    calls = int(os.environ.get("NUMKERN_LEAK_CALLS", "100000"))
    xs = _small(x)
    for _ in range(2000):
        fn(xs)
    before = _rss_bytes()
    for _ in range(calls):
        fn(xs)
    after = _rss_bytes()
    assert after <= before * 1.05 + (1 << 20), f"RSS grew from {before} to {after} bytes over {calls} calls"


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.mark.slow
@pytest.mark.skipif(_available_bytes() < (12 << 30), reason="needs about 12 GiB of free memory")
def test_more_than_2_pow_31_elements():
    n = (1 << 31) + 17
    big = np.zeros(n, dtype=np.float32)  # 8 GiB, computed in place
    big[-1] = 30.0
    big[1 << 31] = 20.0
    numkern.log_softmax(big, out=big)
    log_sum = np.log(np.exp(30.0) + np.exp(20.0) + (n - 2))
    for idx, value in ((0, 0.0), ((1 << 31) - 1, 0.0), (1 << 31, 20.0), (n - 1, 30.0)):
        assert abs(float(big[idx]) - (value - log_sum)) <= 2e-6 * max(1.0, abs(value - log_sum)), idx
    big[:] = 1.0
    numkern.softmax(big, out=big)
    for idx in (0, (1 << 31) - 1, 1 << 31, n - 1):
        assert abs(float(big[idx]) * n - 1.0) <= 1e-6, idx
