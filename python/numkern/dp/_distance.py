"""DistanceSum: an epsilon-DP structure answering F(y) = sum_x dist(x, y) for any number of queries."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np

from .. import _core
from . import _noise
from ._accountant import charge, check_epsilon, check_mechanism
from ._data import bounds as _bounds
from ._data import private_data, queries

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._validate import BoundsLike, RngLike
    from ._accountant import Accountant

_FRAC_BITS = 31  # per-record fixed-point magnitude <= 2^31, so 2^31 records sum exactly in int64


def _fixed_bits(bound: float) -> int:
    """Fraction bits so that a value of magnitude <= bound rounds to an integer <= 2^31."""
    return _FRAC_BITS - max(0, math.ceil(math.log2(bound))) if bound > 0 else _FRAC_BITS


def _project(X, G, chunk=4096):
    """X @ G.T computed elementwise in a fixed order, so each record's projection is a function of
    that record alone (a BLAS product may round a row differently depending on the rows around it,
    which would let one record move another's cell)."""
    out = np.empty((X.shape[0], G.shape[0]))
    for a in range(0, X.shape[0], chunk):
        x = X[a : a + chunk]
        z = np.zeros((x.shape[0], G.shape[0]))
        for k in range(X.shape[1]):
            z += x[:, k : k + 1] * G[:, k]
        out[a : a + chunk] = z
    return out


def _consistent_leaves(nodes):
    """Least-squares consistent leaf counts from noisy counts of every node of a binary tree with equal
    noise variance per node (Hay, Rastogi, Miklau & Suciu, "Boosting the accuracy of differentially
    private histograms through consistency", VLDB 2010): bottom-up weighted averages, then top-down
    redistribution of the parent's residual. Post-processing of the released counts."""
    z = [nodes[0]]
    for i in range(1, len(nodes)):
        a = 2.0 ** (i + 1)
        children = z[-1].reshape(z[-1].shape[0], -1, 2).sum(axis=2)
        z.append(((a - a / 2) * nodes[i] + (a / 2 - 1) * children) / (a - 1))
    top = z[-1]
    for i in range(len(nodes) - 2, -1, -1):
        pairs = z[i].reshape(z[i].shape[0], -1, 2)
        resid = (top - pairs.sum(axis=2)) / 2.0
        top = (pairs + resid[:, :, None]).reshape(z[i].shape)
    return top


def _tree_quadratic(a):
    """``a^T (H^T H)^-1 a`` for each row a (length L = 2^h) of `a`, H the (2L - 1) x L incidence
    matrix of the dyadic tree: the variance, per unit node variance, of the query ``a . leaves`` on
    the least-squares consistent leaves (:func:`_consistent_leaves` is that estimator, so their
    covariance is ``var (H^T H)^-1``). The Haar vectors diagonalize ``H^T H``: a wavelet whose
    children have s leaves each (+1 on one child, -1 on the other) has eigenvalue 2s - 1 (the
    nodes inside one child sum to 1 + 2 + ... + s), the constant vector 2L - 1; so with the Haar
    coefficients of a the form is ``sum (psi.a)^2 / (2s (2s - 1)) + (sum a)^2 / (L (2L - 1))``,
    O(L) per row."""
    tot = np.zeros(a.shape[0])
    s = 1
    while a.shape[1] > 1:
        left, right = a[:, 0::2], a[:, 1::2]
        diff = left - right
        tot += np.einsum("ij,ij->i", diff, diff) / (2.0 * s * (2 * s - 1))
        a = left + right
        s *= 2
    return tot + a[:, 0] ** 2 / (s * (2.0 * s - 1))


class _L1Tree:
    """Per coordinate, noisy dyadic-tree counts over 2^h cells post-processed into prefix arrays.

    P[k, j] estimates the number of records whose coordinate k lies in cells < j; I[k, j] is the
    integral of the piecewise-linear CDF from lo_k to boundary j, so that
    sum_x |x_k - y| = 2 * int_lo^y CDF - I[k, L] + N * (hi_k - y) costs O(1) per coordinate.
    """

    @staticmethod
    def counts(Z, lo, hi, h):
        """Exact leaf counts (d, 2^h): the cell of each record per coordinate, clamped to the box
        (= clipping), counted in C++."""
        L = 1 << h
        counts = np.empty((Z.shape[1], L), dtype=np.int64)
        _core.dp_l1_histogram(Z, lo, np.ascontiguousarray(1.0 / ((hi - lo) / L)), L, counts)
        return counts

    def __init__(self, counts, lo, hi, h, budget, src):
        d = counts.shape[0]
        L = 1 << h
        width = (hi - lo) / L
        levels = [counts]
        for _ in range(h):
            levels.append(levels[-1].reshape(d, -1, 2).sum(axis=2))
        flat = np.concatenate(levels, axis=1)  # d x (2L - 1): leaves first, root last
        # One record adds 1 to one node per level per coordinate: L1 sensitivity d(h+1), l2 sqrt(d(h+1)).
        rel = _noise.release_budget(flat, 0, d * (h + 1), d * (h + 1), budget, src)
        noisy = rel.values.reshape(d, 2 * L - 1)
        offsets = np.concatenate([[0], np.cumsum([L >> lvl for lvl in range(h + 1)])])
        nodes = [noisy[:, offsets[lvl] : offsets[lvl + 1]] for lvl in range(h + 1)]
        self.P, self.I = self.prefix_arrays(nodes, width)
        self.lo, self.hi, self.width, self.L = lo, hi, width, L
        self.release = rel

    @staticmethod
    def prefix_arrays(nodes, width):
        """(P, I) from per-level node counts (leaves first), each (rows, L >> level): consistent leaf
        counts, their prefix sums P (rows, L + 1) and the integral I of the piecewise-linear CDF.
        Linear in the counts, so applied to unit vectors it gives the weight of every node."""
        leaves = _consistent_leaves(nodes)
        rows = leaves.shape[0]
        P = np.concatenate([np.zeros((rows, 1)), np.cumsum(leaves, axis=1)], axis=1)
        integral = np.concatenate([np.zeros((rows, 1)), np.cumsum(0.5 * (P[:, :-1] + P[:, 1:]), axis=1)], axis=1)
        return P, integral * np.broadcast_to(width, (rows,))[:, None]

    def _tables(self):
        # Per (coordinate, cell): P_j, P_{j+1} - P_j, I_j, so one gather serves a query coordinate.
        d = self.lo.size
        t = np.empty((d, self.L, 3))
        t[:, :, 0] = self.P[:, :-1]
        t[:, :, 1] = self.P[:, 1:] - self.P[:, :-1]
        t[:, :, 2] = self.I[:, :-1]
        self._table = np.ascontiguousarray(t.reshape(d * self.L, 3))
        self._inv_width = np.ascontiguousarray(1.0 / self.width)
        self._N = np.ascontiguousarray(self.P[:, -1])
        self._const = float(np.sum(self._N * self.hi - self.I[:, -1]))  # sum_k (N_k hi_k - I_k[L])

    def query_ring(self, Y, alpha=0.05):
        """The paper's ring estimator on the raw noisy tree (no consistency step), for comparison.

        Backurs et al., Section 4: around y the line is cut into rings whose widths grow
        geometrically by (1 + alpha); a ring's count is a range count answered from O(log L) noisy
        dyadic nodes, and every record in it is charged the distance from y to the ring's middle (a
        relative error <= alpha / 2 for rings far from y). The cell holding y is charged the
        uniform-within-cell expectation. Returns (estimates, coefficients) where coefficients[i]
        is (d, 2L - 1): the weight of every released node in the answer to query i, so that the
        noise of the answer has variance ``release.variance * sum(coefficients[i] ** 2)``."""
        d, L = self.lo.size, self.L
        h = L.bit_length() - 1
        noisy = self.release.values.reshape(d, 2 * L - 1)
        offsets = np.concatenate([[0], np.cumsum([L >> lvl for lvl in range(h + 1)])]).astype(np.int64)
        bounds = [1]
        while bounds[-1] < L:
            bounds.append(max(bounds[-1] + 1, int(bounds[-1] * (1.0 + alpha))))
        Y = np.asarray(Y, dtype=np.float64)
        q = Y.shape[0]
        est = np.zeros(q)
        coef = np.zeros((q, d, 2 * L - 1))
        rows = np.arange(q)

        def add_prefix(k, t, weight):
            # count of cells [0, t) = sum over the set bits l of t of node (l, (t >> l) - 1)
            for lvl in range(h + 1):
                on = ((t >> lvl) & 1).astype(bool)
                node = offsets[lvl] + np.where(on, (t >> lvl) - 1, 0)
                w = np.where(on, weight, 0.0)
                np.add.at(coef, (rows, k, node), w)

        for k in range(d):
            y = Y[:, k]
            c = np.clip(y, self.lo[k], self.hi[k])
            u = (c - self.lo[k]) / self.width[k]
            j = np.minimum(u.astype(np.int64), L - 1)
            f = u - j
            w = self.width[k]
            np.add.at(coef, (rows, k, offsets[0] + j), w * 0.5 * (f * f + (1 - f) ** 2))  # type: ignore[arg-type]
            np.add.at(coef, (rows, k, np.full(q, offsets[h])), np.abs(y - c))  # type: ignore[arg-type]  # outside the box: root count
            for a_off, b_off in zip(bounds[:-1], bounds[1:]):
                a, b = np.minimum(j + a_off, L), np.minimum(j + b_off, L)  # right ring: cells [a, b)
                dist = np.where(b > a, ((a + b) * 0.5 - j - f) * w, 0.0)
                add_prefix(k, b, dist)
                add_prefix(k, a, -dist)
                a, b = np.maximum(j - b_off + 1, 0), np.maximum(j - a_off + 1, 0)  # left ring: cells [a, b)
                dist = np.where(b > a, (j + f - (a + b) * 0.5) * w, 0.0)
                add_prefix(k, b, dist)
                add_prefix(k, a, -dist)
        est = np.einsum("qkn,kn->q", coef, noisy)
        return est, coef

    def leaf_weights(self, k, y):
        """The weight of every consistent leaf count of coordinate k in the answer for y (q,): the
        query is ``sum_t leaves_t a_t(y)`` with ``a_t(y) = E|x - y|`` for x uniform on cell t
        (``|center_t - y|`` off the cell holding clip(y), ``width (f^2 + (1 - f)^2) / 2 + |y - clip(y)|``
        on it, f the position in that cell): (q, L)."""
        lo, w, L = self.lo[k], self.width[k], self.L
        a = np.abs(lo + w * (np.arange(L) + 0.5) - y[:, None])
        c = np.clip(y, lo, self.hi[k])
        u = (c - lo) / w
        j = np.minimum(u.astype(np.int64), L - 1)
        f = u - j
        a[np.arange(y.size), j] = w * 0.5 * (f * f + (1 - f) ** 2) + np.abs(y - c)
        return a

    def query_variance(self, Y):
        """Variance of the noise in :meth:`query` for each row of Y: the nodes' noise variance
        (``release.variance``, whatever the mechanism, equal on every node) times the sum over
        coordinates of :func:`_tree_quadratic` of the leaf weights (coordinates are released
        independently). O(d L) per query."""
        q, d = Y.shape
        out = np.zeros(q)
        step = max(1, (1 << 20) // self.L)
        for a0 in range(0, q, step):
            for k in range(d):
                out[a0 : a0 + step] += _tree_quadratic(self.leaf_weights(k, Y[a0 : a0 + step, k]))
        return self.release.variance * out

    def query(self, Y):
        """sum over coordinates of the estimated sum_x |x_k - y_k|, for each row of Y: with c = clip(y),
        2 int_lo^c CDF - I_L + N (hi - c) + N |y - c| per coordinate, O(1) each (C++ loop)."""
        if not hasattr(self, "_table"):
            self._tables()
        out = np.empty(Y.shape[0])
        _core.dp_l1_query(
            self._table,
            self.lo,
            self.hi,
            self.width,
            self._inv_width,
            self._N,
            self.L,
            self._const,
            Y if Y.flags.c_contiguous else np.ascontiguousarray(Y),
            out,
        )
        return out


def _sq_bits(half):
    return _fixed_bits(float(half.max())), _fixed_bits(float(np.sum(half * half)))


class _DistancePlan:
    """What a row block needs to compute its exact sums (public: bounds and projection)."""

    def __init__(self, metric, lo, hi, h, G, reach, private):
        self.metric, self.lo, self.hi, self.h, self.G, self.reach = metric, lo, hi, h, G, reach
        self.private = private  # driver-side state for _finish

    def __getstate__(self):  # shipped to workers without the noise source
        state = dict(self.__dict__)
        state["private"] = None
        return state

    def partial(self, X):
        """Exact int64 sums of the records X (already validated)."""
        if self.metric == "l1":
            return {"counts": _L1Tree.counts(X, self.lo, self.hi, self.h)}  # the histogram clamps
        center, half = 0.5 * (self.lo + self.hi), 0.5 * (self.hi - self.lo)
        Xc = np.clip(X, self.lo, self.hi) - center
        if self.metric == "l2":
            return {"counts": _L1Tree.counts(_project(Xc, self.G), -self.reach, self.reach, self.h)}
        fb1, fb2 = _sq_bits(half)
        r2 = float(np.sum(half * half))
        s1 = np.rint(np.ldexp(Xc, fb1)).astype(np.int64).sum(axis=0)
        q = np.zeros(Xc.shape[0])
        for k in range(Xc.shape[1]):  # elementwise, so a record's value never depends on the others
            q += Xc[:, k] * Xc[:, k]
        np.clip(q, 0.0, r2, out=q)
        s2 = np.array([np.rint(np.ldexp(q, fb2)).astype(np.int64).sum()])
        return {"count": np.array([Xc.shape[0]], dtype=np.int64), "sum": s1, "sumsq": s2}


class DistanceSum:
    """Differentially private distance sums ``F(y) = sum_{x in X} dist(x, y)``.

    Parameters
    ----------
    metric : {"l1", "l2", "sqeuclidean"}
    epsilon : float
        epsilon-DP under adding or removing one record (pure with the Laplace mechanism,
        (epsilon, delta) with the Gaussian).
    bounds : (lo, hi) or float
        Public box the records are clipped to: scalars or one value per feature, or a radius ``r``
        for ``(-r, r)``. Never computed from the data.
    resolution : int, optional
        l1 and l2: number of grid cells per coordinate, a power of two (default 256; finer cells cut the
        within-cell approximation but add tree levels, hence noise).
    n_projections : int, optional
        l2 only: number of Gaussian projections to l1 (default 64); the approximation's relative
        standard deviation is about ``0.76 / sqrt(n_projections)``.
    rng : None, int or numpy.random.Generator
        None (default): noise from the OS CSPRNG. Otherwise the noise is reproducible and
        :class:`NotPrivateWarning` is emitted.
    accountant : Accountant, optional
        Charged ``epsilon`` on fit (with ``delta`` and the zCDP ``rho`` for the Gaussian mechanism).
    mechanism : {"laplace", "gaussian"}, default "laplace"
        Discrete Laplace noise scaled to the L1 sensitivity (pure epsilon-DP), or discrete Gaussian
        noise scaled to the l2 sensitivity ((epsilon, delta)-DP through zCDP). l1 / l2 trees: L1
        sensitivity ``d(h+1)``, l2 ``sqrt(d(h+1))``, so the Gaussian wins for many coordinates or
        levels; sqeuclidean: ``sum_k r_k`` against ``sqrt(sum_k r_k^2)`` for the sum.
    delta : float, default 0.0
        0 for the Laplace mechanism; ``0 < delta < 1`` for the Gaussian.

    Notes
    -----
    Backurs, Lin, Mahabadi, Silwal, Tarnawski, "Efficiently Computing Similarities to Private Datasets"
    (ICLR 2024). l1: per coordinate a dyadic tree of counts over ``L = 2^h`` cells on the public bounds,
    discrete Laplace of scale ``d(h+1)/epsilon`` on every node, post-processed into prefix arrays of the
    CDF and its integral, so a query is O(d). sqeuclidean: noisy count, noisy sum of the centred
    records and noisy sum of their squared norms (epsilon split in three), O(d) per query. l2: the
    records are projected by a public Gaussian matrix G (k x d) and ``||v||_2`` is estimated by
    ``sqrt(pi/2) / k * ||G v||_1`` with the l1 structure in k dimensions.

    Attributes
    ----------
    epsilon_ : float
        The epsilon charged (the noise actually calibrated to an epsilon <= this).
    n_records_ : float
        The noisy record count.
    projection_ : ndarray (l2 only)
        The public projection matrix.

    Examples
    --------
    >>> import numpy as np
    >>> import numkern
    >>> from numkern import dp
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(20000, 3))
    >>> Y = np.array([[0.0, 0.0, 0.0], [0.5, -0.5, 0.25]])
    >>> s = dp.DistanceSum("l1", epsilon=1.0, bounds=(-1.0, 1.0)).fit(X)
    >>> exact = numkern.distance_sum(X, Y, metric="l1")
    >>> print(s.query(Y).shape, bool(np.all(np.abs(s.query(Y) - exact) < 0.01 * exact)))
    (2,) True
    >>> s.epsilon_
    1.0
    """

    def __init__(
        self,
        metric: str = "l1",
        epsilon: float = 1.0,
        bounds: BoundsLike | None = None,
        *,
        resolution: int | None = None,
        n_projections: int | None = None,
        rng: RngLike = None,
        accountant: Accountant | None = None,
        mechanism: str = "laplace",
        delta: float = 0.0,
    ) -> None:
        self.metric = metric
        self.epsilon = epsilon
        self.bounds = bounds
        self.resolution = resolution
        self.n_projections = n_projections
        self.rng = rng
        self.accountant = accountant
        self.mechanism = mechanism
        self.delta = delta

    def _h(self):
        res = 256 if self.resolution is None else self.resolution
        if (
            isinstance(res, bool)
            or not isinstance(res, numbers.Integral)
            or not 1 <= int(res) <= 2**20
            or int(res) & (int(res) - 1)
        ):
            raise ValueError(f"resolution must be a power of two in [1, 2^20], got {self.resolution!r}")
        return int(res).bit_length() - 1

    def fit(self, X: ArrayLike) -> DistanceSum:
        """Build the structure from the private records X (n, d); returns self."""
        self._params()
        X = private_data(X)
        plan = self._begin(X.shape[1])
        return self._finish(plan, plan.partial(X))

    # fit in three steps, so that numkern.dask can sum the exact partials of row blocks in between:
    # _begin (driver: checks, public projection, accountant), plan.partial (any machine: exact
    # int64 sums of a block), _finish (driver: the noise, added once).
    def _params(self):
        if self.metric not in ("l1", "l2", "sqeuclidean"):
            raise ValueError(f"metric must be 'l1', 'l2' or 'sqeuclidean', got {self.metric!r}")
        eps = check_epsilon(self.epsilon)
        check_mechanism(self.mechanism, self.delta)
        return eps

    def _begin(self, d):
        eps = self._params()
        mech, delta = check_mechanism(self.mechanism, self.delta)
        budget = _noise.Budget.of(mech, eps, delta)
        lo, hi = _bounds(self.bounds, d)
        h = self._h() if self.metric != "sqeuclidean" else 0
        k = None
        if self.metric == "l2":
            k = 64 if self.n_projections is None else self.n_projections
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
                raise ValueError(f"n_projections must be a positive integer, got {self.n_projections!r}")
        src = _noise.bit_source(self.rng, stacklevel=4)
        charge(self.accountant, eps, f"DistanceSum({self.metric})", delta=budget.delta, rho=budget.rho)
        G = reach = None
        if self.metric == "l2":
            G = _noise.data_independent_rng(self.rng, src).standard_normal((k, d))
            reach = np.abs(G) @ (0.5 * (hi - lo))  # |g . x| <= reach for every clipped record: public
        return _DistancePlan(self.metric, lo, hi, h, G, reach, (eps, src, d, budget))

    def _finish(self, plan, sums):
        eps, src, d, budget = plan.private
        lo, hi, h = plan.lo, plan.hi, plan.h
        self.epsilon_ = eps
        self.delta_ = budget.delta
        center = 0.5 * (lo + hi)
        half = 0.5 * (hi - lo)
        self.center_, self.n_features_in_ = center, d
        if self.metric == "sqeuclidean":
            fb1, fb2 = _sq_bits(half)
            per = [math.ceil(math.ldexp(float(r), fb1)) for r in half]
            sens1, sens1_sq = sum(per), sum(v * v for v in per)
            sens2 = math.ceil(math.ldexp(float(np.sum(half * half)), fb2))
            third = budget.part(1 / 3) if budget.rho is not None else budget._replace(epsilon=eps / 3)
            self._count = _noise.release_budget(sums["count"], 0, 1, 1, third, src)
            self._sum = _noise.release_budget(sums["sum"], fb1, sens1, sens1_sq, third, src)
            self._sumsq = _noise.release_budget(sums["sumsq"], fb2, sens2, sens2 * sens2, third, src)
            self.n_records_ = float(self._count.values[0])
            self.rho_ = None if budget.rho is None else self._count.rho + self._sum.rho + self._sumsq.rho
            return self
        if self.metric == "l1":
            self._tree = _L1Tree(sums["counts"], lo, hi, h, budget, src)
        else:
            self.projection_ = plan.G
            self._tree = _L1Tree(sums["counts"], -plan.reach, plan.reach, h, budget, src)
        self.rho_ = self._tree.release.rho
        self.n_records_ = float(self._tree.P[:, -1].mean())
        return self

    def query(self, Y: ArrayLike) -> np.ndarray:
        """Estimates of ``F(y)`` for each row of Y (or a scalar for a 1-D Y). Post-processing: free."""
        if not hasattr(self, "epsilon_"):
            raise ValueError("this DistanceSum is not fitted yet; call fit(X) first")
        Yc, single = queries(Y, self.n_features_in_)
        if self.metric == "l1":
            out = self._tree.query(Yc)
            return out[0] if single else out
        Yc = Yc - self.center_
        if self.metric == "l2":
            k = self.projection_.shape[0]
            out = math.sqrt(math.pi / 2) / k * self._tree.query(_project(Yc, self.projection_))
        else:
            n, s, q = self._count.values[0], self._sum.values, self._sumsq.values[0]
            out = q - 2.0 * (Yc @ s) + n * np.einsum("ij,ij->i", Yc, Yc)
        return out[0] if single else out

    def query_std(self, Y: ArrayLike) -> np.ndarray:
        """Analytic standard deviation of the DP noise in :meth:`query` for each row of Y (a scalar
        for a 1-D Y). Post-processing: free.

        Every answer is linear in the released noisy quantities, whose noise is independent with
        the per-value variance of each release; the variance of the answer follows from how the
        query combines them:

        - sqeuclidean: ``q - 2 y.s + n ||y||^2`` (y centred on the box) has variance
          ``var_q + 4 ||y||^2 var_s + ||y||^4 var_n``;
        - l1: the answer is ``sum_k sum_t leaves_kt E|x - y_k|`` over x uniform on cell t, on the
          least-squares consistent leaves of each coordinate's dyadic tree, whose covariance is
          ``var (H^T H)^-1`` (H the tree's incidence matrix; diagonalized by the Haar basis, so O(L)
          per coordinate and query);
        - l2: ``sqrt(pi / 2) / k`` times the l1 answer at the projected query ``G y``.

        The within-cell (l1, l2) and projection (l2) approximation errors are separate and not
        included; a query outside the box is covered (its extra distance multiplies the noisy count).

        Examples
        --------
        >>> import numpy as np
        >>> import numkern
        >>> from numkern import dp
        >>> X = np.random.default_rng(0).uniform(-1, 1, size=(20000, 3))
        >>> Y = np.array([[0.0, 0.0, 0.0], [0.5, -0.5, 0.25]])
        >>> s = dp.DistanceSum("l1", epsilon=1.0, bounds=(-1.0, 1.0)).fit(X)
        >>> std = s.query_std(Y)
        >>> exact = numkern.distance_sum(X, Y, metric="l1")
        >>> print(std.shape, bool(np.all(std < 0.002 * exact)))
        (2,) True
        >>> print(bool(np.all(np.abs(s.query(Y) - exact) < 6 * std + 0.001 * exact)))
        True
        """
        if not hasattr(self, "epsilon_"):
            raise ValueError("this DistanceSum is not fitted yet; call fit(X) first")
        Yc, single = queries(Y, self.n_features_in_)
        if self.metric == "l1":
            var = self._tree.query_variance(Yc)
        elif self.metric == "l2":
            k = self.projection_.shape[0]
            var = (math.pi / 2) / (k * k) * self._tree.query_variance(_project(Yc - self.center_, self.projection_))
        else:
            Yc = Yc - self.center_
            r2 = np.einsum("ij,ij->i", Yc, Yc)
            var = self._sumsq.variance + 4.0 * r2 * self._sum.variance + r2 * r2 * self._count.variance
        out = np.sqrt(var)
        return out[0] if single else out
