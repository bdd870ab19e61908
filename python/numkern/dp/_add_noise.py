"""add_noise: the Laplace or Gaussian mechanism on any array (a statistic the caller computed)."""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from .. import _core
from . import _noise
from ._accountant import charge, check_epsilon, check_mechanism

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._validate import RngLike
    from ._accountant import Accountant

_MECH = {"laplace": 0, "gaussian": 1}
_HEADROOM = 12  # the sensitivity is >= 2^12 times the rounding term, in grid units
_MAX_T = int(_core.dp_max_laplace_scale)
_MAX_S = int(_core.dp_max_gaussian_variance)


def _check_sensitivity(sensitivity) -> Fraction:
    if isinstance(sensitivity, bool) or not isinstance(sensitivity, numbers.Real):
        raise ValueError(f"sensitivity must be a positive finite real number, got {sensitivity!r}")
    s = float(sensitivity)
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"sensitivity must be positive and finite, got {sensitivity!r}")
    return Fraction(s)


def _floor_log2(v: Fraction) -> int:
    """floor(log2(v)) of a positive rational, exactly (no float underflow for tiny sensitivities)."""
    k = v.numerator.bit_length() - v.denominator.bit_length()
    return k - 1 if Fraction(2) ** k > v else k


def _laplace_plan(sens: Fraction, eps: Fraction, n: int, e_min: int):
    """(e, t, epsilon spent): the grid 2^e puts the sensitivity at about 2^12 n grid units, so the
    rounding term n (each value's rounding moves by less than one unit) costs under 2^-12 of it;
    t = ceil((ceil(sens / 2^e) + n) / eps), coarsened while t exceeds the sampler's range."""
    n = max(n, 1)
    e = max(_floor_log2(sens / (n << _HEADROOM)), e_min)
    while True:
        sens_grid = math.ceil(sens / Fraction(2) ** e) + n
        t = math.ceil(Fraction(sens_grid) / eps)
        if t <= _MAX_T:
            return e, t, Fraction(sens_grid, t)
        e += 1


def _gaussian_plan(sens: Fraction, rho: Fraction, n: int, e_min: int, noise_multiplier: float = 1.0):
    """(e, S, rho spent): the grid puts the l2 sensitivity at about 2^12 sqrt(n) grid units (the
    rounding term is sqrt(n) in l2); S = ceil(b^2 / (2 rho)) with b an upper bound on
    sens / 2^e + sqrt(n) (:func:`numkern.dp._noise.gaussian_scale`), coarsened while S exceeds the
    sampler's range."""
    n = max(n, 1)
    e = max(_floor_log2(sens / (math.isqrt(n) + 1)) - _HEADROOM, e_min)
    while True:
        S, b_sq = _noise.gaussian_scale(sens * sens, n, True, e, rho)
        S = max(1, math.ceil(S * Fraction(noise_multiplier) ** 2))
        if S <= _MAX_S:
            return e, S, b_sq
        e += 1


def add_noise(
    x: ArrayLike,
    *,
    sensitivity: float,
    epsilon: float,
    delta: float = 0.0,
    mechanism: str = "laplace",
    rng: RngLike = None,
    accountant: Accountant | None = None,
) -> np.ndarray:
    """A differentially private copy of the array ``x``: exact discrete Laplace or discrete Gaussian
    noise on a power-of-two grid.

    ``x`` is a statistic of a private dataset that the caller computed (a histogram, a sum, a vector of
    means); ``sensitivity`` bounds how much the whole array can change when one record is added or
    removed: in the L1 norm for ``mechanism="laplace"`` (pure epsilon-DP), in the l2 norm for
    ``mechanism="gaussian"`` ((epsilon, delta)-DP through zCDP).

    Parameters
    ----------
    x : array_like
        float32 or float64 (kept), or integers / bool (released as float64); any shape and strides.
        Must be finite. Never modified.
    sensitivity : float
        L1 (laplace) or l2 (gaussian) sensitivity of ``x`` as a whole, > 0.
    epsilon : float
        > 0.
    delta : float, default 0.0
        0 for the Laplace mechanism; ``0 < delta < 1`` for the Gaussian.
    mechanism : {"laplace", "gaussian"}
    rng : None, int or numpy.random.Generator
        None (default): the noise comes from ChaCha20 keyed by the OS CSPRNG (``os.urandom``).
        Otherwise it is reproducible and :class:`NotPrivateWarning` is emitted.
    accountant : Accountant, optional
        Charged before any noise is drawn (:class:`BudgetExceededError`, nothing released, if the
        budget would be exceeded).

    Returns
    -------
    ndarray
        A new C-contiguous array of the shape of ``x`` and dtype float32 (for float32 ``x``) or
        float64, every value an integer multiple of a power of two ``2^e`` (the grid).

    Notes
    -----
    Each value is rounded to the grid ``2^e`` and an independent noise integer is added (in grid
    units); the grid is chosen from public quantities only (sensitivity, epsilon, delta, the number of
    values ``n``) so that the sensitivity is about ``2^12 n`` (L1) or ``2^12 sqrt(n)`` (l2) grid
    units. Rounding can move each value by one more grid unit, so the sensitivity in grid units is
    ``ceil(sensitivity / 2^e) + n`` (L1) or ``sensitivity / 2^e + sqrt(n)`` (l2), and the noise is
    calibrated to that:

    - Laplace: pmf ``proportional to exp(-|z| / t)``, ``t = ceil(sens_grid / epsilon)`` (epsilon-DP);
    - Gaussian: pmf ``proportional to exp(-z^2 / (2 S))`` with ``S = ceil(b^2 / (2 rho))``, which is
      ``(b^2 / (2 S))``-zCDP (Canonne, Kamath & Steinke 2020), ``rho`` the largest zCDP parameter that
      converts to ``(epsilon, delta)`` (:mod:`numkern.dp._accountant`).

    The samplers (Canonne, Kamath & Steinke's algorithms, in exact integer arithmetic) run in C++ on
    ChaCha20 key streams, one independent stream per block of 4096 values, so the output does not
    depend on the thread count. Rounding a value to the grid is exact float arithmetic; the float32
    result of a value above 2^24 grid units is rounded to float32 (a coarser multiple of ``2^e``).
    Values ``|x| >= 2^62 2^e`` raise ValueError (the grid is set by the sensitivity, never by ``x``).
    Timing depends on the noise drawn (not covered: timing side channels).

    Raises
    ------
    ValueError
        Non-finite values in ``x``, values too large for the grid, sensitivity / epsilon not positive
        and finite, delta not 0 (laplace) or not in (0, 1) (gaussian), unknown mechanism.
    TypeError
        Complex, object or other non-real dtypes.
    BudgetExceededError
        The accountant's budget would be exceeded.

    Examples
    --------
    >>> import numpy as np
    >>> from numkern import dp
    >>> counts = np.array([120.0, 43.0, 7.0, 0.0])        # a histogram: one record moves one bin by 1
    >>> noisy = dp.add_noise(counts, sensitivity=1.0, epsilon=1.0)
    >>> print(noisy.shape, noisy.dtype, bool(np.all(np.abs(noisy - counts) < 30)))
    (4,) float64 True
    >>> means = np.zeros(1000, dtype=np.float32)           # l2 sensitivity 0.01
    >>> g = dp.add_noise(means, sensitivity=0.01, epsilon=1.0, delta=1e-6, mechanism="gaussian")
    >>> print(g.dtype, bool(0.03 < g.std() < 0.06))
    float32 True
    """
    mech, delta = check_mechanism(mechanism, delta)
    sens = _check_sensitivity(sensitivity)
    eps = check_epsilon(epsilon)
    arr = np.asarray(x)
    dt = arr.dtype
    out_dt: np.dtype
    if dt.kind == "f" and dt.itemsize in (4, 8):
        out_dt = np.dtype(np.float32) if dt.itemsize == 4 else np.dtype(np.float64)
    elif dt.kind in "biu":
        out_dt = np.dtype(np.float64)
    else:
        raise TypeError(
            f"x must have a real dtype (float32, float64, integers or bool; float16 and longdouble are not "
            f"supported); got {dt}"
        )
    src = _noise.bit_source(rng, stacklevel=3)
    n = arr.size
    e_min = -149 if out_dt == np.float32 else -1000  # grid values stay representable (subnormals included)
    if mech == "laplace":
        e, param, _ = _laplace_plan(sens, Fraction(eps), n, e_min)
        rho = None
    else:
        rho_f = Fraction(_noise.gaussian_rho(eps, delta))
        e, param, b_sq = _gaussian_plan(sens, rho_f, n, e_min)
        rho = float(b_sq / (2 * param))
    if e > 1000:
        raise ValueError(f"sensitivity={sensitivity!r} is too large for the noise grid")
    src_arr = np.ascontiguousarray(arr, dtype=out_dt)  # a copy unless x already is dense and of out_dt
    if not src_arr.flags.aligned:
        src_arr = src_arr.copy()
    src_arr = src_arr.reshape(arr.shape)  # ascontiguousarray makes 0-d arrays 1-d
    charge(accountant, eps, "add_noise", delta=delta, rho=rho)
    out = np.empty(arr.shape, dtype=out_dt)
    key = _noise.key_words(src)
    if n:
        try:
            _core.dp_add_noise(src_arr, e, key, _MECH[mech], int(param), out)
        except ValueError as err:
            if accountant is not None:  # nothing was released: take the charge back
                accountant.spent.pop()
            msg = str(err)
            if "finite" in msg:
                raise ValueError("numkern.dp.add_noise: x must be finite (NaN or infinity found)") from None
            if "2^62" not in msg:
                raise
            raise ValueError(
                f"numkern.dp.add_noise: |x| too large for the noise grid 2^{e} (at most 2^62 grid units; the "
                "grid follows from the sensitivity and the number of values)"
            ) from None
    return out
