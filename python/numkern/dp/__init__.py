"""numkern.dp: differentially private similarity structures.

Placeholder docstring; replaced below.
"""

from ._accountant import Accountant, BudgetExceededError
from ._distance import DistanceSum
from ._exact import distance_sum, kernel_sum
from ._noise import NotPrivateWarning

__all__ = ["Accountant", "BudgetExceededError", "DistanceSum", "NotPrivateWarning", "distance_sum", "kernel_sum"]
from ._kde import KernelDensity  # noqa: E402

__all__ += ["KernelDensity"]
from ._classifier import SimilarityClassifier  # noqa: E402

__all__ += ["SimilarityClassifier"]
