"""Privacy budget accounting: pure epsilon-DP, (epsilon, delta)-DP through zero-concentrated DP (zCDP).

Conversions (all standard, each one a valid bound on its own):

- a pure epsilon-DP release is (epsilon^2 / 2)-zCDP (Bun & Steinke, TCC 2016, Proposition 1.4);
- the discrete Gaussian with variance parameter sigma^2 on an integer vector of l2 sensitivity Delta is
  (Delta^2 / (2 sigma^2))-zCDP (Canonne, Kamath & Steinke, NeurIPS 2020, Theorem 14);
- zCDP composes by adding rho;
- rho-zCDP implies (epsilon, delta)-DP for every order alpha > 1 with
  ``epsilon = alpha rho + log(1 - 1/alpha) - (log(delta) + log(alpha)) / (alpha - 1)``
  (Canonne, Kamath & Steinke 2020, Corollary 13; Balle et al. 2020), minimized over alpha here; never
  worse than the classical ``rho + 2 sqrt(rho log(1/delta))`` (Bun & Steinke 2016), which is also
  evaluated and the smaller value taken.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np


class BudgetExceededError(RuntimeError):
    """A fit would spend more than the Accountant has left; nothing was released.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import dp
    >>> acc = dp.Accountant(1.0)
    >>> try:
    ...     dp.DistanceSum("l1", 2.0, bounds=(-1.0, 1.0), accountant=acc).fit(np.zeros((10, 1)))
    ... except dp.BudgetExceededError as e:
    ...     print(type(e).__name__, isinstance(e, ValueError))
    BudgetExceededError False
    """


def check_epsilon(epsilon, name: str = "epsilon") -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise ValueError(f"{name} must be a positive finite real number, got {epsilon!r}")
    e = float(epsilon)
    if not (math.isfinite(e) and e > 0):
        raise ValueError(f"{name} must be positive and finite, got {epsilon!r}")
    return e


MECHANISMS = ("laplace", "gaussian")


def check_mechanism(mechanism, delta) -> tuple[str, float]:
    """(mechanism, delta) validated: laplace needs delta == 0 (pure epsilon-DP), gaussian 0 < delta < 1."""
    if mechanism not in MECHANISMS:
        raise ValueError(f"mechanism must be 'laplace' or 'gaussian', got {mechanism!r}")
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not math.isfinite(float(delta)):
        raise ValueError(f"delta must be a real number in [0, 1), got {delta!r}")
    d = float(delta)
    if mechanism == "laplace" and d != 0.0:
        raise ValueError(
            f"delta must be 0 for the Laplace mechanism (it is pure epsilon-DP); got delta={delta!r}. "
            "Use mechanism='gaussian' for (epsilon, delta)-DP"
        )
    if mechanism == "gaussian" and not 0.0 < d < 1.0:
        raise ValueError(f"the Gaussian mechanism needs 0 < delta < 1, got delta={delta!r}")
    return mechanism, d


_ORDERS = 1.0 + np.logspace(-6.0, 6.0, 1201)


def zcdp_epsilon(rho: float, delta: float) -> float:
    """The epsilon of the (epsilon, delta)-DP guarantee implied by rho-zCDP (module docstring).

    Examples
    --------
    >>> from numkern.dp._accountant import zcdp_epsilon
    >>> round(zcdp_epsilon(0.5, 1e-6), 3)
    5.222
    """
    if rho <= 0.0:
        return 0.0
    a = _ORDERS
    log_d = math.log(delta)
    eps = a * rho + np.log1p(-1.0 / a) - (log_d + np.log(a)) / (a - 1.0)
    i = int(np.argmin(eps))
    # Refine around the best grid order (any order gives a valid bound, so refining only tightens).
    lo, hi = a[max(i - 1, 0)], a[min(i + 1, a.size - 1)]
    fine = np.linspace(lo, hi, 401)
    eps_fine = fine * rho + np.log1p(-1.0 / fine) - (log_d + np.log(fine)) / (fine - 1.0)
    best = float(min(eps[i], eps_fine.min()))
    classical = rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))
    return min(best, classical)


def zcdp_rho(epsilon: float, delta: float) -> float:
    """The largest rho whose zCDP guarantee implies (epsilon, delta)-DP by :func:`zcdp_epsilon`
    (bisection, with a 1e-9 relative margin against rounding in the conversion).

    Examples
    --------
    >>> from numkern.dp._accountant import zcdp_epsilon, zcdp_rho
    >>> rho = zcdp_rho(1.0, 1e-6)
    >>> print(round(rho, 5), zcdp_epsilon(rho, 1e-6) <= 1.0)
    0.02436 True
    """
    target = epsilon * (1.0 - 1e-9)
    lo, hi = 0.0, epsilon * epsilon / 2.0 + epsilon  # at rho >= epsilon the conversion exceeds epsilon
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if zcdp_epsilon(mid, delta) <= target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return lo


class Charge(NamedTuple):
    """One release charged to an :class:`Accountant`: ``rho`` is None for a pure epsilon-DP release;
    for a Gaussian release it is the zCDP parameter, and (epsilon, delta) what it was calibrated to."""

    label: str
    epsilon: float
    delta: float
    rho: float | None


class Accountant:
    """Tracks the privacy budget spent on one dataset, before anything is released.

    Pass it as ``accountant=`` to any numkern.dp structure or to :func:`add_noise`: the charge is made
    before any noise is drawn and :class:`BudgetExceededError` is raised (nothing released) if it would
    exceed the budget. Fits on disjoint subsets (the classes of :class:`SimilarityClassifier`) are
    charged once, by parallel composition.

    Parameters
    ----------
    total_epsilon : float, optional
        An (epsilon, delta)-DP budget with ``delta = total_delta``.
    total_delta : float, default 0
        0: a pure epsilon-DP budget; Laplace releases compose by adding epsilon and Gaussian releases
        are refused. ``0 < total_delta < 1``: releases are composed both by adding the epsilons of the
        pure ones and converting the zCDP of the Gaussian ones, and through zCDP alone (every pure
        epsilon-DP release is (epsilon^2/2)-zCDP, rho adds up, converted to (epsilon, total_delta));
        the smaller epsilon counts.
    total_rho : float, optional (keyword)
        A zCDP budget instead: every release is charged its rho (epsilon^2/2 for pure releases).

    Notes
    -----
    Conversions and references: :mod:`numkern.dp._accountant`. A Gaussian release calibrated to
    ``(epsilon, delta)`` is charged its exact zCDP parameter ``rho`` (see ``docs/design/dp.md``), so a
    single Gaussian release calibrated to the whole budget always fits.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import dp
    >>> X = np.random.default_rng(0).uniform(-1, 1, size=(1000, 2))
    >>> acc = dp.Accountant(1.0)
    >>> s = dp.DistanceSum("l1", 0.75, bounds=(-1.0, 1.0), accountant=acc).fit(X)
    >>> print(round(acc.spent_epsilon, 6), round(acc.remaining_epsilon, 6))
    0.75 0.25
    >>> try:
    ...     dp.DistanceSum("l1", 0.5, bounds=(-1.0, 1.0), accountant=acc).fit(X)
    ... except dp.BudgetExceededError:
    ...     print("refused: nothing was released")
    refused: nothing was released

    An (epsilon, delta) budget: two Gaussian releases at (1, 1e-6) each compose, through zCDP, to
    less than the (2, 2e-6) of basic composition:

    >>> acc = dp.Accountant(1.5, total_delta=1e-6)
    >>> x = np.zeros(3)
    >>> for _ in range(2):
    ...     _ = dp.add_noise(x, sensitivity=1.0, epsilon=1.0, delta=1e-6, mechanism="gaussian", accountant=acc)
    >>> print(round(acc.spent_epsilon, 3), round(acc.spent_rho, 5))
    1.451 0.04871
    """

    def __init__(
        self, total_epsilon: float | None = None, total_delta: float = 0.0, *, total_rho: float | None = None
    ) -> None:
        if (total_epsilon is None) == (total_rho is None):
            raise ValueError("give exactly one budget: total_epsilon (with total_delta) or total_rho")
        if total_rho is not None:
            self.total_rho: float | None = check_epsilon(total_rho, "total_rho")
            self.total_epsilon: float | None = None
            if total_delta != 0.0:
                raise ValueError("total_delta applies to an epsilon budget, not to total_rho")
        else:
            self.total_rho = None
            self.total_epsilon = check_epsilon(total_epsilon, "total_epsilon")
        if isinstance(total_delta, bool) or not isinstance(total_delta, numbers.Real) or not 0 <= total_delta < 1:
            raise ValueError(f"total_delta must be in [0, 1), got {total_delta!r}")
        self.total_delta: float = float(total_delta)
        self.spent: list[Charge] = []

    # --- composition ------------------------------------------------------------------------------
    @staticmethod
    def _rho_of(c: Charge) -> float:
        return c.epsilon * c.epsilon / 2.0 if c.rho is None else c.rho

    @staticmethod
    def _rho(charges) -> float:
        return math.fsum(Accountant._rho_of(c) for c in charges)

    def _epsilon(self, charges) -> float:
        pure = math.fsum(c.epsilon for c in charges if c.rho is None)
        gauss = [c for c in charges if c.rho is not None]
        if not gauss:
            return pure
        if self.total_delta == 0.0:
            return math.inf  # a Gaussian release is not pure epsilon-DP
        rho_g = math.fsum(c.rho for c in gauss)
        return min(pure + zcdp_epsilon(rho_g, self.total_delta), zcdp_epsilon(self._rho(charges), self.total_delta))

    @property
    def spent_rho(self) -> float:
        """The zCDP parameter of everything charged so far (pure releases count epsilon^2/2)."""
        return self._rho(self.spent)

    @property
    def spent_epsilon(self) -> float:
        """The epsilon of the composed guarantee at ``total_delta`` (epsilon budgets); ``nan`` for a
        rho budget (see :attr:`spent_rho`)."""
        if self.total_epsilon is None:
            return math.nan
        return self._epsilon(self.spent)

    @property
    def remaining_epsilon(self) -> float:
        """``total_epsilon - spent_epsilon`` (at least 0); ``nan`` for a rho budget."""
        if self.total_epsilon is None:
            return math.nan
        return max(0.0, self.total_epsilon - self.spent_epsilon)

    @property
    def remaining_rho(self) -> float:
        """``total_rho - spent_rho`` (at least 0) for a rho budget; for an epsilon budget with
        ``total_delta > 0`` the rho that the zCDP route still allows; 0 for a pure budget."""
        if self.total_rho is not None:
            return max(0.0, self.total_rho - self.spent_rho)
        if self.total_delta == 0.0:
            return 0.0
        assert self.total_epsilon is not None
        return max(0.0, zcdp_rho(self.total_epsilon, self.total_delta) - self.spent_rho)

    def charge(self, epsilon: float, label: str = "", *, delta: float = 0.0, rho: float | None = None) -> None:
        """Spend a release's budget, or raise BudgetExceededError and spend nothing.

        ``rho=None``: a pure epsilon-DP release (``delta`` must be 0). Otherwise a zCDP release of
        parameter ``rho`` calibrated to ``(epsilon, delta)``.
        """
        epsilon = check_epsilon(epsilon)
        if rho is None:
            if delta != 0.0:
                raise ValueError("an (epsilon, delta) charge needs its zCDP parameter rho")
        else:
            rho = check_epsilon(rho, "rho")
        entry = Charge(label, epsilon, float(delta), rho)
        trial = [*self.spent, entry]
        what = label or "release"
        if self.total_rho is not None:
            if self._rho(trial) > self.total_rho * (1 + 1e-12):
                raise BudgetExceededError(
                    f"numkern.dp: {what} needs rho={self._rho_of(entry):g} but only "
                    f"{self.remaining_rho:g} of total_rho={self.total_rho:g} is left"
                )
        else:
            assert self.total_epsilon is not None
            if rho is not None and self.total_delta == 0.0:
                raise BudgetExceededError(
                    f"numkern.dp: {what} is (epsilon, delta)-DP (Gaussian noise) but this Accountant holds a pure "
                    "epsilon budget; give it total_delta > 0 or total_rho"
                )
            if self._epsilon(trial) > self.total_epsilon * (1 + 1e-12):
                raise BudgetExceededError(
                    f"numkern.dp: {what} needs epsilon={epsilon:g}"
                    + (f" (rho={rho:g})" if rho is not None else "")
                    + f" but only {self.remaining_epsilon:g} of {self.total_epsilon:g}"
                    + (f" at delta={self.total_delta:g}" if self.total_delta else "")
                    + " is left"
                )
        self.spent.append(entry)

    def __repr__(self) -> str:
        if self.total_rho is not None:
            return f"Accountant(total_rho={self.total_rho:g}, spent_rho={self.spent_rho:g})"
        if self.total_delta:
            return (
                f"Accountant(total_epsilon={self.total_epsilon:g}, total_delta={self.total_delta:g}, "
                f"spent={self.spent_epsilon:g})"
            )
        return f"Accountant(total_epsilon={self.total_epsilon:g}, spent={self.spent_epsilon:g})"


def charge(accountant, epsilon: float, label: str, *, delta: float = 0.0, rho: float | None = None) -> None:
    if accountant is None:
        return
    if not isinstance(accountant, Accountant):
        raise ValueError(f"accountant must be a numkern.dp.Accountant or None, got {type(accountant).__name__}")
    accountant.charge(epsilon, label, delta=delta, rho=rho)
