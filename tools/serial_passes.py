"""Profile of every public entry point on a large input: how much of a call runs outside numkern's
parallel kernels (NumPy work in the Python layer, which runs on one thread).

Usage: python tools/serial_passes.py [--threads N]

For each entry point it prints the wall time of one call, the time spent inside ``numkern._core``
functions (the kernels, parallel) and the rest, with the three largest non-kernel functions of the
profile. A rest that grows with the input is a serial pass over it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
import warnings

import numpy as np

import numkern
import numkern.dp as dp
from numkern import quant


def entry_points():
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal((4096, 4096), dtype=np.float32)  # 64 MiB
    x16 = x32.astype(np.float16)
    xi = rng.integers(-1000, 1000, (4096, 2048))
    v = rng.standard_normal(1 << 23)
    A = rng.standard_normal((1 << 18, 64))
    b = A @ rng.standard_normal(64) + rng.standard_normal(1 << 18)
    a8 = rng.integers(-128, 128, (2048, 2048), dtype=np.int8)
    q8 = rng.integers(-128, 128, (4096, 4096), dtype=np.int8)
    X = rng.standard_normal((200_000, 16))
    Y = rng.standard_normal((2000, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kde = dp.KernelDensity("gaussian", 4.0, 1.0, n_components=1024, rng=0)
    # S^T through scipy's LinearOperator (operators built outside the timed calls)
    srht_t = numkern.sketch.SRHT(1 << 20, 800, rng=0).aslinearoperator()
    sparse_t = numkern.sketch.SparseSign(1 << 20, 800, rng=0).aslinearoperator()
    gauss_t = numkern.sketch.Gaussian(1 << 17, 200, rng=0).aslinearoperator()
    w = rng.standard_normal((800, 4))
    return [
        ("softmax f32", lambda: numkern.softmax(x32)),
        ("softmax f16", lambda: numkern.softmax(x16)),
        ("log_softmax int64 axis 0", lambda: numkern.log_softmax(xi, axis=0)),
        ("l1_norm f32", lambda: numkern.l1_norm(x32)),
        ("layer_norm f16", lambda: numkern.layer_norm(x16)),
        ("l1_norm_backward f32", lambda: numkern.l1_norm_backward(x32, x32)),
        ("l1_norm_int8", lambda: numkern.l1_norm_int8(q8)),
        ("shiftquant 4-bit", lambda: numkern.shiftquant(x32, 4)),
        ("int8_matmul", lambda: numkern.int8_matmul(a8, a8)),
        ("quant.matmul float32 4-bit", lambda: quant.matmul(x32[:1024, :2048], x32[:2048, :1024], bits=4)),
        ("fwht f64 2^23", lambda: numkern.fwht(v)),
        ("SRHT apply 2^18 x 64", lambda: numkern.sketch.SRHT(1 << 18, 512, rng=0).apply(A)),
        ("SRHT rmatvec 2^20, m 800", lambda: srht_t.rmatvec(w[:, 0])),
        ("SparseSign rmatmat 2^20 x 4", lambda: sparse_t.rmatmat(w)),
        ("Gaussian rmatvec 2^17, m 200", lambda: gauss_t.rmatvec(w[:200, 0])),
        ("lstsq sketch 2^18 x 64", lambda: numkern.lstsq(A, b, method="sketch", m=512, rng=0)),
        ("lstsq precondition 2^18 x 64", lambda: numkern.lstsq(A, b, method="precondition", rng=0)),
        ("kernel_sum 2e5 x 2000", lambda: numkern.kernel_sum(X, Y, kernel="gaussian", bandwidth=4.0)),
        ("distance_sum l1", lambda: numkern.distance_sum(X, Y[:200], metric="l1")),
        ("KernelDensity fit", lambda: kde.fit(X)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        numkern.set_num_threads(args.threads)
    print(f"threads {numkern.get_num_threads()}")
    print(f"{'entry point':<32} {'total':>9} {'kernels':>9} {'rest':>9}  largest other functions")
    for name, fn in entry_points():
        fn()  # warm-up
        t0 = time.perf_counter()
        fn()
        total = time.perf_counter() - t0
        prof = cProfile.Profile()
        prof.runcall(fn)
        stats = pstats.Stats(prof).stats
        kernel = sum(
            tt for (file, _, func), (_, _, tt, _, _) in stats.items() if file == "~" and "numkern._core" in func
        )
        others = sorted(
            (
                (tt, f"{func}")
                for (file, _, func), (_, _, tt, _, _) in stats.items()
                if not (file == "~" and "numkern._core" in func)
            ),
            reverse=True,
        )[:3]
        prof_total = sum(tt for (_, _, tt, _, _) in stats.values())
        rest = max(0.0, prof_total - kernel)
        top = ", ".join(f"{f} {t * 1e3:.1f} ms" for t, f in others if t > 1e-4)
        print(f"{name:<32} {total * 1e3:8.1f}ms {kernel * 1e3:8.1f}ms {rest * 1e3:8.1f}ms  {top}")


if __name__ == "__main__":
    main()
