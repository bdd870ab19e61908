"""``python -m numkern train``: an MLP with L1 or L2 normalization and float or ShiftQuant
(8/6/4-bit) GEMMs, trained on scikit-learn's digits or a locally generated MNIST-1D; with
``--model transformer``, a character-level Transformer on the Python standard library's sources
(``numkern._train_lm``)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import time

import numpy as np

from . import nn

HIDDEN = 256
BATCH = 64
LR = 2e-3


@contextlib.contextmanager
def _single_thread():
    """Batches of 64 are far too small to thread (BLAS or numkern); on a busy machine the
    threads of a tiny GEMM mostly wait for each other."""
    from . import get_num_threads, set_num_threads

    before = get_num_threads()
    set_num_threads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - optional
            yield
        else:
            with threadpool_limits(1, user_api="blas"):
                yield
    finally:
        set_num_threads(before)


@functools.cache
def load_dataset(name: str):
    """(x_train, y_train, x_test, y_test) as float32 / int64, standardized on the train split."""
    if name == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError as e:  # pragma: no cover - optional extra
            raise SystemExit("the digits dataset needs scikit-learn: pip install 'numkern[train]'") from e
        d = load_digits()
        x, y = d.data.astype(np.float32), d.target.astype(np.int64)
        order = np.random.default_rng(0).permutation(len(y))  # one fixed split for every seed
        cut = int(0.8 * len(y))
        xtr, ytr, xte, yte = x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]
    elif name == "mnist1d":
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError as e:  # pragma: no cover - optional extra
            raise SystemExit("the mnist1d dataset needs the mnist1d package: pip install 'numkern[train]'") from e
        # make_dataset reseeds NumPy's legacy global generator: keep the caller's state around it.
        state = np.random.get_state()  # noqa: NPY002
        try:
            d = make_dataset(get_dataset_args())  # generated locally (seed 42, 4000 / 1000), no download
        finally:
            np.random.set_state(state)  # noqa: NPY002
        xtr, ytr = d["x"].astype(np.float32), d["y"].astype(np.int64)
        xte, yte = d["x_test"].astype(np.float32), d["y_test"].astype(np.int64)
    else:
        raise SystemExit(f"unknown dataset {name!r}: choose digits or mnist1d")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    return (xtr - mu) / sd, ytr, (xte - mu) / sd, yte


def build_model(n_in: int, n_out: int, bits: int, norm: str, rng: np.random.Generator, edge_bits=None) -> nn.Sequential:
    """The MLP; ``edge_bits`` (8 or 32) overrides ``bits`` for the first and last Linear."""
    qbits = None if bits == 32 else bits
    ebits = qbits if edge_bits is None else (None if edge_bits == 32 else edge_bits)
    norm_cls = nn.L1LayerNorm if norm == "l1" else nn.LayerNorm
    return nn.Sequential(
        nn.Linear(n_in, HIDDEN, bits=ebits, rng=rng),
        norm_cls(HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN, bits=qbits, rng=rng),
        norm_cls(HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, n_out, bits=ebits, rng=rng),
    )


def accuracy(model, x, y) -> float:
    model.eval()
    pred = model.forward(x).argmax(axis=1)
    model.train()
    return float((pred == y).mean())


def _bar(done: int, total: int, width: int = 28) -> str:
    fill = int(width * done / max(1, total))
    return "[" + "#" * fill + "." * (width - fill) + f"] {done}/{total}"


def train(dataset: str, bits: int, norm: str, epochs: int, seed: int, progress=True, out=print, edge_bits=None) -> dict:
    """Trains one configuration; returns its settings, per-epoch history and final accuracy."""
    with _single_thread():
        return _train(dataset, bits, norm, epochs, seed, progress, out, edge_bits)


def _train(dataset, bits, norm, epochs, seed, progress, out, edge_bits):
    xtr, ytr, xte, yte = load_dataset(dataset)
    rng = np.random.default_rng(seed)
    if edge_bits is None:
        model = build_model(xtr.shape[1], int(ytr.max()) + 1, bits, norm, rng)
    else:
        model = build_model(xtr.shape[1], int(ytr.max()) + 1, bits, norm, rng, edge_bits=edge_bits)
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = nn.Adam(model.parameters(), lr=LR)
    steps = (len(ytr) + BATCH - 1) // BATCH
    history = []
    out(
        f"train {dataset}: {len(ytr)} train / {len(yte)} test, MLP {xtr.shape[1]}-{HIDDEN}-{HIDDEN}-{int(ytr.max()) + 1}, "
        f"bits={bits}{'' if edge_bits is None else f' (first/last layer {edge_bits})'}, norm={norm}, epochs={epochs}, seed={seed}, Adam lr={LR} (cosine), batch={BATCH}"
    )
    t_start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        opt.lr = LR * 0.5 * (1 + np.cos(np.pi * (epoch - 1) / epochs))
        order = rng.permutation(len(ytr))
        total, correct, t0 = 0.0, 0, time.perf_counter()
        for step in range(steps):
            idx = order[step * BATCH : (step + 1) * BATCH]
            logits = model.forward(xtr[idx])
            total += loss_fn.forward(logits, ytr[idx]) * len(idx)
            correct += int((logits.argmax(1) == ytr[idx]).sum())
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
            if progress and sys.stderr.isatty():
                print(f"\r  epoch {epoch:3d} {_bar(step + 1, steps)}", end="", file=sys.stderr, flush=True)
        if progress and sys.stderr.isatty():
            print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
        row = {
            "epoch": epoch,
            "loss": total / len(ytr),
            "train_acc": correct / len(ytr),
            "test_acc": accuracy(model, xte, yte),
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        out(
            f"  epoch {epoch:3d}/{epochs} {_bar(epoch, epochs, 10)}  loss {row['loss']:.4f}  "
            f"train {100 * row['train_acc']:5.1f}%  test {100 * row['test_acc']:5.1f}%  ({row['seconds']:.2f} s)"
        )
    result = {
        "dataset": dataset,
        "bits": bits,
        "edge_bits": edge_bits,
        "norm": norm,
        "epochs": epochs,
        "seed": seed,
        "hidden": HIDDEN,
        "batch": BATCH,
        "lr": LR,
        "final_test_acc": history[-1]["test_acc"] if history else accuracy(model, xte, yte),
        "final_train_acc": history[-1]["train_acc"] if history else None,
        "seconds": time.perf_counter() - t_start,
        "history": history,
    }
    out(f"done: test accuracy {100 * result['final_test_acc']:.2f}%  in {result['seconds']:.1f} s")
    return result


def main(args) -> int:
    model = args.model
    dataset = args.dataset or ("pysource" if model == "transformer" else "digits")
    if (model == "transformer") != (dataset == "pysource"):
        raise SystemExit(
            f"--dataset {dataset} does not go with --model {model}: the transformer trains on pysource only, "
            "the MLP on digits or mnist1d"
        )
    if model != "transformer" and (args.train_chars is not None or args.threads is not None):
        raise SystemExit("--train-chars and --threads apply to --model transformer only (the MLP trains on one thread)")
    if model == "transformer":
        from ._train_lm import TRAIN_CHARS, train_lm

        result = train_lm(
            args.bits,
            args.norm,
            args.epochs,
            args.seed,
            progress=not args.no_progress,
            head_bits=args.edge_bits,
            train_chars=TRAIN_CHARS if args.train_chars is None else args.train_chars,
            threads=args.threads,
        )
    else:
        result = train(
            dataset,
            args.bits,
            args.norm,
            args.epochs,
            args.seed,
            progress=not args.no_progress,
            edge_bits=args.edge_bits,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train an MLP on digits or MNIST-1D, or a character-level Transformer on the Python standard "
        "library's sources (L1/L2 norm, float or ShiftQuant GEMMs)",
    )
    p.add_argument(
        "--model",
        choices=("mlp", "transformer"),
        default="mlp",
        help="mlp (digits, mnist1d) or transformer (pysource); default mlp",
    )
    p.add_argument(
        "--dataset",
        choices=("digits", "mnist1d", "pysource"),
        default=None,
        help="default: digits for the MLP, pysource (the standard library's .py files) for the transformer",
    )
    p.add_argument("--bits", type=int, choices=(32, 8, 6, 4), default=32, help="32 = float32 GEMMs")
    p.add_argument("--norm", choices=("l1", "l2"), default="l1")
    p.add_argument(
        "--edge-bits",
        type=int,
        choices=(32, 8),
        default=None,
        help="bits of the first and last layer (the transformer: of its output layer; default: --bits, "
        "every layer alike)",
    )
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--train-chars",
        type=_positive,
        default=None,
        metavar="N",
        help="transformer: characters of training text (default 1048576; validation is always the same 131072)",
    )
    p.add_argument("--threads", type=_positive, default=None, help="transformer: numkern and BLAS threads")
    p.add_argument("--json", metavar="FILE", help="write the configuration, per-epoch history and result")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=main)
