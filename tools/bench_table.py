#!/usr/bin/env python3
"""Prints the rows of a `python -m numkern bench --json FILE` run as Markdown tables (one per case),
for BENCHMARKS.md. Usage: tools/bench_table.py FILE.json"""

import json
import sys


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


def main(path: str) -> None:
    with open(path) as f:
        rows = json.load(f)["rows"]
    cases = list(dict.fromkeys((r["family"], r["case"]) for r in rows))
    for fam, case in cases:
        sel = [r for r in rows if (r["family"], r["case"]) == (fam, case)]
        ref = sel[0]["reference"]
        print(f"\n**[{fam}] {case}**\n")
        print(f"| implementation | median | time / {ref} (= {ref}'s speed-up) |")
        print("|---|---:|---:|")
        for r in sel:
            label = r["impl"] + (" (bound)" if r.get("is_bound") else "")
            print(f"| {label} | {fmt(r['median_s'])} | {r['ratio_to_reference']:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
