"""The character-level Transformer reproduction of docs/design/transformer.md: runs configurations of
``python -m numkern train --model transformer`` one after another (each a fresh process, its JSON in
a folder; a configuration whose JSON exists is not run again), and builds the table from the JSONs.

    PYTHONPATH=python python tools/transformer_train_table.py run --out runs/ --epochs 2 [--configs 32:l2 6:l1 ...]
    PYTHONPATH=python python tools/transformer_train_table.py table runs/

Without ``--configs`` the runs go in the order of the paper's comparison first: fp32 + LayerNorm and
6-bit + L1 norm, then 8-bit, the other norms and 4-bit; seeds 0, 1, 2 for each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys

SEEDS = (0, 1, 2)
ORDER = ("32:l2", "6:l1", "8:l1", "6:l2", "32:l1", "8:l2", "4:l1", "4:l2")


def _name(bits: int, norm: str, seed: int) -> str:
    return f"b{bits}_{norm}_s{seed}.json"


def run(args) -> int:
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for config in args.configs or ORDER:
        bits, norm = config.split(":")
        for seed in args.seeds:
            path = out / _name(int(bits), norm, seed)
            if path.exists():
                continue
            cmd = [sys.executable, "-m", "numkern", "train", "--model", "transformer", "--bits", bits, "--norm", norm]
            cmd += ["--epochs", str(args.epochs), "--seed", str(seed), "--no-progress", "--json", str(path)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            print("$", " ".join(cmd[1:]), flush=True)
            if subprocess.run(cmd, env=os.environ.copy()).returncode:
                return 1
    return 0


def _rows(folder: pathlib.Path):
    groups: dict[tuple[int, str], list[dict]] = {}
    for path in sorted(folder.glob("b*_l*_s*.json")):
        r = json.loads(path.read_text())
        groups.setdefault((r["bits"], r["norm"]), []).append(r)
    return groups


def table(args) -> int:
    groups = _rows(pathlib.Path(args.folder))
    if not groups:
        print("no runs found", file=sys.stderr)
        return 1
    ref = groups.get((32, "l2"))
    ref_mean = statistics.mean(r["final_val_bpc"] for r in ref) if ref else math.nan
    any_run = next(iter(groups.values()))[0]
    print(
        f"Python {any_run['data']['python']}, {any_run['data']['train_chars']} train / "
        f"{any_run['data']['val_chars']} validation characters, {any_run['epochs']} epochs, "
        f"{any_run['steps']} steps of {any_run['batch']} x {any_run['context']}"
    )
    print(f"unigram model: {any_run['unigram_bpc']:.4f} bits/char\n")
    print("| bits | norm | validation bpc, mean ± std | seeds 0, 1, 2 | vs fp32 + LayerNorm | seconds per run |")
    print("|---|---|---|---|---|---|")
    for bits in (32, 8, 6, 4):
        for norm in ("l2", "l1"):
            rs = sorted(groups.get((bits, norm), []), key=lambda r: r["seed"])
            if not rs:
                continue
            v = [r["final_val_bpc"] for r in rs]
            mean = statistics.mean(v)
            sd = statistics.stdev(v) if len(v) > 1 else math.nan
            gap = 100 * (mean - ref_mean) / ref_mean
            secs = statistics.mean(r["seconds"] for r in rs)
            label = "fp32" if bits == 32 else f"{bits}"
            print(
                f"| {label} | {'L1' if norm == 'l1' else 'L2 (LayerNorm)'} | {mean:.4f} ± {sd:.4f} | "
                f"{' '.join(f'{x:.4f}' for x in v)} | {gap:+.2f}% | {secs:.0f} |"
            )
    six = groups.get((6, "l1"))
    if six and ref:
        gap = 100 * (statistics.mean(r["final_val_bpc"] for r in six) - ref_mean) / ref_mean
        verdict = "within" if abs(gap) <= 2 else "NOT within"
        print(f"\n6-bit + L1 vs fp32 + LayerNorm: {gap:+.2f}% relative ({verdict} 2%; seeds {len(six)} / {len(ref)})")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--epochs", type=int, default=2)
    r.add_argument("--configs", nargs="*", help="BITS:NORM, e.g. 32:l2 6:l1 (default: all, in ORDER)")
    r.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    r.add_argument("--threads", type=int, default=None)
    r.set_defaults(func=run)
    t = sub.add_parser("table")
    t.add_argument("folder")
    t.set_defaults(func=table)
    a = ap.parse_args()
    return a.func(a)


if __name__ == "__main__":
    sys.exit(main())
