"""Pure-DP budget accounting by sequential composition."""

from __future__ import annotations

import math
import numbers


class BudgetExceededError(RuntimeError):
    """A fit would spend more epsilon than the Accountant has left; nothing was released.

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


class Accountant:
    """Tracks the epsilon spent on one dataset under sequential composition.

    Pass it as ``accountant=`` to any numkern.dp structure: ``fit`` charges the structure's epsilon
    before any noise is drawn and raises :class:`BudgetExceededError` (releasing nothing) if the
    charge would exceed ``total_epsilon``. Fits on disjoint subsets (the classes of
    :class:`SimilarityClassifier`) are charged once, by parallel composition.

    Parameters
    ----------
    total_epsilon : float
        The budget, > 0.

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
    """

    def __init__(self, total_epsilon: float) -> None:
        self.total_epsilon = check_epsilon(total_epsilon, "total_epsilon")
        self.spent: list[tuple[str, float]] = []  # (label, epsilon)

    @property
    def spent_epsilon(self) -> float:
        return math.fsum(e for _, e in self.spent)

    @property
    def remaining_epsilon(self) -> float:
        return max(0.0, self.total_epsilon - self.spent_epsilon)

    def charge(self, epsilon: float, label: str = "") -> None:
        """Spend `epsilon`, or raise BudgetExceededError and spend nothing."""
        epsilon = check_epsilon(epsilon)
        if self.spent_epsilon + epsilon > self.total_epsilon * (1 + 1e-12):
            raise BudgetExceededError(
                f"numkern.dp: {label or 'fit'} needs epsilon={epsilon:g} but only "
                f"{self.remaining_epsilon:g} of {self.total_epsilon:g} is left"
            )
        self.spent.append((label, epsilon))

    def __repr__(self) -> str:
        return f"Accountant(total_epsilon={self.total_epsilon:g}, spent={self.spent_epsilon:g})"


def charge(accountant, epsilon: float, label: str) -> None:
    if accountant is None:
        return
    if not isinstance(accountant, Accountant):
        raise ValueError(f"accountant must be a numkern.dp.Accountant or None, got {type(accountant).__name__}")
    accountant.charge(epsilon, label)
