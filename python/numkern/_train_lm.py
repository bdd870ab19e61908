"""``python -m numkern train --model transformer --dataset pysource``: a character-level Transformer
language model with L1 or L2 normalization and float or ShiftQuant (8/6/4-bit) GEMMs, trained on the
Python standard library's own ``.py`` sources (on every machine with Python, no download).

The data set (``pysource``): every ``*.py`` file under ``sysconfig.get_paths()["stdlib"]``, except
directories named ``site-packages``, ``dist-packages``, ``__pycache__``, ``test``, ``tests`` or
``idle_test`` and ``config-*`` (installed packages, test suites, build files) and the
machine-specific ``_sysconfigdata*`` modules. A file goes to validation when the first 8 bytes of
the SHA-256 of its relative path (POSIX separators), read as a fraction of 2**64, are below
``VAL_FRACTION``, else to training, so the two never share a file and the split does not depend on
which other files exist. Within each split the files are taken in the order of that hash and
concatenated (UTF-8, universal newlines) up to a character budget (``TRAIN_CHARS``,
``VAL_CHARS``); the last file is cut. Characters: tab, newline and the printable ASCII 32-126,
each its own symbol, and one out-of-vocabulary symbol for everything else (98 symbols). The file set
depends on the Python version; the JSON records it and the SHA-256 of both texts.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pathlib
import platform
import sys
import sysconfig
import time

import numpy as np

from . import nn

VOCAB = "\t\n" + "".join(chr(c) for c in range(32, 127))  # ids 1..97; 0 is out of vocabulary
VOCAB_SIZE = len(VOCAB) + 1
VAL_FRACTION = 0.1
TRAIN_CHARS = 1 << 20
VAL_CHARS = 1 << 17

DIM, LAYERS, HEADS, CONTEXT, MLP_RATIO = 128, 2, 4, 128, 4
BATCH = 16
LR, WARMUP, MIN_LR_FRACTION, CLIP = 2e-3, 50, 0.1, 1.0
BETAS = (0.9, 0.99)
EVAL_BATCH = 64

_EXCLUDED_DIRS = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}
_LOOKUP = np.zeros(128, dtype=np.uint8)
_LOOKUP[[ord(c) for c in VOCAB]] = np.arange(1, VOCAB_SIZE, dtype=np.uint8)


def file_hash(relpath: str) -> float:
    """The fraction in [0, 1) that places a file: SHA-256 of its relative path, first 8 bytes."""
    return int.from_bytes(hashlib.sha256(relpath.encode()).digest()[:8], "big") / 2.0**64


def pysource_files(root: str | os.PathLike | None = None) -> tuple[list[str], list[str]]:
    """(train, validation): relative paths of the eligible sources, each list in hash order."""
    base = pathlib.Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    paths = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in _EXCLUDED_DIRS and not d.startswith("config-"))
        for name in sorted(filenames):
            if name.endswith(".py") and not name.startswith("_sysconfigdata"):
                paths.append((pathlib.Path(dirpath) / name).relative_to(base).as_posix())
    keyed = sorted((file_hash(p), p) for p in paths)
    return [p for h, p in keyed if h >= VAL_FRACTION], [p for h, p in keyed if h < VAL_FRACTION]


def encode(text: str) -> np.ndarray:
    """Symbol ids (uint8) of a text: VOCAB's characters 1..97, anything else 0."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return np.where(codes < 128, _LOOKUP[np.minimum(codes, 127)], 0).astype(np.uint8)


def _read(base: pathlib.Path, files: list[str], budget: int) -> tuple[str, list[str]]:
    parts, used, total = [], [], 0
    for rel in files:
        if total >= budget:
            break
        text = (base / rel).read_text(encoding="utf-8", errors="replace")
        parts.append(text[: budget - total])
        used.append(rel)
        total += len(parts[-1])
    return "".join(parts), used


@functools.cache
def load_pysource(train_chars: int = TRAIN_CHARS, val_chars: int = VAL_CHARS, root: str | None = None):
    """(train ids, validation ids, info): the two texts encoded, and what they were made of."""
    base = pathlib.Path(root if root is not None else sysconfig.get_paths()["stdlib"])
    train_files, val_files = pysource_files(base)
    train_text, train_used = _read(base, train_files, train_chars)
    val_text, val_used = _read(base, val_files, val_chars)
    if len(train_text) < CONTEXT + 1 or len(val_text) < CONTEXT + 1:
        raise SystemExit(f"too little Python source under {base} for the pysource data set")
    info = {
        "python": platform.python_version(),
        "root": str(base),
        "train_files": len(train_used),
        "val_files": len(val_used),
        "eligible_files": len(train_files) + len(val_files),
        "train_chars": len(train_text),
        "val_chars": len(val_text),
        "train_sha256": hashlib.sha256(train_text.encode()).hexdigest(),
        "val_sha256": hashlib.sha256(val_text.encode()).hexdigest(),
    }
    return encode(train_text), encode(val_text), info


def unigram_bpc(train: np.ndarray, val: np.ndarray) -> float:
    """Bits per character on `val` of the train set's symbol frequencies (add-one smoothed)."""
    p = (np.bincount(train, minlength=VOCAB_SIZE) + 1.0) / (train.size + VOCAB_SIZE)
    return float(-np.log2(p[val]).mean())


class CharTransformer(nn.Module):
    """Token and learned positional embedding, pre-norm blocks, a final norm and the output Linear:
    ``forward(ids (B, T)) -> logits (B * T, VOCAB_SIZE)``."""

    def __init__(self, bits, norm, rng, head_bits=None, dim=DIM, layers=LAYERS, heads=HEADS, context=CONTEXT):
        qbits = None if bits == 32 else bits
        hbits = qbits if head_bits is None else (None if head_bits == 32 else head_bits)
        self.dim = dim
        self.embed = nn.Embedding(VOCAB_SIZE, dim, rng=rng)
        self.pos = nn.PositionalEmbedding(context, dim, rng=rng)
        self.blocks = [
            nn.TransformerBlock(dim, heads, norm=norm, mlp_ratio=MLP_RATIO, bits=qbits, rng=rng) for _ in range(layers)
        ]
        self.norm = (nn.L1LayerNorm if norm == "l1" else nn.LayerNorm)(dim)
        self.head = nn.Linear(dim, VOCAB_SIZE, bits=hbits, rng=rng)

    def _layers(self):
        return [self.embed, self.pos, *self.blocks, self.norm]

    def forward(self, ids):
        x = ids
        for layer in self._layers():
            x = layer.forward(x)
        return self.head.forward(x.reshape(-1, self.dim))

    def backward(self, grad):
        g = self.head.backward(grad).reshape(*self.embed._ids.shape, self.dim)
        for layer in reversed(self._layers()):
            g = layer.backward(g)
        return g

    def parameters(self):
        return [p for m in [*self._layers(), self.head] for p in m.parameters()]

    def train(self, mode=True):
        self.training = mode
        for m in [*self._layers(), self.head]:
            m.train(mode)
        return self


def windows(ids: np.ndarray, offset: int = 0) -> np.ndarray:
    """Non-overlapping windows of CONTEXT + 1 symbols (inputs and next-symbol targets) from `offset`."""
    n = (ids.size - offset - 1) // CONTEXT
    idx = offset + np.arange(n)[:, None] * CONTEXT + np.arange(CONTEXT + 1)[None, :]
    return ids[idx]


def evaluate_bpc(model, val: np.ndarray) -> float:
    """Mean bits per character of the model over the validation windows (each symbol of a window
    predicted from the ones before it in the window)."""
    loss_fn = nn.SoftmaxCrossEntropy()
    model.eval()
    w = windows(val)
    total = 0.0
    for i in range(0, len(w), EVAL_BATCH):
        chunk = w[i : i + EVAL_BATCH]
        logits = model.forward(chunk[:, :-1].astype(np.int64))
        total += loss_fn.forward(logits, chunk[:, 1:].reshape(-1).astype(np.int64)) * chunk[:, 1:].size
    model.train()
    return total / (w.shape[0] * CONTEXT) / np.log(2)


def _clip(params, max_norm: float) -> float:
    norm = float(np.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in params)))
    if norm > max_norm:
        for p in params:
            p.grad = p.grad * np.float32(max_norm / norm)
    return norm


@contextlib.contextmanager
def _threads(n: int | None):
    """numkern's and BLAS's threads limited to `n` (None: leave them as they are)."""
    if n is None:
        yield
        return
    from . import get_num_threads, set_num_threads

    before = get_num_threads()
    set_num_threads(n)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - optional
            yield
        else:
            with threadpool_limits(n, user_api="blas"):
                yield
    finally:
        set_num_threads(before)


def _bar(done: int, total: int, width: int = 28) -> str:
    fill = int(width * done / max(1, total))
    return "[" + "#" * fill + "." * (width - fill) + f"] {done}/{total}"


def train_lm(
    bits: int,
    norm: str,
    epochs: int,
    seed: int,
    progress=True,
    out=print,
    head_bits=None,
    train_chars: int = TRAIN_CHARS,
    val_chars: int = VAL_CHARS,
    threads: int | None = None,
) -> dict:
    """Trains one configuration; returns its settings, per-epoch history and final validation bpc."""
    with _threads(threads):
        return _train_lm(bits, norm, epochs, seed, progress, out, head_bits, train_chars, val_chars)


def _train_lm(bits, norm, epochs, seed, progress, out, head_bits, train_chars, val_chars):
    train, val, info = load_pysource(train_chars, val_chars)
    rng = np.random.default_rng(seed)
    model = CharTransformer(bits, norm, rng, head_bits=head_bits)
    params = model.parameters()
    loss_fn = nn.SoftmaxCrossEntropy()
    opt = nn.Adam(params, lr=LR, betas=BETAS)
    steps = windows(train).shape[0] // BATCH
    total_steps = max(1, steps * epochs)
    uni = unigram_bpc(train, val)
    n_params = sum(p.data.size for p in params)
    out(
        f"train pysource (Python {info['python']} standard library): {info['train_chars']} train chars "
        f"({info['train_files']} files) / {info['val_chars']} validation chars ({info['val_files']} files), "
        f"vocabulary {VOCAB_SIZE}"
    )
    out(
        f"Transformer: {LAYERS} layers, width {DIM}, {HEADS} heads, context {CONTEXT}, {n_params} parameters, "
        f"bits={bits}{'' if head_bits is None else f' (output layer {head_bits})'}, norm={norm}, epochs={epochs}, "
        f"seed={seed}, Adam lr={LR} (warm-up {WARMUP} steps, cosine), batch={BATCH}x{CONTEXT}"
    )
    out(f"unigram model: {uni:.4f} bits/char on validation")
    history = []
    t_start = time.perf_counter()
    step_no = 0
    tty = progress and sys.stderr.isatty()
    for epoch in range(1, epochs + 1):
        # a fresh random phase of the windows and a fresh order every epoch
        w = windows(train, int(rng.integers(CONTEXT)))
        order = rng.permutation(w.shape[0])
        total, t0 = 0.0, time.perf_counter()
        for step in range(steps):
            frac = step_no / total_steps
            warm = min(1.0, (step_no + 1) / WARMUP)
            opt.lr = LR * warm * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + np.cos(np.pi * frac)))
            batch = w[order[step * BATCH : (step + 1) * BATCH]]
            logits = model.forward(batch[:, :-1].astype(np.int64))
            total += loss_fn.forward(logits, batch[:, 1:].reshape(-1).astype(np.int64))
            opt.zero_grad()
            model.backward(loss_fn.backward())
            _clip(params, CLIP)
            opt.step()
            step_no += 1
            if tty:
                print(f"\r  epoch {epoch:3d} {_bar(step + 1, steps)}", end="", file=sys.stderr, flush=True)
        if tty:
            print("\r" + " " * 60 + "\r", end="", file=sys.stderr, flush=True)
        train_seconds = time.perf_counter() - t0
        row = {
            "epoch": epoch,
            "train_bpc": total / max(1, steps) / np.log(2),
            "val_bpc": evaluate_bpc(model, val),
            "seconds": train_seconds,
            "eval_seconds": time.perf_counter() - t0 - train_seconds,
        }
        history.append(row)
        out(
            f"  epoch {epoch:3d}/{epochs} {_bar(epoch, epochs, 10)}  train {row['train_bpc']:.4f} bpc  "
            f"validation {row['val_bpc']:.4f} bpc  ({row['seconds']:.1f} s + {row['eval_seconds']:.1f} s eval)"
        )
    result = {
        "model": "transformer",
        "dataset": "pysource",
        "bits": bits,
        "edge_bits": head_bits,
        "norm": norm,
        "epochs": epochs,
        "seed": seed,
        "layers": LAYERS,
        "dim": DIM,
        "heads": HEADS,
        "context": CONTEXT,
        "mlp_ratio": MLP_RATIO,
        "parameters": n_params,
        "batch": BATCH,
        "lr": LR,
        "steps": step_no,
        "data": info,
        "unigram_bpc": uni,
        "final_val_bpc": history[-1]["val_bpc"] if history else evaluate_bpc(model, val),
        "final_train_bpc": history[-1]["train_bpc"] if history else None,
        "seconds": time.perf_counter() - t_start,
        "history": history,
    }
    out(f"done: validation {result['final_val_bpc']:.4f} bits/char (unigram {uni:.4f})  in {result['seconds']:.1f} s")
    return result
