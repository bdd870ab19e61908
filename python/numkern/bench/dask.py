"""numkern.dask against the in-memory kernels: softmax over a chunked axis and lstsq on row blocks
(Dask's threaded scheduler); without --quick also a 4 GB lstsq generated chunkwise on a
LocalCluster of 1 and 2 worker processes, with peak memory of the driver and of each worker."""

from __future__ import annotations

import functools
import resource
import threading
import time

import numpy as np

import numkern
from numkern import _core

from ._harness import Case


def _dask_or_none():
    try:
        import dask.array as da
        import distributed  # noqa: F401

        import numkern.dask as nkd
    except ImportError:
        print("[dask] skipped: dask[array] and distributed are not installed (pip install 'numkern[dask]')")
        return None, None
    return da, nkd


def _softmax_case(da, nkd, log2n, chunks):
    x = np.random.default_rng(0).standard_normal(1 << log2n, dtype=np.float32)
    out = np.empty_like(x)
    out.fill(0)
    xd = da.from_array(x, chunks=(1 << log2n) // chunks)
    threads = numkern.get_num_threads()
    impls = {
        f"dask threads, {chunks} chunks": lambda: da.store(
            nkd.softmax(xd), out, lock=False, scheduler="threads", num_workers=threads
        ),
        "numkern.softmax in memory": lambda: numkern.softmax(x, out=out),
        "numkern.softmax in memory, new output": lambda: numkern.softmax(x),
    }
    return Case(
        "dask",
        f"softmax over a chunked axis, float32 2^{log2n}",
        impls,
        reference="numkern.softmax in memory",
        note="dask and the first in-memory row write into the same preallocated output (dask: a new "
        "array per chunk, then copied); dask: two-pass partials per chunk, tree merge, blockwise scaling",
        # --threads: the in-memory rows' traffic, one read then a read and a write (into a new array
        # for the new-output row), as for the softmax family's 1-D case.
        threaded_bound=functools.partial(_two_passes, x, out),
        threaded_bound_new=lambda: _two_passes(x, np.empty_like(out)),
    )


def _two_passes(x, out):
    _core.bandwidth_read(x)
    _core.convert(out, x)


def _ill_conditioned(rng, n, d, cond):
    """A = G diag(s) V^T with Gaussian G (cond(G) ~ 1 for n >> d) and s from 1 to 1/cond, and a
    residual about as large as A x: CG stops at an error of order one, the refinement must run."""
    V = np.linalg.qr(rng.standard_normal((d, d)))[0]
    A = (rng.standard_normal((n, d)) * np.logspace(0, -np.log10(cond), d)) @ V.T
    Ax = A @ rng.standard_normal(d)
    return A, Ax + np.linalg.norm(Ax) / np.sqrt(n) * rng.standard_normal(n)


def _lstsq_case(da, nkd, log2n, d, chunk_rows, method="sketch", cond=None):
    rng = np.random.default_rng(1)
    if cond is None:
        A = rng.standard_normal((1 << log2n, d))
        b = A @ rng.standard_normal(d) + rng.standard_normal(1 << log2n)
    else:
        A, b = _ill_conditioned(rng, 1 << log2n, d, cond)
    Ad, bd = da.from_array(A, chunks=(chunk_rows, d)), da.from_array(b, chunks=chunk_rows)
    threads = numkern.get_num_threads()

    def run_dask():
        import dask

        with dask.config.set(scheduler="threads", num_workers=threads):
            return nkd.lstsq(Ad, bd, method=method, rng=5)

    impls = {
        f"dask threads, {(1 << log2n) // chunk_rows} row blocks": run_dask,
        "numkern.lstsq in memory": lambda: numkern.lstsq(A, b, method=method, sketch="gaussian", rng=5),
    }
    ref, got = impls["numkern.lstsq in memory"](), run_dask()
    same = bool(np.array_equal(ref.x, got.x)) and ref.iterations == got.iterations
    title = f"lstsq {method} (gaussian) 2^{log2n} x {d} float64" + (f", cond {cond:.0e}" if cond else "")
    note = (
        f"bit-identical answers: {same} ({ref.iterations} CG iterations incl. refinement); dask adds task "
        "overhead per pass" + ("" if method == "precondition" else ", the tile-tree merge and a residual pass")
    )
    return Case("dask", title, impls, reference="numkern.lstsq in memory", note=note)


# ------------------------------------------------------------------ the 4 GB run, never held whole


def _gen_A(block_info=None, d=64, seed=0, cond=None):
    (r0, r1), _ = block_info[None]["array-location"]
    g = np.random.default_rng([seed, r0])
    a = g.standard_normal((r1 - r0, d))
    if cond is None:
        return a
    V = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))[0]  # the same for every block
    return (a * np.logspace(0, -np.log10(cond), d)) @ V.T


def _gen_b(a, r0=0):
    x = np.linspace(-1, 1, a.shape[1])
    return a @ x + 0.1 * np.sin(np.arange(a.shape[0]))


def _gen_b_residual(a, r0=0):
    """b = A x + a residual as large as A x (for the ill-conditioned case: the refinement must run)."""
    ax = a @ np.linspace(-1, 1, a.shape[1])
    return ax + np.sqrt(np.mean(ax * ax)) * np.sin(np.arange(a.shape[0]) * 0.7)


def _generated(da, n, d, rows, cond=None):
    A = da.map_blocks(
        _gen_A, d=d, cond=cond, dtype=np.float64, chunks=((rows,) * (n // rows), (d,)), meta=np.empty((0, 0))
    )
    b = A.map_blocks(_gen_b if cond is None else _gen_b_residual, drop_axis=1, dtype=np.float64, meta=np.empty((0,)))
    return A, b


class _PeakRss:
    """Peak resident memory of this process while the block runs (sampled every 20 ms)."""

    def __enter__(self):
        import psutil

        self._proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _worker_maxrss():
    """Peak RSS of this process's address space (VmHWM). Not ru_maxrss: that one carries the high
    water mark of the parent across fork + exec, so a worker would report the driver's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _on_cluster(nkd, A, b, nw, label, out, persist=False, sketch="gaussian", method="sketch"):
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=nw,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(lambda: None)
        if persist:
            A, b = client.persist([A, b])
            distributed.wait([A, b])
        with _PeakRss() as drv:
            t0 = time.perf_counter()
            res = nkd.lstsq(A, b, method=method, sketch=sketch, rng=5)
            secs = time.perf_counter() - t0
        wrss = sorted(client.run(_worker_maxrss).values())
    row = {
        "family": "dask",
        "case": label,
        "impl": f"numkern.dask {sketch}, LocalCluster {nw} x 1 thread" + (", persisted" if persist else ""),
        "iterations": res.iterations,
        "seconds": secs,
        "driver_peak_rss_gib": drv.peak / 2**30,
        "worker_peak_rss_gib": [w / 2**30 for w in wrss],
    }
    out(
        f"  {row['impl']:<58} {secs:8.2f} s   driver peak {row['driver_peak_rss_gib']:.2f} GiB   worker peaks "
        + ", ".join(f"{w:.2f}" for w in row["worker_peak_rss_gib"])
        + " GiB"
    )
    return row, res


def _precondition_in_memory_vs_cluster(da, nkd, n, d, rows, out, cond=1e10):
    """method="precondition" on an ill-conditioned A (the double-double refinement runs): in memory
    vs 2 workers with A persisted, the same answer bit for bit."""
    label = f"lstsq precondition 2^{int(np.log2(n))} x {d} float64, cond {cond:.0e}"
    out(f"\n[dask] {label}: in memory vs persisted on a cluster (one run each)")
    A, b = _generated(da, n, d, rows, cond=cond)
    Am, bm = A.compute(scheduler="sync"), b.compute(scheduler="sync")
    with _PeakRss() as drv:
        t0 = time.perf_counter()
        ref = numkern.lstsq(Am, bm, method="precondition", sketch="gaussian", rng=5)
        secs = time.perf_counter() - t0
    lapack = np.linalg.lstsq(Am, bm, rcond=None)[0]
    del Am, bm
    out(
        f"  {'numkern.lstsq in memory (2 threads)':<40} {secs:8.2f} s   process peak {drv.peak / 2**30:.2f} GiB"
        f"   {ref.iterations} CG iterations incl. refinement"
    )
    out(
        f"  numpy.linalg.lstsq differs from it by {np.linalg.norm(lapack - ref.x) / np.linalg.norm(ref.x):.1e} "
        "(relative; LAPACK's float64 floor at this condition number)"
    )
    row, res = _on_cluster(nkd, A, b, 2, label, out, persist=True, method="precondition")
    same = bool(np.array_equal(res.x, ref.x)) and res.iterations == ref.iterations
    out(f"  same answer bit for bit: {same} ({res.iterations} iterations)")
    return [
        {
            "family": "dask",
            "case": label,
            "impl": "numkern.lstsq in memory",
            "seconds": secs,
            "driver_peak_rss_gib": drv.peak / 2**30,
            "iterations": ref.iterations,
        },
        row,
    ]


def big_lstsq(
    n_log2=23,
    d=64,
    rows=1 << 18,
    workers=(1, 2),
    in_memory_log2=23,
    out=print,
    sparse_workers=(2,),
    precondition_log2=21,
):
    """One-shot timings (each run is tens of seconds) of numkern.dask.lstsq (sketch, Gaussian) on a
    2^n_log2 x d float64 A generated chunkwise on LocalClusters of 1 and 2 worker processes, with
    the peak RSS of the driver (sampled) and of each worker (VmHWM of a fresh process); at
    2^in_memory_log2 rows (default: the same 4 GiB, which fits in this machine's memory as one
    array) numkern.lstsq in memory against the same data persisted on 2 workers; precondition on an
    ill-conditioned 2^precondition_log2 x d problem (the refinement runs) in memory vs 2 workers;
    then the sparse sign sketch on the big array."""
    import dask.array as da

    import numkern.dask as nkd

    results = []
    n = 1 << in_memory_log2
    label = f"lstsq sketch 2^{in_memory_log2} x {d} float64"
    out(f"\n[dask] {label}: in memory vs persisted on a cluster (one run each)")
    A, b = _generated(da, n, d, rows)
    with _PeakRss() as drv:
        t0 = time.perf_counter()
        Am, bm = A.compute(scheduler="sync"), b.compute(scheduler="sync")
        gen = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = numkern.lstsq(Am, bm, method="sketch", sketch="gaussian", rng=5)
        secs = time.perf_counter() - t0
    del Am, bm
    out(
        f"  {'numkern.lstsq in memory (2 threads)':<40} {secs:8.2f} s   process peak {drv.peak / 2**30:.2f} GiB"
        f"   (generating the data: {gen:.1f} s, not counted)"
    )
    results.append(
        {
            "family": "dask",
            "case": label,
            "impl": "numkern.lstsq in memory",
            "seconds": secs,
            "driver_peak_rss_gib": drv.peak / 2**30,
        }
    )
    row, res = _on_cluster(nkd, A, b, 2, label, out, persist=True)
    out(f"  same answer bit for bit: {bool(np.array_equal(res.x, ref.x))} (A persisted on the workers first)")
    results.append(row)

    results += _precondition_in_memory_vs_cluster(da, nkd, 1 << precondition_log2, d, rows, out)

    n = 1 << n_log2
    label = f"lstsq sketch 2^{n_log2} x {d} float64 ({n * d * 8 / 2**30:.0f} GiB) generated chunkwise"
    out(f"\n[dask] {label}, never held whole; row blocks of {rows} rows; generated twice (sketch pass, residual pass)")
    A, b = _generated(da, n, d, rows)
    for nw in workers:
        results.append(_on_cluster(nkd, A, b, nw, label, out)[0])
    for nw in sparse_workers:  # the sparse sign sketch: the pass costs little beyond generating A
        results.append(_on_cluster(nkd, A, b, nw, label, out, sketch="sparse_sign")[0])
    return results


def cases(quick: bool) -> list[Case]:
    da, nkd = _dask_or_none()
    if da is None:
        return []
    if quick:
        return [_softmax_case(da, nkd, 24, 8), _lstsq_case(da, nkd, 17, 32, 1 << 14)]
    big_lstsq()
    return [_softmax_case(da, nkd, 28, 8), _lstsq_case(da, nkd, 20, 32, 1 << 17, "precondition", 1e10)]
