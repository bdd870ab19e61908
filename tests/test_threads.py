"""Thread control and the thread pool: environment variables, threadpoolctl, per-thread limits,
concurrent callers, fork safety, results across thread counts, and progress beside a busy process."""

import concurrent.futures
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import numkern
from numkern import _core

pytestmark = pytest.mark.isa_independent


@pytest.fixture
def threads():
    """Restores the process-wide thread count after the test."""
    before = numkern.get_num_threads()
    yield
    numkern.set_num_threads(before)


def _run(code: str, env_extra: dict, timeout: float = 120) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMKERN_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"NUMKERN_NUM_THREADS": "3"}, "3"),
        ({"OMP_NUM_THREADS": "5"}, "5"),
        ({"OMP_NUM_THREADS": "2,1"}, "2"),  # nested OpenMP syntax: the outer level counts
        ({"NUMKERN_NUM_THREADS": "4", "OMP_NUM_THREADS": "1"}, "4"),  # numkern's own variable wins
    ],
)
def test_thread_count_from_environment(env, expected):
    assert _run("import numkern; print(numkern.get_num_threads())", env) == expected


def test_default_thread_count_is_the_usable_cpus():
    out = _run("import numkern; i = numkern.cpu_info(); print(i['num_threads'], i['cpus'], i['threading'])", {})
    n, cpus, threading_ = out.split()
    assert n == cpus and int(n) == len(os.sched_getaffinity(0)) and threading_ == "pool"


def test_bad_thread_environment_warns_and_is_ignored():
    code = """
        import warnings
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            import numkern
        print(numkern.get_num_threads() == numkern.cpu_info()["cpus"], any("NUMKERN_NUM_THREADS" in str(x.message) for x in w))
    """
    assert _run(code, {"NUMKERN_NUM_THREADS": "many"}) == "True True"


def test_thread_limit_is_per_thread(threads):
    numkern.set_num_threads(4)
    seen = {}

    def other():
        seen["other"] = numkern.get_num_threads()

    with numkern.thread_limit(1) as n:
        assert n == 1 and numkern.get_num_threads() == 1
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen["other"] == 4
    assert numkern.get_num_threads() == 4
    with pytest.raises(ValueError, match="positive integer"):
        with numkern.thread_limit(0):
            pass


def test_threadpoolctl_lists_and_limits_numkern(threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    # SciPy ships a module of the same file name (scipy/optimize/_highspy/_core...so): not numkern.
    pytest.importorskip("scipy.optimize")
    numkern.set_num_threads(3)
    info = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "numkern"]
    assert len(info) == 1
    assert info[0]["user_api"] == "numkern" and info[0]["num_threads"] == 3
    assert os.path.samefile(info[0]["filepath"], _core.__file__)
    with threadpoolctl.threadpool_limits(1):
        assert numkern.get_num_threads() == 1
    assert numkern.get_num_threads() == 3
    with threadpoolctl.threadpool_limits(2, user_api="numkern"):
        assert numkern.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert numkern.get_num_threads() == 3
    assert _core.get_thread_limit() == 0


def test_concurrent_callers_share_one_pool(threads):
    """Eight Python threads calling at once run on at most num_threads() - 1 pool threads in all
    (checked in a fresh process, whose pool starts empty), with correct results."""
    code = """
        import concurrent.futures, numpy as np, numkern
        from numkern import _core
        numkern.set_num_threads(3)
        x = np.random.default_rng(0).standard_normal((256, 4096)).astype(np.float32)
        ref = numkern.softmax(x)
        def work(_):
            return all(np.array_equal(numkern.softmax(x), ref) and np.array_equal(numkern.l1_norm(x), numkern.l1_norm(x))
                       for _ in range(50))
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            ok = all(ex.map(work, range(8)))
        print(ok, _core.pool_threads_started())
    """
    ok, started = _run(code, {}).split()
    assert ok == "True"
    assert 1 <= int(started) <= 2


def _fork_child_result(q):
    x = np.random.default_rng(1).standard_normal((64, 1 << 14)).astype(np.float32)
    q.put(float(numkern.softmax(x).sum()))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kernels_work_after_fork(threads):
    numkern.set_num_threads(2)
    x = np.random.default_rng(1).standard_normal((64, 1 << 14)).astype(np.float32)
    expected = float(numkern.softmax(x).sum())  # the parent's pool threads exist now
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_fork_child_result, args=(q,)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results == [expected, expected]
    pid = os.fork()
    if pid == 0:  # a bare os.fork child: the parent's workers do not exist here
        try:
            ok = float(numkern.softmax(x).sum()) == expected and numkern.get_num_threads() == 2
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _inputs():
    rng = np.random.default_rng(3)
    x32 = rng.standard_normal((300, 5000)).astype(np.float32)
    a8 = rng.integers(-128, 128, (300, 700), dtype=np.int8)
    b8 = rng.integers(-128, 128, (700, 200), dtype=np.int8)
    A = rng.standard_normal((1 << 15, 20))
    y = A @ rng.standard_normal(20) + rng.standard_normal(1 << 15)
    v = rng.standard_normal(1 << 20)
    # A fresh output of several 2 MiB pages: its writing pass is split on the output's pages.
    w = rng.standard_normal((1 << 21) + 37).astype(np.float32)
    pw = numkern.softmax(w)
    return [
        ("l1_norm", lambda: numkern.l1_norm(x32)),
        ("layer_norm axis 0", lambda: numkern.layer_norm(x32, axis=0)),
        ("softmax rows", lambda: numkern.softmax(x32)),
        ("int8_matmul", lambda: numkern.int8_matmul(a8, b8)),
        ("shiftquant", lambda: numkern.shiftquant(x32, 4).qdata),
        ("fwht", lambda: numkern.fwht(v)),
        ("softmax 1-D f32", lambda: numkern.softmax(v.astype(np.float32))),
        ("softmax 1-D f32 odd length", lambda: numkern.softmax(w)),
        ("softmax_backward 1-D f32 odd length", lambda: numkern.softmax_backward(pw, w)),
        ("log_softmax 1-D f64 three_pass_reload", lambda: numkern.log_softmax(v, algorithm="three_pass_reload")),
        ("SRHT apply", lambda: numkern.sketch.SRHT(1 << 15, 256, rng=1).apply(A)),
        ("Gaussian lstsq", lambda: numkern.lstsq(A, y, method="sketch", sketch="gaussian", m=200, rng=2).x),
    ]


@pytest.mark.parametrize("name,fn", _inputs(), ids=[n for n, _ in _inputs()])
def test_results_identical_across_thread_counts(threads, name, fn):
    numkern.set_num_threads(1)
    one = fn()
    for n in (2, 3, 5):
        numkern.set_num_threads(n)
        np.testing.assert_array_equal(fn(), one, err_msg=f"{name} at {n} threads")


def test_more_threads_than_cpus_and_nested_callers(threads):
    """Oversubscription works, and kernels started from many threads while the pool is busy
    (each then runs on its own thread) give the same results."""
    numkern.set_num_threads(4 * numkern.cpu_info()["cpus"])
    x = np.random.default_rng(4).standard_normal((128, 3000))
    ref = numkern.log_softmax(x, axis=0)
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda _: numkern.log_softmax(x, axis=0), range(16)))
    for o in outs:
        np.testing.assert_array_equal(o, ref)


def test_long_call_beside_a_busy_process_finishes():
    """A parallel kernel loop beside another process that loops parallel kernels too completes (no
    deadlock, no lost wake-up); generous timeout, and the sibling is always stopped."""
    sibling = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import time, numpy as np, numkern
            x = np.random.default_rng(0).standard_normal((512, 4096), dtype=np.float32)
            end = time.time() + 60
            while time.time() < end:
                numkern.l1_norm(x)
        """),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        code = """
            import numpy as np, numkern
            numkern.set_num_threads(2)
            x = np.random.default_rng(0).standard_normal(1 << 22).astype(np.float32)
            q = np.random.default_rng(1).standard_normal((512, 4096)).astype(np.float32)
            for _ in range(300):
                numkern.softmax(x[: 1 << 18])
                numkern.l1_norm(q)
            print(np.isclose(numkern.softmax(x).sum(), 1.0, rtol=1e-4))
        """
        assert _run(code, {}, timeout=300) == "True"
    finally:
        sibling.kill()
        sibling.wait()
