"""Black-box privacy audit: a statistical lower bound on the epsilon a mechanism really spends.

Run the mechanism many times on two neighbouring datasets D and D' (one extra record), compute
statistics of each release, and for a threshold event E = {statistic > tau} (or its complement)
bound ``ln P(E | D') - ln P(E | D)`` (and the reverse) from below with Clopper-Pearson intervals.
Half of the runs choose the event, the other half give the bound, so the choice cannot inflate it.
A correct epsilon-DP mechanism gives a bound <= epsilon with probability >= 1 - alpha; a bound above
the claimed epsilon is proof (at that confidence) that the claim is false. For an (epsilon, delta)-DP
claim the bound is on ``ln((P(E | D') - delta) / P(E | D))``, which an (epsilon, delta)-DP mechanism
keeps <= epsilon for every event E.
"""

from __future__ import annotations

import numpy as np


def clopper_pearson(k, n, alpha):
    """Two-sided (1 - alpha) Clopper-Pearson interval for k successes in n trials (arrays)."""
    from scipy.stats import beta

    k = np.asarray(k, dtype=np.float64)
    lo = np.where(k > 0, beta.ppf(alpha / 2, np.maximum(k, 1e-300), n - k + 1), 0.0)
    hi = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, np.maximum(n - k, 1e-300)), 1.0)
    return lo, hi


def _event_counts(a, b, taus):
    """Counts of a > tau and b > tau for each tau."""
    sa, sb = np.sort(a), np.sort(b)
    return a.size - np.searchsorted(sa, taus, side="right"), b.size - np.searchsorted(sb, taus, side="right")


def _bounds(k0, k1, n, alpha, delta=0.0):
    """Lower bounds on ln((p1 - delta)/p0) and ln((p0 - delta)/p1) for the events with counts k0 (D)
    and k1 (D')."""
    lo0, hi0 = clopper_pearson(k0, n, alpha)
    lo1, hi1 = clopper_pearson(k1, n, alpha)
    with np.errstate(divide="ignore"):
        return (
            np.log(np.maximum(lo1 - delta, 0.0)) - np.log(hi0),
            np.log(np.maximum(lo0 - delta, 0.0)) - np.log(hi1),
        )


def epsilon_lower_bound(stats0, stats1, alpha=1e-3, n_thresholds=64, delta=0.0):
    """Lower bound on epsilon from statistics of releases on D (stats0) and D' (stats1).

    Parameters
    ----------
    stats0, stats1 : array_like, shape (n_runs, n_statistics)
    alpha : float
        The bound holds with probability >= 1 - alpha for a mechanism that is epsilon-DP (or
        (epsilon, delta)-DP with the given ``delta``).
    n_thresholds : int
        Thresholds per statistic: the quantiles ``k / (n_thresholds + 1)`` of the selection half
        (more thresholds reach further into the tails, where Gaussian mechanisms leak).
    delta : float, default 0
        The delta of the claim being audited.

    Returns
    -------
    float
        The empirical lower bound (0 if no event shows a difference). Events are
        ``{s > tau}`` and ``{s <= tau}``, both directions of the neighbour relation.
    """
    s0 = np.asarray(stats0, dtype=np.float64)
    s1 = np.asarray(stats1, dtype=np.float64)
    if s0.ndim == 1:
        s0, s1 = s0[:, None], s1[:, None]
    n = min(s0.shape[0], s1.shape[0]) // 2
    sel0, ev0, sel1, ev1 = s0[:n], s0[n : 2 * n], s1[:n], s1[n : 2 * n]
    best, best_score = None, -np.inf
    qs = np.linspace(0.0, 1.0, n_thresholds + 2)[1:-1]
    for j in range(s0.shape[1]):
        taus = np.unique(np.quantile(np.concatenate([sel0[:, j], sel1[:, j]]), qs))
        k0, k1 = _event_counts(sel0[:, j], sel1[:, j], taus)
        for complement in (False, True):
            c0, c1 = (n - k0, n - k1) if complement else (k0, k1)
            for direction, score in enumerate(_bounds(c0, c1, n, alpha, delta)):
                i = int(np.argmax(score))
                if score[i] > best_score:
                    best_score, best = score[i], (j, taus[i], complement, direction)
    if best is None:
        return 0.0
    j, tau, complement, direction = best
    k0, k1 = _event_counts(ev0[:, j], ev1[:, j], np.array([tau]))
    if complement:
        k0, k1 = n - k0, n - k1
    bound = _bounds(k0, k1, n, alpha, delta)[direction][0]
    return float(max(bound, 0.0))
