"""dp peers: exact kernel sums vs SciPy cdist + exp + sum and torch; private structures' build and
query times beside the exact NumPy answer; the private classifier's accuracy-vs-epsilon curve;
add_noise throughput against NumPy's float samplers and diffprivlib; KDE error with Laplace vs
Gaussian noise."""

from __future__ import annotations

import warnings

import numpy as np

import numkern
import numkern.dp as dp

from ._harness import Case
from ._peers import torch_or_none


def _kernel_sum_case(n, q, d):
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((q, d))
    h = float(np.sqrt(d))
    impls = {
        "numkern.kernel_sum": lambda: numkern.kernel_sum(X, Y, kernel="gaussian", bandwidth=h),
        "scipy cdist + exp + sum": lambda: np.exp(-cdist(Y, X, "sqeuclidean") / h**2).sum(axis=1),
    }
    torch = torch_or_none(numkern.get_num_threads())
    if torch is not None:
        tx, ty = torch.from_numpy(X), torch.from_numpy(Y)
        impls["torch.cdist + exp + sum (f64)"] = lambda: torch.exp(-(torch.cdist(ty, tx) ** 2) / h**2).sum(dim=1)
    return Case(
        "dp", f"kernel_sum gaussian n={n:.0e} q={q} d={d}", impls, reference="numkern.kernel_sum", work=2.0 * n * q * d
    )


def _exact_l1_query(X, y, chunk=100_000):
    return sum(float(np.abs(X[i : i + chunk] - y).sum()) for i in range(0, X.shape[0], chunk))


def _l1_case(n, d):
    rng = np.random.default_rng(1)
    X = rng.random((n, d))
    Y = rng.random((1000, d))
    s = dp.DistanceSum("l1", 1.0, (0.0, 1.0)).fit(X)
    y1 = Y[:1]
    impls = {
        "DistanceSum.query (1 query)": lambda: s.query(y1),
        "DistanceSum.query (batch of 1000, total)": lambda: s.query(Y),
        "exact numpy (1 query)": lambda: _exact_l1_query(X, y1[0]),
        "numkern.distance_sum exact (1 query)": lambda: numkern.distance_sum(X, y1, metric="l1"),
        "DistanceSum.fit (build)": lambda: dp.DistanceSum("l1", 1.0, (0.0, 1.0)).fit(X),
    }
    pre, ring = ring_vs_prefix()
    return Case(
        "dp",
        f"DistanceSum l1 n={n:.0e} d={d} eps=1",
        impls,
        reference="DistanceSum.query (1 query)",
        note="build target <= 2 s; query target >= 1e4x faster than exact numpy; median relative "
        f"error at n=1e5, d=10, eps=1: prefix form {pre:.2e}, ring estimator {ring:.2e}",
    )


def _kde_case(n, d, m):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, d)).astype(np.float64)
    Y = rng.standard_normal((1000, d))
    kde = dp.KernelDensity("gaussian", float(np.sqrt(d)), 1.0, n_components=m).fit(X)
    y1 = Y[:1]
    h = float(np.sqrt(d))
    impls = {
        "KernelDensity.query (1 query)": lambda: kde.query(y1),
        "KernelDensity.query (batch of 1000, total)": lambda: kde.query(Y),
        "numkern.kernel_sum exact (1 query)": lambda: numkern.kernel_sum(X, y1, kernel="gaussian", bandwidth=h),
        "KernelDensity.fit (build)": lambda: dp.KernelDensity("gaussian", h, 1.0, n_components=m).fit(X),
    }
    return Case(
        "dp",
        f"KernelDensity gaussian n={n:.0e} d={d} m={m}",
        impls,
        reference="KernelDensity.query (1 query)",
        note="build target <= 10 s; query target <= 50 us",
    )


def _clustered(rng, n, d, q):
    C = rng.standard_normal((10, d))
    return (
        C[rng.integers(0, 10, n)] + 0.5 * rng.standard_normal((n, d)),
        C[rng.integers(0, 10, q)] + 0.5 * rng.standard_normal((q, d)),
    )


def _one_thread(fn, *args):
    # A single large query splits its feature blocks over both threads; on a loaded machine the second
    # thread's wake-up can cost milliseconds, so the one-thread time is shown beside it.
    with numkern.thread_limit(1):  # scoped to this call: no process-wide setting changes
        return fn(*args)


def _kde_reduce_case(n, d, m, ks=(256, 128), n_accuracy=100_000):
    """KernelDensity with reduce_dim (public Hadamard JL projection before the random features) beside
    the same structure without it: build and query times at n, and in the note the median relative
    error against the exact kernel sum (200 queries) at n_accuracy records, at eps = 1 (the
    release) and eps = 1e6 (the approximation alone), plus one timed build per variant at n_accuracy."""
    import time

    rng = np.random.default_rng(4)
    X, Y = _clustered(rng, max(n, n_accuracy), d, 1000)
    h = float(np.sqrt(d))
    variants = {"no reduction": None, **{f"reduce_dim={k}": k for k in ks}}
    auto = dp.KernelDensity("gaussian", h, 1.0, n_components=m, reduce_dim="auto").fit(X[:64]).reduce_dim_
    variants[f"reduce_dim='auto' (k={auto})"] = "auto"
    Xb, y1 = X[:n], Y[:1]
    impls, fitted = {}, {}
    for label, k in variants.items():
        fitted[label] = kde = dp.KernelDensity("gaussian", h, 1.0, n_components=m, reduce_dim=k, feature_seed=0).fit(Xb)
        impls[f"query 1, {label}"] = lambda kde=kde: kde.query(y1)
        impls[f"query 1 (1 thread), {label}"] = lambda kde=kde: _one_thread(kde.query, y1)
        impls[f"query batch 1000, {label}"] = lambda kde=kde: kde.query(Y)
        impls[f"fit n={n:.0e}, {label}"] = lambda k=k: dp.KernelDensity(
            "gaussian", h, 1.0, n_components=m, reduce_dim=k, feature_seed=0
        ).fit(Xb)
    Xa, Yq = X[:n_accuracy], Y[:200]
    exact = numkern.kernel_sum(Xa, Yq, kernel="gaussian", bandwidth=h)
    exact_b = numkern.kernel_sum(Xb, Yq, kernel="gaussian", bandwidth=h)
    parts = []
    for label, k in variants.items():
        t0 = time.perf_counter()
        noisy = dp.KernelDensity("gaussian", h, 1.0, n_components=m, reduce_dim=k, feature_seed=0).fit(Xa)
        t_fit = time.perf_counter() - t0
        clean = dp.KernelDensity("gaussian", h, 1e6, n_components=m, reduce_dim=k, feature_seed=0).fit(Xb)
        e1 = np.median(np.abs(noisy.query(Yq) - exact) / exact)
        e6 = np.median(np.abs(clean.query(Yq) - exact_b) / exact_b)
        parts.append(
            f"{label}: one fit at n={n_accuracy:.0e} {t_fit:.2f} s, median rel. error there at eps=1 "
            f"{e1:.4f}; without noise (eps=1e6, n={n:.0e}) {e6:.4f}"
        )
    return Case(
        "dp",
        f"KernelDensity reduce_dim gaussian d={d} m={m} (clustered data, h=sqrt(d))",
        impls,
        reference="query 1, no reduction",
        note="; ".join(parts),
    )


def accuracy_curve(epsilons=(0.5, 1, 2, 5, 10, 20), seeds=range(3)):
    """Mean test accuracy on digits (unit-norm rows, stratified 1200/597) per epsilon, plus the
    non-private kernel classifier and fit time; None if scikit-learn is missing."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        return None
    X, y = load_digits(return_X_y=True)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    splits = [train_test_split(X, y, train_size=1200, test_size=597, stratify=y, random_state=s) for s in seeds]
    curve = {}
    for eps in epsilons:
        curve[eps] = float(
            np.mean([dp.SimilarityClassifier("gaussian", 0.5, eps).fit(a, c).score(b, e) for a, b, c, e in splits])
        )
    nonpriv = []
    for a, b, c, e in splits:
        classes = np.unique(c)
        K = numkern.kernel_sum  # exact average similarity per class
        scores = np.stack([K(a[c == k], b, kernel="gaussian", bandwidth=0.5) / np.sum(c == k) for k in classes], 1)
        nonpriv.append(np.mean(classes[np.argmax(scores, 1)] == e))
    return curve, float(np.mean(nonpriv)), splits[0]


def _classifier_case():
    res = accuracy_curve()
    if res is None:
        return None
    curve, nonpriv, (Xtr, Xte, ytr, yte) = res
    impls = {"SimilarityClassifier.fit eps=10": lambda: dp.SimilarityClassifier("gaussian", 0.5, 10.0).fit(Xtr, ytr)}
    note = "accuracy vs eps: " + ", ".join(f"eps={e:g}: {a:.3f}" for e, a in curve.items())
    note += f"; non-private exact kernel classifier: {nonpriv:.3f}"
    try:
        from diffprivlib.models import LogisticRegression as DPLR  # optional peer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            impls["diffprivlib LogisticRegression eps=10"] = lambda: DPLR(epsilon=10.0, data_norm=1.0).fit(Xtr, ytr)
            acc = DPLR(epsilon=10.0, data_norm=1.0).fit(Xtr, ytr).score(Xte, yte)
        note += f"; diffprivlib LogisticRegression eps=10: {acc:.3f}"
    except ImportError:
        note += "; diffprivlib not installed"
    try:
        from sklearn.linear_model import LogisticRegression

        impls["sklearn LogisticRegression (non-private)"] = lambda: LogisticRegression(max_iter=500).fit(Xtr, ytr)
    except ImportError:
        pass
    return Case(
        "dp", "SimilarityClassifier digits 1200/597", impls, reference="SimilarityClassifier.fit eps=10", note=note
    )


def _diffprivlib_laplace():
    """diffprivlib's Laplace mechanism class, or None (optional peer; not a dependency)."""
    try:
        from diffprivlib.mechanisms import Laplace
    except Exception:  # not installed, or incompatible with the installed scikit-learn
        return None
    return Laplace


def _add_noise_case(n, n_peer=20_000):
    """add_noise throughput (values/s) against NumPy's float Laplace / normal (not DP: floating-point
    samples, seeded PRNG) and diffprivlib's Laplace.randomise called per value (on n_peer values)."""
    x = np.random.default_rng(3).standard_normal(n)
    gen = np.random.default_rng(4)
    impls = {
        "numkern.dp.add_noise laplace": lambda: dp.add_noise(x, sensitivity=1.0, epsilon=1.0),
        "numkern.dp.add_noise gaussian (delta=1e-6)": lambda: dp.add_noise(
            x, sensitivity=1.0, epsilon=1.0, delta=1e-6, mechanism="gaussian"
        ),
        "numpy Generator.laplace + x (float, not DP-safe)": lambda: x + gen.laplace(0.0, 1.0, n),
        "numpy Generator.normal + x (float, not DP-safe)": lambda: x + gen.normal(0.0, 4.53, n),
    }
    note = f"values per call: {n}"
    Laplace = _diffprivlib_laplace()
    if Laplace is not None:
        mech = Laplace(epsilon=1.0, sensitivity=1.0)
        xs = x[:n_peer].tolist()
        label = f"diffprivlib Laplace.randomise loop ({n_peer} values, x{n // n_peer} to compare)"
        impls[label] = lambda: [mech.randomise(v) for v in xs]
        note += f"; the diffprivlib row runs {n_peer} values: multiply its time by {n // n_peer} for {n} values"
    else:
        note += "; diffprivlib not installed (or not importable): its row is absent"
    return Case(
        "dp",
        f"add_noise throughput n={n:.0e}",
        impls,
        reference="numkern.dp.add_noise laplace",
        note=note,
    )


def kde_mechanism_errors(n=20_000, d=8, m=4096, epsilon=1.0, delta=1e-6, fits=3, q=200):
    """Median relative error of KernelDensity answers (gaussian kernel, h = sqrt(d)) against the exact
    kernel sums, Laplace vs Gaussian mechanism at the same (epsilon, delta), and the median query_std
    relative to the answer; medians over ``fits`` fits with OS noise."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((n, d))
    Y = X[rng.choice(n, q, replace=False)] + 0.1 * rng.standard_normal((q, d))
    h = float(np.sqrt(d))
    exact = numkern.kernel_sum(X, Y, kernel="gaussian", bandwidth=h)
    out = {}
    for mech, dl in (("laplace", 0.0), ("gaussian", delta)):
        errs, stds = [], []
        for f in range(fits):
            kde = dp.KernelDensity("gaussian", h, epsilon, n_components=m, feature_seed=f, mechanism=mech, delta=dl)
            kde.fit(X)
            errs.append(float(np.median(np.abs(kde.query(Y) - exact) / exact)))
            stds.append(float(np.median(kde.query_std(Y) / exact)))
        out[mech] = (float(np.median(errs)), float(np.median(stds)))
    return out


def _kde_mechanism_case(n=20_000, d=8, m=4096):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((n, d))
    h = float(np.sqrt(d))
    errs = kde_mechanism_errors(n, d, m)
    impls = {
        "KernelDensity.fit laplace": lambda: dp.KernelDensity("gaussian", h, 1.0, n_components=m).fit(X),
        "KernelDensity.fit gaussian": lambda: dp.KernelDensity(
            "gaussian", h, 1.0, n_components=m, mechanism="gaussian", delta=1e-6
        ).fit(X),
    }
    note = (
        f"median relative error at eps=1 (delta=1e-6 for the Gaussian), n={n}, d={d}, m={m}: "
        f"laplace {errs['laplace'][0]:.2e} (DP noise std {errs['laplace'][1]:.2e}), "
        f"gaussian {errs['gaussian'][0]:.2e} (DP noise std {errs['gaussian'][1]:.2e}); the rest is the "
        "random-feature approximation error"
    )
    return Case(
        "dp",
        f"KernelDensity Laplace vs Gaussian mechanism m={m}",
        impls,
        reference="KernelDensity.fit laplace",
        note=note,
    )


def cases(quick: bool) -> list[Case]:
    if quick:
        out = [
            _kernel_sum_case(20_000, 200, 32),
            _l1_case(100_000, 100),
            _kde_case(100_000, 32, 4096),
            _kde_reduce_case(2_000, 1024, 2048, n_accuracy=10_000),
            _add_noise_case(10**6),
            _kde_mechanism_case(),
        ]
    else:
        out = [
            _kernel_sum_case(100_000, 1000, 32),
            _l1_case(1_000_000, 100),
            _kde_case(1_000_000, 32, 4096),
            _kde_reduce_case(10_000, 1024, 2048),
            _add_noise_case(10**7),
            _kde_mechanism_case(),
        ]
    clf = _classifier_case()
    return out + ([clf] if clf is not None else [])


def ring_vs_prefix(n=100_000, d=10, eps=1.0, resolution=256, seeds=range(3), alpha=0.05):
    """Median (over seeds) of the median relative error over 40 queries of the l1 answer: the prefix form
    (consistent counts -> CDF prefix arrays, what DistanceSum uses) and the paper's ring estimator
    (_L1Tree.query_ring: geometric rings of ratio 1 + alpha, range counts from the raw noisy nodes) on
    the same released trees. The comparison is asserted in tests/test_dp_l1_estimators.py."""
    import warnings as _w

    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(3)
    X = np.clip(rng.normal(0.5, 0.2, (n, d)), 0, 1)
    Y = rng.random((40, d))
    exact = cdist(Y, X, "cityblock").sum(axis=1)
    prefix, ring = [], []
    for seed in seeds:
        with _w.catch_warnings():
            _w.simplefilter("ignore", dp.NotPrivateWarning)
            s = dp.DistanceSum("l1", eps, (0.0, 1.0), resolution=resolution, rng=seed).fit(X)
        prefix.append(np.median(np.abs(s.query(Y) - exact) / exact))
        est, _ = s._tree.query_ring(Y, alpha)
        ring.append(np.median(np.abs(est - exact) / exact))
    return float(np.median(prefix)), float(np.median(ring))
