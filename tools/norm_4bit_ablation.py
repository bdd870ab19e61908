"""What limits 4-bit training on MNIST-1D: the same MLP and schedule as `python -m numkern train`
with the 4-bit quantization removed from one place at a time (3 seeds, mean test accuracy).

    PYTHONPATH=python python tools/norm_4bit_ablation.py [--epochs 40]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from numkern import _train, nn


def model_factory(fwd_bits, grad_bits, edge_bits):
    def build(n_in, n_out, bits, norm, rng):
        def lin(i, o, edge):
            b = edge_bits if edge else fwd_bits
            return nn.Linear(i, o, bits=b, grad_bits=grad_bits if b else None, rng=rng)

        norm_cls = nn.L1LayerNorm if norm == "l1" else nn.LayerNorm
        h = _train.HIDDEN
        return nn.Sequential(
            lin(n_in, h, True), norm_cls(h), nn.ReLU(), lin(h, h, False), norm_cls(h), nn.ReLU(), lin(h, n_out, True)
        )

    return build


CONFIGS = {
    "all 4-bit": (4, 4, 4),
    "gradients 8-bit, forward 4-bit": (4, 8, 4),
    "forward 8-bit, gradients 4-bit": (8, 4, 8),
    "first/last layer 8-bit, hidden 4-bit": (4, 4, 8),
    "all 8-bit": (8, 8, 8),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--norm", default="l1")
    a = ap.parse_args()
    original = _train.build_model
    try:
        for name, (fb, gb, eb) in CONFIGS.items():
            _train.build_model = model_factory(fb, gb, eb)
            accs = [
                100
                * _train.train("mnist1d", 4, a.norm, a.epochs, s, progress=False, out=lambda *_: None)["final_test_acc"]
                for s in (0, 1, 2)
            ]
            print(f"{name:40s} mean {statistics.mean(accs):6.2f}%  seeds {[f'{x:.1f}' for x in accs]}", flush=True)
    finally:
        _train.build_model = original


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
