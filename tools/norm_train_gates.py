"""Runs the low-bit training accuracy comparisons of docs/design/norm.md: every configuration with the same epochs and
hyper-parameters, seeds 0, 1, 2, and prints mean test accuracies and the gate verdicts.

    PYTHONPATH=python python tools/norm_train_gates.py [--digits-epochs N] [--mnist1d-epochs N] [--json F]
"""

from __future__ import annotations

import argparse
import json
import statistics

from numkern._train import train

SEEDS = (0, 1, 2)


def run(dataset, bits, norm, epochs, results):
    accs = []
    for seed in SEEDS:
        r = train(dataset, bits, norm, epochs, seed, progress=False, out=lambda *_: None)
        accs.append(100 * r["final_test_acc"])
        results.append({k: r[k] for k in ("dataset", "bits", "norm", "epochs", "seed", "final_test_acc", "seconds")})
    mean = statistics.mean(accs)
    print(f"{dataset:8s} bits={bits:2d} norm={norm}: mean {mean:6.2f}%  seeds {[f'{a:.2f}' for a in accs]}", flush=True)
    return mean


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--digits-epochs", type=int, default=20)
    ap.add_argument("--mnist1d-epochs", type=int, default=40)
    ap.add_argument("--json")
    a = ap.parse_args()
    results = []
    d = {(b, n): run("digits", b, n, a.digits_epochs, results) for n in ("l2", "l1") for b in (32, 8, 6)}
    m = {(b, n): run("mnist1d", b, n, a.mnist1d_epochs, results) for n in ("l1", "l2") for b in (32, 6, 4)}
    gates = []
    for n in ("l1", "l2"):
        for b in (8, 6):
            gap = d[(32, n)] - d[(b, n)]
            gates.append((f"digits {b}-bit within 1 point of fp32 (norm {n})", gap, gap <= 1.0))
    for b in (32, 8, 6):
        gap = d[(b, "l2")] - d[(b, "l1")]
        gates.append((f"digits L1 within 1 point of L2 (bits {b})", gap, gap <= 1.0))
    for n in ("l1", "l2"):
        gap6 = m[(32, n)] - m[(6, n)]
        gap4 = m[(32, n)] - m[(4, n)]
        gates.append((f"mnist1d 6-bit within 1 point of fp32 (norm {n})", gap6, gap6 <= 1.0))
        gates.append((f"mnist1d 4-bit within 8 points of fp32 (norm {n})", gap4, gap4 <= 8.0))
    print()
    for name, gap, ok in gates:
        print(f"{'MET    ' if ok else 'NOT MET'} {name}: gap {gap:+.2f} points")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": results, "gates": [{"gate": g, "gap": x, "met": ok} for g, x, ok in gates]}, f, indent=1)


if __name__ == "__main__":
    main()
