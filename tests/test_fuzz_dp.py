"""Fuzzing numkern.kernel_sum / distance_sum (against a float64 NumPy reference) and the private
structures DistanceSum, KernelDensity, SimilarityClassifier (fit/query/query_std/score_samples/
predict_proba with good and bad inputs:
well-formed finite answers or TypeError/ValueError naming the problem; inputs never mutated)."""

import warnings

import numpy as np
import pytest
from _fuzz_strategies import WRONG_DTYPES, arrays, assert_raised_for, checked, fuzz, pick, snapshot
from hypothesis import strategies as st

import numkern
from numkern.dp import DistanceSum, KernelDensity, NotPrivateWarning, SimilarityClassifier

DTYPES = [np.float32, np.float64, np.float16, np.int32, np.uint8, np.bool_]


def _pair_ref(X, Y, what, h, w):
    """(sums, sums of absolute terms) in float64, as cdist + kernel + sum."""
    X = X.astype(np.float64)
    Y = Y.astype(np.float64)
    with np.errstate(all="ignore"):
        diff = Y[:, None, :] - X[None, :, :]
        sq = (diff * diff).sum(axis=-1)
        terms = {
            "gaussian": lambda: np.exp(-sq / (h * h)),
            "laplacian": lambda: np.exp(-np.sqrt(sq) / h),
            "cauchy": lambda: 1.0 / (1.0 + sq / (h * h)),
            "l1": lambda: np.abs(diff).sum(axis=-1),
            "l2": lambda: np.sqrt(sq),
            "sqeuclidean": lambda: sq,
        }[what]()
        if w is not None:
            terms = terms * w.astype(np.float64)[None, :]
        return terms.sum(axis=1), np.abs(terms).sum(axis=1)


@st.composite
def _pair_case(draw):
    what = draw(pick(["gaussian", "laplacian", "cauchy", "l1", "l2", "sqeuclidean"], ["rbf"], 5))
    n, d, q = draw(st.integers(0, 12)), draw(st.integers(0, 5)), draw(st.integers(0, 6))
    special = draw(st.booleans())
    X = draw(arrays(dtypes=DTYPES, shape=(n, d), special=special))
    y_kind = draw(pick(["2d", "2d", "1d"], ["wrong_d", "3d"]))
    y_shape = {"2d": (q, d), "1d": (d,), "wrong_d": (q, d + 1), "3d": (q, d, 1)}[y_kind]
    Y = draw(arrays(dtypes=DTYPES, shape=y_shape, special=special))
    x_kind = draw(pick(["2d"], ["1d"], 5))
    if x_kind == "1d":
        X = X.reshape(-1)
    h = draw(pick([1.0, 0.5, 3.0, 1e-3, 2], [0.0, -1.0, np.inf, np.nan, "1", True], 8))
    w_kind = draw(pick(["none", "ok"], ["shape", "complex"], 6))
    w = None
    if w_kind != "none":
        length = n + (w_kind == "shape")
        w = np.array(draw(st.lists(st.floats(-10, 10, width=32), min_size=length, max_size=length)))
        if w_kind == "complex":
            w = w.astype(np.complex128)
    return what, X, Y, x_kind, y_kind, h, w, w_kind


def test_fuzz_kernel_and_distance_sums(fuzz_settings, isa):
    def run(case):
        what, X, Y, x_kind, y_kind, h, w, w_kind = case
        kernel = what in ("gaussian", "laplacian", "cauchy", "rbf")
        problems = []
        if what == "rbf":
            problems.append("kernel name")
        if x_kind == "1d" or y_kind in ("wrong_d", "3d"):
            problems.append("shape")
        if w_kind in ("shape", "complex"):
            problems.append("weights")
        if kernel and (isinstance(h, (bool, str)) or not (np.isfinite(h) and h > 0)):
            problems.append("bandwidth")
        before = snapshot(X, Y, w)
        try:
            if kernel:
                out = numkern.kernel_sum(X, Y, kernel=what, bandwidth=h, weights=w)
            else:
                out = numkern.distance_sum(X, Y, metric=what, weights=w)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert snapshot(X, Y, w) == before
            return
        assert not problems, f"accepted bad input ({problems})"
        checked()
        assert snapshot(X, Y, w) == before
        Y2 = Y.reshape(1, -1) if y_kind == "1d" else Y
        ref, mag = _pair_ref(X, Y2, what, float(h) if kernel else 1.0, w)
        got = np.atleast_1d(np.asarray(out, dtype=np.float64))
        assert got.shape == ref.shape and np.asarray(out).dtype == np.float64
        if y_kind == "1d":
            assert np.ndim(out) == 0
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        fin = np.isfinite(ref)
        np.testing.assert_array_equal(got[~fin], ref[~fin])
        bound = 1e-12 * mag[fin] + 1e-300
        assert (np.abs(got[fin] - ref[fin]) <= bound).all(), f"{what}: {got[fin]} vs {ref[fin]}"

    fuzz(fuzz_settings, run, case=_pair_case())


@st.composite
def _private_case(draw):
    cls = draw(st.sampled_from(["distance", "kde", "classifier"]))
    n, d = draw(st.integers(0, 20)), draw(pick(st.integers(1, 4), [0], 5))
    X = draw(
        arrays(
            dtypes=DTYPES + [np.complex64] * (draw(st.integers(0, 19)) == 0),
            shape=(n, d),
            special=draw(pick([False], [True], 10)),
        )
    )
    if draw(pick([False], [True], 5)):
        X = X.reshape(-1)
    kinds = {"distance": ["l1", "l2", "sqeuclidean"], "kde": ["gaussian", "laplacian", "cauchy"]}
    metric = draw(pick(kinds.get(cls, kinds["kde"]), ["cosine", "l1" if cls != "distance" else "gaussian"], 5))
    epsilon = draw(pick([1.0, 0.1, 10.0], [0.0, -1.0, np.inf, np.nan, "1", True], 6))
    bounds = draw(pick([5.0, (-1.0, 1.0), (np.zeros(3), 1.0)], [None, (1.0, -1.0), (0.0, np.inf), "wide"], 6))
    resolution = draw(pick([None, 16, 1], [3, 0, 2**21, 8.0], 5))
    n_comp = draw(pick([None, 64, 1], [0, 3.5] + ([2**21] if cls != "distance" else []), 5))
    bandwidth = draw(pick([1.0, 0.3], [0.0, -1.0, np.nan, "x"], 5))
    y_kind = draw(pick(["2d", "1d"], ["wrong_d", "nan", "complex"], 20))
    labels = draw(pick(["ok"], ["short", "2d"], 5))
    return cls, X, metric, epsilon, bounds, resolution, n_comp, bandwidth, y_kind, labels


def _real_pos(v):
    return not isinstance(v, (bool, str)) and np.isfinite(v) and v > 0


def test_fuzz_private_structures(fuzz_settings, isa):
    def run(case):
        cls, X, metric, epsilon, bounds, resolution, n_comp, bandwidth, y_kind, labels = case
        problems = []
        if X.ndim != 2 or X.shape[1] == 0:
            problems.append("X shape")
        if X.dtype.kind == "c":
            problems.append("X dtype")
        elif not np.isfinite(X.astype(np.float64)).all():
            problems.append("X non-finite")
        if not _real_pos(epsilon):
            problems.append("epsilon")
        d = X.shape[1] if X.ndim == 2 else 0
        if cls == "distance":
            if metric not in ("l1", "l2", "sqeuclidean"):
                problems.append("metric")
            if not (
                isinstance(bounds, float)
                or (
                    isinstance(bounds, tuple)
                    and isinstance(bounds[0], float)
                    and bounds[0] == -1.0
                    and bounds[1] == 1.0
                )
                or (isinstance(bounds, tuple) and isinstance(bounds[0], np.ndarray) and d == 3)
            ):
                problems.append("bounds")
            if metric != "sqeuclidean" and resolution is not None and resolution not in (16, 1):
                problems.append("resolution")
            if metric == "l2" and n_comp is not None and n_comp not in (64, 1):  # (no upper bound)
                problems.append("n_projections")
            est = DistanceSum(metric, epsilon, bounds, resolution=resolution, n_projections=n_comp, rng=1)
        else:
            if metric not in ("gaussian", "laplacian", "cauchy"):
                problems.append("kernel")
            if not _real_pos(bandwidth):
                problems.append("bandwidth")
            if n_comp is not None and n_comp not in (64, 1):
                problems.append("n_components")
            comps = n_comp if n_comp is not None else (4096 if cls == "kde" else "auto")
            est = (
                KernelDensity(metric, bandwidth, epsilon, n_components=comps, rng=1)
                if cls == "kde"
                else SimilarityClassifier(metric, bandwidth, epsilon, n_components=comps, rng=1)
            )
        y = None
        if cls == "classifier":
            rows = X.shape[0] if X.ndim == 2 else X.size
            y = np.arange(rows + (labels == "short")) % 3
            if labels == "2d":
                y = np.stack([y, y], axis=1)  # (a column vector is accepted, as in scikit-learn)
            if labels != "ok" and X.ndim == 2:
                problems.append("labels")
            if X.ndim == 2 and X.shape[0] == 0 and labels == "ok":
                problems.append("no class")
        before = snapshot(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotPrivateWarning)
            try:
                est.fit(X) if y is None else est.fit(X, y)
            except (TypeError, ValueError) as exc:
                assert_raised_for(exc, problems)
                assert snapshot(X) == before
                return
            assert not problems, f"fit accepted bad input ({problems})"
            checked()
            assert snapshot(X) == before
            q = np.linspace(-1, 1, 3 * d).reshape(3, d)
            qp = []
            if y_kind == "1d":
                q = q[0]
                if cls == "classifier":  # scikit-learn's convention: 2-D X only
                    qp.append("query shape")
            elif y_kind == "wrong_d":
                q = np.ones((3, d + 1))
                qp.append("query shape")
            elif y_kind == "nan" and d:
                q[0, 0] = np.nan
                qp.append("query NaN")
            elif y_kind == "complex":
                q = q.astype(np.complex64)
                qp.append("query dtype")
            qb = snapshot(q)
            query = est.decision_function if cls == "classifier" else est.query
            try:
                r = query(q)
            except (TypeError, ValueError) as exc:
                assert_raised_for(exc, qp)
                assert snapshot(q) == qb
                return
            assert not qp, f"query accepted bad input ({qp})"
            assert snapshot(q) == qb
            r = np.asarray(r, dtype=np.float64)
            expect = () if y_kind == "1d" and cls != "classifier" else (3,)
            if cls == "classifier":
                k = len(est.classes_)
                expect = (3,) if k == 2 else (3, k)
            assert r.shape == expect and np.isfinite(r).all()
            if cls == "kde":
                assert np.isfinite(est.query_std(q)).all()
                if metric != "cauchy" or d == 1:
                    ls = np.asarray(est.score_samples(q))
                    assert ls.shape == r.shape and np.isfinite(ls).all() and np.isfinite(est.score(q))
                else:
                    with pytest.raises(ValueError, match="no finite integral"):
                        est.score_samples(q)
            if cls == "distance":
                sd = np.asarray(est.query_std(q))
                assert sd.shape == r.shape and np.isfinite(sd).all() and (sd > 0).all()
            assert snapshot(q) == qb
            if cls == "classifier":
                p = est.predict_proba(q)
                assert p.shape == (3, k) and np.all((p >= 0) & (p <= 1)) and np.allclose(p.sum(axis=1), 1.0)
                np.testing.assert_array_equal(est.classes_[np.argmax(p, axis=1)], est.predict(q))
                assert snapshot(q) == qb

    fuzz(fuzz_settings, run, scale=0.6, case=_private_case())


def test_fuzz_dp_wrong_dtypes_raise(fuzz_settings, isa):
    def run(dtype, which):
        x = np.zeros((3, 2), dtype=dtype)
        if which == "kernel_sum":
            with pytest.raises(TypeError, match="dtype"):
                numkern.kernel_sum(x, np.zeros((2, 2)), bandwidth=1.0)
        elif which == "distance_sum":
            with pytest.raises(TypeError, match="dtype"):
                numkern.distance_sum(np.zeros((2, 2)), x)
        else:
            with pytest.raises(TypeError, match="dtype"):
                KernelDensity(n_components=8, rng=1).fit(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrivateWarning)
        fuzz(
            fuzz_settings,
            run,
            scale=0.3,
            dtype=st.sampled_from([d for d in WRONG_DTYPES if d != np.longdouble]),
            which=st.sampled_from(["kernel_sum", "distance_sum", "kde"]),
        )


@st.composite
def _noise_case(draw):
    x = draw(
        arrays(
            dtypes=DTYPES + [np.complex64] * (draw(st.integers(0, 19)) == 0),
            max_side=7,
            special=draw(pick([False], [True], 15)),
            min_dims=0,
        )
    )
    mechanism = draw(pick(["laplace", "gaussian"], ["exponential", None], 5))
    sensitivity = draw(pick([1.0, 0.01, 250.0, 3], [0.0, -1.0, np.inf, np.nan, "1", True], 6))
    epsilon = draw(pick([1.0, 0.1, 8.0], [0.0, -2.0, np.inf, np.nan, True], 6))
    delta = (
        draw(pick([1e-6, 1e-3], [0.0, 1.0, -1e-6, np.nan], 6))
        if mechanism == "gaussian"
        else draw(pick([0.0], [1e-6], 6))
    )
    return x, mechanism, sensitivity, epsilon, delta


def test_fuzz_add_noise(fuzz_settings, isa):
    import math

    from numkern import dp
    from numkern.dp import _add_noise

    def run(case):
        x, mechanism, sensitivity, epsilon, delta = case
        problems = []
        if x.dtype.kind == "c" or x.dtype == np.float16:
            problems.append("dtype")
        if mechanism not in ("laplace", "gaussian"):
            problems.append("mechanism")
        if not _real_pos(sensitivity):
            problems.append("sensitivity")
        if not _real_pos(epsilon):
            problems.append("epsilon")
        if mechanism == "laplace" and delta != 0.0:
            problems.append("delta")
        if mechanism == "gaussian" and not (isinstance(delta, float) and 0 < delta < 1):
            problems.append("delta")
        e = None
        if not problems:
            xf = x.astype(np.float64)
            if not np.isfinite(xf).all():
                problems.append("non-finite")
            else:
                # the public grid rule (the sensitivity at 2^12 n or 2^12 sqrt(n) grid units)
                n = max(x.size, 1)
                if mechanism == "laplace":
                    e = math.floor(math.log2(sensitivity / (n << 12)))
                else:
                    e = math.floor(math.log2(sensitivity / (math.isqrt(n) + 1))) - 12
                e = max(e, -149 if x.dtype == np.float32 else -1000)
                if x.size and np.max(np.abs(xf)) * 2.0**-e >= 2.0**61:  # near 2^62: either outcome
                    return
        before = snapshot(x)
        try:
            y = dp.add_noise(x, sensitivity=sensitivity, epsilon=epsilon, delta=delta, mechanism=mechanism, rng=1)
        except (TypeError, ValueError) as exc:
            assert_raised_for(exc, problems)
            assert snapshot(x) == before
            return
        assert not problems, f"add_noise accepted bad input ({problems})"
        checked()
        assert snapshot(x) == before
        assert y.shape == x.shape
        assert y.dtype == (np.float32 if x.dtype == np.float32 else np.float64)
        assert np.isfinite(y).all()
        scale = (
            sensitivity / epsilon
            if mechanism == "laplace"
            else sensitivity / math.sqrt(2 * _add_noise._noise.gaussian_rho(epsilon, delta))
        )
        err = np.abs(y.astype(np.float64) - x.astype(np.float64))
        assert np.all(err <= 80 * scale + 2.0 ** (e + 1) + 1e-6 * np.abs(x.astype(np.float64)))
        if x.dtype != np.float32:  # float64 keeps every grid value below 2^53 grid units exactly
            k = y / 2.0**e
            assert np.all(k == np.rint(k))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotPrivateWarning)
        fuzz(fuzz_settings, run, case=_noise_case())
