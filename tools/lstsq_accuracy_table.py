#!/usr/bin/env python3
"""Prints the forward-error table of docs/design/sketch.md: numkern.lstsq(method="precondition") and
numpy.linalg.lstsq against the exact least-squares solution of the stored float64 problem.
Usage: python tools/lstsq_accuracy_table.py (needs numkern importable; the test helpers are read
from tests/)."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from _lstsq_families import exact_lstsq, incoherent  # noqa: E402

import numkern  # noqa: E402


def main() -> None:
    rng = np.random.default_rng(1)
    print(
        "| cond | `||r|| / ||A x*||` | numkern precondition (srht) | CG iterations | numpy.linalg.lstsq (gelsd) | `x*` of the construction |"
    )
    print("|---|---|---|---|---|---|")
    for cond, r_scale in [(1, 1.0), (1e3, 1.0), (1e6, 1.0), (1e10, 0.0), (1e10, 1.0), (1e10, 1e3), (1e12, 1.0)]:
        P = incoherent(rng, 4096, 16, cond)
        b = P.A @ P.x + r_scale * (P.b - P.A @ P.x)
        x_exact = exact_lstsq(P.A, b)

        def err(x, x_exact=x_exact):
            return np.linalg.norm(x - x_exact) / np.linalg.norm(x_exact)

        res = numkern.lstsq(P.A, b, method="precondition", rng=0)
        ref = np.linalg.lstsq(P.A, b, rcond=None)[0]
        print(f"| {cond:.0e} | {r_scale:g} | {err(res.x):.1e} | {res.iterations} | {err(ref):.1e} | {err(P.x):.1e} |")


if __name__ == "__main__":
    main()
