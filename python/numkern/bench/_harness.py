"""Timing harness: every implementation of a case is timed in the same process, in blocks
interleaved round by round (a new seeded random order each round) so drift on a noisy machine hits
all of them alike, each block starting once every thread pool has gone idle; medians are reported."""

from __future__ import annotations

import gc
import json
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass
class Case:
    """One benchmark: implementations of the same operation on the same inputs.

    ``impls`` maps a label to a zero-argument callable. ``reference`` is the label the ratios are
    taken against (usually numkern's), ``note`` is printed under the table. ``bound`` marks
    labels that are memory-bandwidth bounds rather than implementations.
    """

    family: str
    name: str
    impls: Mapping[str, Callable[[], object]]
    reference: str
    note: str = ""
    bound: tuple[str, ...] = ()
    work: float | None = None  # operations per call, for a GOP/s column
    # The memory traffic of one call on numkern's pool (so it follows the thread count): the
    # bandwidth bound that ``--threads`` sets beside the case at each thread count.
    threaded_bound: Callable[[], object] | None = None
    # The same traffic written into a newly allocated array: the bound of the "(new output)" rows,
    # which pay the OS's first touch of every output page as well.
    threaded_bound_new: Callable[[], object] | None = None
    # Implementations that move more bytes than the case's bound by design (a three-pass softmax
    # reads its input three times): each one's own traffic, as its bound instead of the case's.
    threaded_bound_of: Mapping[str, Callable[[], object]] = field(default_factory=dict)
    # The part of an implementation that runs on one thread by design (the least-squares solvers'
    # LAPACK work on the small sketch, with BLAS held at one thread): ``--threads`` times it and
    # bounds the implementation at t threads by serial + bandwidth bound at t + the rest of the
    # one-thread time (less the serial part and the bandwidth bound's one-thread time) / t.
    serial_part_of: Mapping[str, Callable[[], object]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def time_once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def settle(max_wait: float = 0.5, window: float = 0.01) -> float:
    """Waits until no thread of this process burns CPU; returns the time waited.

    OpenBLAS, libgomp and oneDNN worker threads busy-wait after a call (OpenBLAS for ~2^28
    cycles, ~0.1 s here), holding a core that the next implementation timed would otherwise
    use: measured, int8_matmul on 2 threads ran at half speed right after an sgemm. The
    process CPU time counts every thread, so a quiet window means every pool has gone to sleep.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait:
        c0 = time.process_time()
        time.sleep(window)
        if time.process_time() - c0 < 0.2 * window:
            break
    return time.perf_counter() - start


def measure(case: Case, quick: bool) -> dict[str, list[float]]:
    """Times each implementation: warm-up, then rounds of one block of calls per implementation.

    Each block starts on a quiet machine (``settle``) and repeats the call for ~20 ms, so every
    implementation runs as it would in a user's loop of its own; the order of blocks is
    reshuffled (seeded) every round so slow drift hits all of them alike.
    """
    budget = 0.6 if quick else 3.0
    min_rounds, max_rounds = (5, 60) if quick else (11, 400)
    reps: dict[str, int] = {}
    for label, fn in case.impls.items():
        fn()  # warm-up: page faults, lazy init, caches
        settle()
        reps[label] = max(1, min(50, int(0.02 / max(time_once(fn), 1e-7))))
    times: dict[str, list[float]] = {k: [] for k in case.impls}
    start = time.perf_counter()
    rounds = 0
    gc_was = gc.isenabled()
    gc.disable()
    try:
        items = list(case.impls.items())
        order = random.Random(len(items))
        while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget):
            order.shuffle(items)
            for label, fn in items:
                settle()
                for _ in range(reps[label]):
                    times[label].append(time_once(fn))
            rounds += 1
    finally:
        if gc_was:
            gc.enable()
    return times


def _fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:9.1f} us"
    if s < 1:
        return f"{s * 1e3:9.2f} ms"
    return f"{s:9.3f} s "


def run_cases(cases: list[Case], quick: bool, out=print) -> list[dict]:
    rows = []
    for case in cases:
        times = measure(case, quick)
        med = {k: statistics.median(v) for k, v in times.items()}
        ref = med[case.reference]
        out(f"\n[{case.family}] {case.name}")
        out(
            f"  {'implementation':<34} {'median':>12}  {'time / ' + case.reference:>22}"
            + ("     GOP/s" if case.work else "")
        )
        for label, t in med.items():
            ratio = t / ref
            tag = " (bound)" if label in case.bound else ""
            gops = f"  {case.work / t / 1e9:8.1f}" if case.work else ""
            out(f"  {label + tag:<34} {_fmt_time(t):>12}  {ratio:>22.3f}{gops}")
            rows.append(
                {
                    "family": case.family,
                    "case": case.name,
                    "impl": label,
                    "median_s": t,
                    "ratio_to_reference": ratio,
                    "reference": case.reference,
                    "is_bound": label in case.bound,
                    "rounds": len(times[label]),
                    **({"gops": case.work / t / 1e9} if case.work else {}),
                    **case.extra,
                }
            )
        if case.note:
            out(f"  note: {case.note}")
    return rows


def write_json(rows: list[dict], path: str, meta: dict) -> None:
    with open(path, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)


def plot(rows: list[dict], path: str) -> None:
    """Bar chart of speed relative to each case's reference (higher is faster)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys((r["family"], r["case"]) for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(cases)), 4.5))
    labels = list(dict.fromkeys(r["impl"] for r in rows))
    width = 0.8 / max(1, len(labels))
    for j, label in enumerate(labels):
        xs, ys = [], []
        for i, c in enumerate(cases):
            for r in rows:
                if (r["family"], r["case"]) == c and r["impl"] == label:
                    xs.append(i + j * width)
                    ys.append(1.0 / r["ratio_to_reference"])
        ax.bar(xs, ys, width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))])
    ax.set_xticklabels([f"{f}\n{c}" for f, c in cases], fontsize=7)
    ax.set_ylabel("speed relative to reference (higher is faster)")
    ax.axhline(1.0, color="k", lw=0.5)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
