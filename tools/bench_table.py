#!/usr/bin/env python3
"""Turns ``python -m numkern bench --json FILE`` runs into BENCHMARKS.md and the docs' benchmarks page.

Usage::

    python tools/bench_table.py RUN.json [RUN.json ...] [--output BENCHMARKS.md] [--plots DIR]

Each family gets one table (every case of the run, every implementation, its median and its time
relative to the case's reference row) under a line naming the machine, the command, the numkern
version and the date recorded in the JSON. When several runs hold the same family, the last one
given wins. ``--plots DIR`` also writes one bar chart per family (needs matplotlib). The Sphinx
build calls :func:`write_docs_page` on the JSON files committed under ``docs/bench/``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FAMILY_ORDER = ("softmax", "quant", "norm", "sketch", "dp", "dask")

REPRODUCE = """\
## How to reproduce

```
pip install ".[bench]"
python -m numkern bench --quick --json run.json          # all families, small sizes (a few minutes)
python -m numkern bench softmax quant --json run.json     # chosen families at full size
python -m numkern bench --quick --threads 1,2 --json threads.json   # scaling with threads
python -m numkern bench --quick --under-load --json load.json       # beside a busy process
python tools/bench_table.py run.json threads.json load.json --output BENCHMARKS.md --plots docs/_static/bench
```

Every implementation of a case is timed in the same process, in blocks interleaved round by round
(a new seeded order each round), each block starting once every thread pool of the process has
gone idle; the figures are medians. Read the ratios rather than the absolute times: on a shared
machine repeated runs of one case differ by 10-25 %. A ratio above 1 means the implementation took
longer than the reference row (numkern's, unless the case says otherwise); rows marked "(bound)"
are memory-bandwidth bounds measured in the same run, not implementations.
"""


def fmt_time(seconds: float) -> str:
    """A median in the unit that keeps three or four significant digits."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def load_runs(paths: Iterable[Path]) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Maps each family to the (meta, rows) of the last run that measured it."""
    families: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        meta = run.get("meta", {})
        if meta.get("mode", "peers") != "peers":
            continue  # --threads / --under-load runs have tables of their own (render_modes)
        for fam in dict.fromkeys(r["family"] for r in run["rows"]):
            families[fam] = (meta, [r for r in run["rows"] if r["family"] == fam])
    order = [f for f in FAMILY_ORDER if f in families] + sorted(set(families) - set(FAMILY_ORDER))
    return {f: families[f] for f in order}


def describe_run(meta: dict[str, Any]) -> str:
    """One line: machine, command, numkern version and date of a run."""
    info = meta.get("cpu_info", {})
    machine = meta.get("processor") or meta.get("machine") or info.get("arch", "unknown CPU")
    isa = info.get("active", "?")
    threads = info.get("num_threads", "?")
    parts = [
        f"Machine: {machine}, ISA level {isa}, {threads} threads",
        f"command `{meta.get('command', 'python -m numkern bench')}`",
        f"numkern {meta.get('numkern', '?')}, NumPy {meta.get('numpy', '?')}, Python {meta.get('python', '?')}",
        f"date {meta.get('date', '?')}",
    ]
    return "; ".join(parts) + "."


def family_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The Markdown table of one family: one line per (case, implementation)."""
    lines = [
        "| case | implementation | median | time / reference |",
        "|---|---|---:|---:|",
    ]
    for case in dict.fromkeys(r["case"] for r in rows):
        sel = [r for r in rows if r["case"] == case]
        for i, r in enumerate(sel):
            label = r["impl"] + (" (bound)" if r.get("is_bound") else "")
            if r["impl"] == r["reference"]:
                label = f"**{label}** (reference)"
            shown_case = case if i == 0 else ""
            lines.append(f"| {shown_case} | {label} | {fmt_time(r['median_s'])} | {r['ratio_to_reference']:.2f} |")
    return lines


def render(paths: Sequence[Path], *, heading: str, plots: dict[str, str] | None = None, level: int = 2) -> str:
    """The Markdown text: a heading, then per family (a heading of ``level``) the run's description,
    its plot and its table."""
    out = [heading, ""]
    for fam, (meta, rows) in load_runs(paths).items():
        out += [f"{'#' * level} {fam}", "", describe_run(meta), ""]
        if plots and fam in plots:
            out += [f"![{fam}: speed relative to each case's reference]({plots[fam]})", ""]
        out += family_table(rows) + [""]
    out += render_modes(paths, level)
    out.append(REPRODUCE.replace("## ", "#" * level + " ", 1))
    return "\n".join(out)


def _mode(meta: dict[str, Any]) -> str:
    return meta.get("mode", "peers")


def load_mode_rows(paths: Iterable[Path], mode: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """(meta, rows) of the last run in `mode` ("threads" or "under_load"), or None."""
    found = None
    for path in paths:
        with open(path) as f:
            run = json.load(f)
        if _mode(run.get("meta", {})) == mode:
            found = (run.get("meta", {}), run["rows"])
    return found


def scaling_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per (case, implementation): the median at each thread count, the speed-up and
    efficiency at the largest, its ratio to the threaded bandwidth bound, and the verdict."""
    counts = sorted({r["threads"] for r in rows})
    head = "| family | case | implementation | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in counts)
    head += f" | speed-up at {counts[-1]} | efficiency | time / bound at {counts[-1]} | machine's speed-up | verdict |"
    lines = [head, "|---|---|---|" + "---:|" * len(counts) + "---:|---:|---:|---:|---|"]
    keys = list(dict.fromkeys((r["family"], r["case"], r["impl"]) for r in rows))
    for fam, case, impl in keys:
        sel = {r["threads"]: r for r in rows if (r["family"], r["case"], r["impl"]) == (fam, case, impl)}
        top = sel[counts[-1]]
        bound = f"{top['ratio_to_bound']:.2f}" if top.get("ratio_to_bound") else "-"
        times = " | ".join(fmt_time(sel[t]["median_s"]) for t in counts)
        eff = top["speedup"] / counts[-1] * counts[0]
        machine = f"{top['machine_speedup']:.2f}" if top.get("machine_speedup") else "-"
        lines.append(
            f"| {fam} | {case} | {impl} | {times} | {top['speedup']:.2f} | {eff:.2f} | {bound} | {machine} | "
            f"{top.get('verdict') or '-'} |"
        )
    return lines


def load_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per (sibling, case): numkern at its default thread count and at one thread under
    the same load, their ratio, and torch's ratio for its own implementation of the case."""
    lines = [
        "| process beside | family | case | numkern default | numkern 1 thread | ratio | torch implementation | torch ratio |",
        "|---|---|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        torch_ratio = f"{r['torch_ratio']:.2f}" if "torch_ratio" in r else "-"
        lines.append(
            f"| {r['sibling']} | {r['family']} | {r['case']} | {fmt_time(r['default_s'])} | "
            f"{fmt_time(r['one_thread_s'])} | {r['ratio']:.2f} | {r.get('torch_impl', '-')} | {torch_ratio} |"
        )
    return lines


SCALING_TEXT = """\
`python -m numkern bench --threads 1,2` times numkern's implementations of every case at each
thread count in one process. Speed-up is the one-thread median over the median at the largest
count; the bound is a copy (or read) of the case's bytes on numkern's pool at the same thread count
(for the three-pass softmax rows, of their own three passes; for rows that write a new output, into
a newly allocated array, so that it pays the same first touch of every page). The least-squares
solvers run their LAPACK work on the small sketch with BLAS at one thread (a multi-threaded
OpenBLAS beside numkern's pool is many times slower on a busy machine); their one-thread time is
split into that serial part (measured on its own), their memory traffic (the bandwidth bound's
one-thread time) and the rest, and their bound at t threads is the serial part plus the bandwidth
bound at t plus the rest shared by the t threads.
The machine's speed-up is that of a loop of arithmetic alone (no memory traffic) on the same pool,
timed in the same rounds as the case: on a shared machine the second thread may get only part of
a core, and no kernel scales past what the machine lends it.
Verdict: "ok" when a case with at least 10 ms of one-thread work reaches 1.7x at 2 threads or is
within 1.15x of its bound at 2 threads, "below" otherwise, "small" under 10 ms."""

LOAD_TEXT = """\
`python -m numkern bench --under-load` times every case at the default thread count and at one
thread while another process loops parallel kernels beside it (a numkern process running `l1_norm`
on 512 x 4096 float32, then a PyTorch process running `layer_norm` on the same shape, both at their
default thread counts). The two settings alternate: every round, a block of calls of each (about
20 ms, the same count for both) back to back, their order flipped every round, at least 11 rounds
and about 3 s, so both meet the same phase of the sibling. Ratio: the median over the rounds of the
default block's median over the one-thread block's (at most 1.2 is the goal: a busy machine should
not make the threaded call slower than a one-thread one); the times shown are the medians of all
calls of each. torch's ratio is the same measurement
for torch's implementation of the case."""


def render_modes(paths: Sequence[Path], level: int = 2) -> list[str]:
    out: list[str] = []
    threads = load_mode_rows(paths, "threads")
    if threads:
        meta, rows = threads
        out += [f"{'#' * level} Scaling with threads", "", describe_run(meta), "", SCALING_TEXT, ""]
        out += scaling_table(rows) + [""]
    loaded = load_mode_rows(paths, "under_load")
    if loaded:
        meta, rows = loaded
        out += [f"{'#' * level} On a busy machine", "", describe_run(meta), "", LOAD_TEXT, ""]
        out += load_table(rows) + [""]
    return out


def plot_family(fam: str, rows: Sequence[dict[str, Any]], target: Path) -> None:
    """Horizontal bars, one per implementation, grouped by case: time relative to the case's
    reference row on a log scale (left of 1: faster than the reference, right: slower)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels: list[str] = []
    values: list[float] = []
    colors: list[str] = []
    separators: list[float] = []
    for case in dict.fromkeys(r["case"] for r in rows):
        if labels:
            separators.append(len(labels) - 0.5)
        for r in (r for r in rows if r["case"] == case):
            short = case if len(case) <= 48 else case[:47] + "..."
            labels.append(f"{short}: {r['impl']}" if r["impl"] == r["reference"] else f"    {r['impl']}")
            values.append(r["ratio_to_reference"])
            colors.append(
                "tab:gray" if r.get("is_bound") else "tab:blue" if r["impl"] == r["reference"] else "tab:orange"
            )
    fig, ax = plt.subplots(figsize=(7.5, 0.22 * len(labels) + 1.2))
    ys = list(range(len(labels)))
    ax.barh(ys, values, color=colors, height=0.7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="k", lw=0.6)
    for y in separators:
        ax.axhline(y, color="0.8", lw=0.6)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time / reference (numkern's row of the case; log scale, right of 1 is slower)", fontsize=8)
    ax.set_title(f"{fam} (blue: reference row, gray: bandwidth bound)", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def write_plots(paths: Sequence[Path], plot_dir: Path) -> dict[str, Path]:
    """One chart per family as ``plot_dir/<family>.png`` (needs matplotlib)."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for fam, (_meta, rows) in load_runs(paths).items():
        target = plot_dir / f"{fam}.png"
        plot_family(fam, rows, target)
        written[fam] = target
    return written


BENCHMARKS_HEADING = """\
# numkern benchmarks

One table per kernel family, generated by `tools/bench_table.py` from the JSON file that
`python -m numkern bench --json` writes (the run's machine, command, numkern version and date are
given per family). The committed runs are under `docs/bench/`; the documentation's benchmarks page
is built from the same files."""

DOCS_HEADING = """\
<!-- Generated by tools/bench_table.py from docs/bench/*.json during the docs build; do not edit. -->"""


def write_docs_page(paths: Sequence[Path], target: Path, plot_dir: Path) -> None:
    """The tables of the docs' benchmarks page; shows the committed plots found in ``plot_dir``."""
    plots = {}
    for fam in load_runs(paths):
        png = plot_dir / f"{fam}.png"
        if png.exists():
            plots[fam] = "/" + str(png.relative_to(target.parent.parent)).replace("\\", "/")
    text = render(paths, heading=DOCS_HEADING, plots=plots, level=1)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="JSON files written by `python -m numkern bench --json`")
    parser.add_argument("--output", type=Path, help="write this Markdown file (default: print it)")
    parser.add_argument("--plots", type=Path, metavar="DIR", help="also write DIR/<family>.png")
    args = parser.parse_args(argv)
    if args.plots:
        write_plots(args.runs, args.plots)
    text = render(args.runs, heading=BENCHMARKS_HEADING)
    if args.output:
        args.output.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
