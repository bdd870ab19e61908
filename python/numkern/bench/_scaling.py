"""The bench's scaling modes.

``--threads 1,2,...`` times numkern's implementations of every case at each thread count in one
process and prints the speed-up over one thread, the parallel efficiency, and, for cases that move
more memory than they compute, the memory-bandwidth bound at the same thread count (a copy of the
same bytes on numkern's pool). Implementations with a part that runs on one thread by design (the
least-squares solvers' LAPACK work on the sketch) are bounded by the three parts of their one-thread
time: that serial part (measured), their memory traffic (the bandwidth bound, which takes its own
time at t threads) and the rest, shared by the t threads. Beside every case, in the same rounds, it
times a loop of arithmetic alone on the pool: the speed-up the machine itself gave the threads
while the case was measured.

``--under-load`` times every case at the default thread count and at one thread, in alternating
blocks of calls (the ratio is the median of the rounds' ratios), while another process runs parallel
kernels in a loop beside it: first a second numkern process, then a
PyTorch one (if torch is installed). Each sibling is bounded in time and stopped when the
measurement ends. torch's own implementations of a case are timed the same way, side by side.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Callable

import numkern

from ._harness import Case, measure, settle, time_once

# Cases with at least this much one-thread work are expected to scale (or sit at their bound).
SCALING_MIN_WORK_S = 0.010
SCALING_MIN_SPEEDUP = 1.7
BOUND_SLACK = 1.15
LOAD_MAX_RATIO = 1.2


# The bound of rows that allocate their output: the case's traffic written into a new array.
NEW_BOUND = "bandwidth bound, new output (threaded copy)"


def _new_output(label: str) -> bool:
    return "new output" in label


# A loop of arithmetic alone on numkern's pool, timed beside every case in the same rounds: the
# speed-up the machine lent the threads while that case was measured (on a shared machine a second
# thread may get only part of a core, which no kernel can make up for).
PROBE = "compute-only loop on the pool (machine's own speed-up)"
PROBE_SECONDS = 0.002


def _probe() -> Callable[[], object]:
    """A compute_probe call of about PROBE_SECONDS at one thread."""
    from numkern import _core

    units = 64
    with numkern.thread_limit(1):
        while True:
            t0 = time.perf_counter()
            _core.compute_probe(units)
            took = time.perf_counter() - t0
            if took >= PROBE_SECONDS / 4 or units >= 1 << 18:
                break
            units *= 2
    units = max(1, min(1 << 20, round(units * PROBE_SECONDS / max(took, 1e-9))))
    return lambda: _core.compute_probe(units)


def _serial_label(label: str) -> str:
    return f"serial part of {label.removeprefix('numkern ')} (one thread by design)"


def _own_bound(label: str) -> str:
    return f"bandwidth bound of {label.removeprefix('numkern ')} (its own passes, threaded)"


def _pinned(label: str, case: Case) -> bool:
    """Implementations that fix their own thread count (or are peers) are not scaled."""
    text = f"{case.name} {label}".lower()
    return "thread" in text or label in case.bound


def scaled_impls(case: Case) -> dict[str, Callable[[], object]]:
    impls = {case.reference: case.impls[case.reference]}
    for label, fn in case.impls.items():
        if label.startswith("numkern") and not _pinned(label, case):
            impls[label] = fn
    return impls


def _with_threads(n: int, fn: Callable[[], object]) -> Callable[[], object]:
    def run():
        with numkern.thread_limit(n):
            return fn()

    return run


def run_threads(cases: list[Case], counts: list[int], quick: bool, out=print) -> list[dict]:
    """Times each case's numkern implementations at every thread count; returns JSON rows."""
    before = numkern.get_num_threads()
    rows = []
    try:
        numkern.set_num_threads(max(counts))
        probe = _probe()
        for case in cases:
            if case.name.lower().startswith(("1 thread", "one thread")):
                continue
            impls = {}
            for label, fn in scaled_impls(case).items():
                for t in counts:
                    impls[(label, t)] = _with_threads(t, fn)
            if case.threaded_bound is not None:
                for t in counts:
                    impls[("bandwidth bound (threaded copy)", t)] = _with_threads(t, case.threaded_bound)
            if case.threaded_bound_new is not None:
                for t in counts:
                    impls[(NEW_BOUND, t)] = _with_threads(t, case.threaded_bound_new)
            scaled = {key[0] for key in impls}
            own_bounds = {label: _own_bound(label) for label in case.threaded_bound_of if label in scaled}
            for label, bl in own_bounds.items():
                for t in counts:
                    impls[(bl, t)] = _with_threads(t, case.threaded_bound_of[label])
            for t in counts:
                impls[(PROBE, t)] = _with_threads(t, probe)
            serial = {label: _serial_label(label) for label in case.serial_part_of if label in scaled}
            for label, sl in serial.items():
                impls[(sl, counts[0])] = case.serial_part_of[label]
            keyed = {f"{label} @{t}": fn for (label, t), fn in impls.items()}
            times = measure(Case(case.family, case.name, keyed, reference=next(iter(keyed))), quick)
            med = {key: statistics.median(times[f"{key[0]} @{key[1]}"]) for key in impls}
            machine = {t: med[(PROBE, counts[0])] / med[(PROBE, t)] for t in counts}
            out(f"\n[{case.family}] {case.name}")
            out(
                f"  {'implementation':<46} {'threads':>7} {'median':>12} {'speed-up':>9} {'efficiency':>10} "
                f"{'/ bound':>8}  verdict"
            )
            bound_labels = {"bandwidth bound (threaded copy)", NEW_BOUND, PROBE, *own_bounds.values(), *serial.values()}
            for label in dict.fromkeys(k[0] for k in impls):
                if label in bound_labels:
                    continue
                bound_label = own_bounds.get(label) or (
                    NEW_BOUND if _new_output(label) and case.threaded_bound_new else "bandwidth bound (threaded copy)"
                )
                t1 = med[(label, counts[0])]
                for t in counts:
                    m = med[(label, t)]
                    speedup = med[(label, counts[0])] / m
                    bound = med.get((bound_label, t))
                    if label in serial:
                        # The one-thread time is the serial part, the memory traffic (the bandwidth
                        # bound's one-thread time, at most what is left) and the rest. At t threads the
                        # serial part stays, the traffic takes the bandwidth bound's time at t, and the
                        # rest is shared by the t threads.
                        s1 = med[(serial[label], counts[0])]
                        b1 = med.get((bound_label, counts[0])) or 0.0
                        traffic = min(b1, max(t1 - s1, 0.0))
                        moved = (bound or 0.0) * traffic / b1 if b1 else 0.0
                        bound = s1 + moved + max(t1 - s1 - traffic, 0.0) * counts[0] / t
                    to_bound = m / bound if bound else None
                    verdict = ""
                    if t > counts[0] and t1 >= SCALING_MIN_WORK_S:
                        wanted = SCALING_MIN_SPEEDUP / 2 * t / counts[0]  # 1.7x at 2 threads over 1
                        ok = speedup >= wanted or (to_bound is not None and to_bound <= BOUND_SLACK)
                        verdict = "ok" if ok else "below"
                    elif t > counts[0]:
                        verdict = "small"
                    out(
                        f"  {label:<46} {t:>7} {_fmt(m):>12} {speedup:>9.2f} {speedup / t * counts[0]:>10.2f} "
                        f"{(f'{to_bound:.2f}' if to_bound else '-'):>8}  {verdict}"
                    )
                    rows.append(
                        {
                            "mode": "threads",
                            "family": case.family,
                            "case": case.name,
                            "impl": label,
                            "threads": t,
                            "median_s": m,
                            "speedup": speedup,
                            "bound_s": bound,
                            "ratio_to_bound": to_bound,
                            "verdict": verdict,
                            "machine_speedup": machine[t],
                        }
                    )
            for bl, has in (
                ("bandwidth bound (threaded copy)", case.threaded_bound is not None),
                (NEW_BOUND, case.threaded_bound_new is not None),
                *((bl, True) for bl in own_bounds.values()),
            ):
                if has:
                    out(f"  {bl}: " + ", ".join(f"{t}: {_fmt(med[(bl, t)]).strip()}" for t in counts))
            out(f"  {PROBE}: " + ", ".join(f"{t}: {_fmt(med[(PROBE, t)]).strip()} ({machine[t]:.2f}x)" for t in counts))
            for sl in serial.values():
                out(
                    f"  {sl}: {_fmt(med[(sl, counts[0])]).strip()} (the bound of its row: serial + traffic at t + rest / t)"
                )
    finally:
        numkern.set_num_threads(before)
    return rows


def _fmt(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


_SIBLINGS = {
    "numkern": (
        "import numpy as np, numkern\n"
        "x = np.random.default_rng(0).standard_normal((512, 4096), dtype=np.float32)\n"
        "out = np.empty_like(x)\n"
        "while {alive}:\n"
        "    for _ in range(50):\n"
        "        numkern.l1_norm(x, out=out)\n"
    ),
    "torch": (
        "import torch\n"
        "x = torch.randn(512, 4096)\n"
        "while {alive}:\n"
        "    for _ in range(50):\n"
        "        torch.nn.functional.layer_norm(x, (4096,))\n"
    ),
}


@contextlib.contextmanager
def sibling(kind: str, max_seconds: float) -> Iterator[subprocess.Popen]:
    """Runs another process that loops parallel kernels until the block ends (at most
    `max_seconds`, and never past this process: it exits when its parent does)."""
    deadline = time.time() + max_seconds
    alive = f"time.time() < {deadline!r} and os.getppid() == {os.getpid()}"
    code = "import os, time\n" + _SIBLINGS[kind].format(alive=alive)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # imports done, loop running
        if proc.poll() is not None:
            err = (proc.stderr.read() if proc.stderr else b"").decode()[-500:]
            raise RuntimeError(f"the {kind} sibling process exited: {err}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _torch_impls(case: Case) -> dict[str, Callable[[], object]]:
    return {label: fn for label, fn in case.impls.items() if label.startswith("torch") and "1 thread" not in label}


def _torch_threads(n: int, fn):
    """fn with torch at n threads; the default and the one-thread call both go through this, so
    the setting's own cost is in both."""
    import torch

    def run():
        threads = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            return fn()
        finally:
            torch.set_num_threads(threads)

    return run


def measure_pairs(
    pairs: dict[str, tuple[Callable[[], object], Callable[[], object]]],
) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """Times each (default, one-thread) pair in alternation: every round, on a quiet process
    (``settle``), a block of calls of one and then a block of the other (their order flipped every
    round; blocks of ~20 ms of calls, the same count for both), for at least 11 rounds and ~3 s.
    Returns, per pair, every call's time for each setting and each round's ratio of the two blocks'
    medians.

    A sibling that holds the cores for a scheduler time slice now and then makes a call's time
    bimodal (measured: 2.4 ms or 6.5 ms for a call that runs on one thread either way), and the
    median over separate blocks of each then lands on either mode by chance; blocks side by side
    meet the same phase of the sibling, so the median of their ratios compares the two settings,
    not the sibling's phase."""
    reps = {}
    for name, (a, b) in pairs.items():  # warm-up: page faults, lazy init, caches
        a()
        b()
        settle()
        reps[name] = max(1, min(50, int(0.02 / max(time_once(a), 1e-7))))
    times: dict[str, tuple[list[float], list[float], list[float]]] = {name: ([], [], []) for name in pairs}
    start = time.perf_counter()
    rounds = 0
    while rounds < 400 and (rounds < 11 or time.perf_counter() - start < 3.0):
        for name, (a, b) in pairs.items():
            settle()
            dflt, one, ratios = times[name]
            block = {}
            for fn in (b, a) if rounds % 2 else (a, b):
                block[fn] = [time_once(fn) for _ in range(reps[name])]
            dflt += block[a]
            one += block[b]
            ratios.append(statistics.median(block[a]) / statistics.median(block[b]))
        rounds += 1
    return times


def run_under_load(cases: list[Case], quick: bool, siblings: list[str], max_seconds: float, out=print) -> list[dict]:
    """For each sibling kind: every case's reference at the default thread count and at one thread
    (and torch's implementations likewise), in alternation (measure_pairs), while the sibling runs."""
    rows = []
    threads = numkern.get_num_threads()
    for kind in siblings:
        if kind == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                out("\ntorch is not installed: no torch sibling")
                continue
        out(
            f"\n== under load: a {kind} process loops parallel kernels beside this one "
            f"(numkern default {threads} threads vs 1 thread)"
        )
        with sibling(kind, max_seconds) as proc:
            for case in cases:
                if case.name.lower().startswith(("1 thread", "one thread")):
                    continue
                if proc.poll() is not None:
                    raise RuntimeError(f"the {kind} sibling process stopped early")
                ref = case.impls[case.reference]
                # Both through the same wrapper, so its cost (about a microsecond) is in both.
                pairs = {"numkern": (_with_threads(threads, ref), _with_threads(1, ref))}
                for label, fn in list(_torch_impls(case).items())[:1]:
                    import torch

                    pairs["torch"] = (_torch_threads(torch.get_num_threads(), fn), _torch_threads(1, fn))
                    torch_label = label
                timed = measure_pairs(pairs)
                med = {}
                for name, (dflt, one, ratios) in timed.items():
                    med[f"{name} default"] = statistics.median(dflt)
                    med[f"{name} 1 thread"] = statistics.median(one)
                    med[f"{name} ratio"] = statistics.median(ratios)
                ratio = med["numkern ratio"]
                line = (
                    f"  [{case.family}] {case.name:<44} {case.reference[:40]:<40} "
                    f"default {_fmt(med['numkern default']):>10}  1 thread {_fmt(med['numkern 1 thread']):>10}  "
                    f"ratio {ratio:5.2f} {'ok' if ratio <= LOAD_MAX_RATIO else 'ABOVE'}"
                )
                row = {
                    "mode": "under_load",
                    "sibling": kind,
                    "family": case.family,
                    "case": case.name,
                    "impl": case.reference,
                    "default_s": med["numkern default"],
                    "one_thread_s": med["numkern 1 thread"],
                    "ratio": ratio,
                }
                if "torch default" in med:
                    tr = med["torch ratio"]
                    line += f"   | torch ({torch_label[:28]}) ratio {tr:5.2f}"
                    row.update(
                        torch_impl=torch_label,
                        torch_default_s=med["torch default"],
                        torch_one_thread_s=med["torch 1 thread"],
                        torch_ratio=tr,
                    )
                out(line)
                rows.append(row)
    return rows
