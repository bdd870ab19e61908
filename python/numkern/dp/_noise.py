"""Exact discrete Laplace noise on a power-of-two grid, from a CSPRNG.

Every random bit comes from ``os.urandom`` (the OS CSPRNG, getrandom(2) on Linux) unless the caller
passes ``rng=``. Samples are produced by exact integer algorithms: uniform integers by rejection
sampling on 64-bit words, Bernoulli(exp(-u/t)) and the discrete Laplace distribution by Algorithms
1-2 of Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential Privacy" (NeurIPS 2020).
No floating-point operation touches a sample before it is scaled by a power of two, so there is no
floating-point inverse-CDF leak (Mironov, CCS 2012).
"""

from __future__ import annotations

import math
import os
import warnings
from fractions import Fraction
from typing import NamedTuple

import numpy as np


class NotPrivateWarning(UserWarning):
    """Emitted when noise comes from a seeded, reproducible generator instead of the OS CSPRNG.

    Results are then reproducible, which is what tests and demos want, and not private: anyone
    who knows the seed can subtract the noise.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from numkern import dp
    >>> X = np.zeros((10, 1))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = dp.DistanceSum("l1", 1.0, bounds=(-1.0, 1.0), rng=0).fit(X)
    >>> print([w.category.__name__ for w in caught])
    ['NotPrivateWarning']
    """


class _Words:
    """A source of uniformly random 64-bit words (the samplers' keys are drawn from it)."""

    def u64(self, n: int) -> np.ndarray:
        raise NotImplementedError


class _OsBits(_Words):
    """64-bit words from the operating system's CSPRNG."""

    secure = True

    def u64(self, n: int) -> np.ndarray:
        return np.frombuffer(os.urandom(8 * n), dtype=np.uint64).copy() if n else np.empty(0, np.uint64)


class _GeneratorBits(_Words):
    """64-bit words from a NumPy Generator (reproducible, not private)."""

    secure = False

    def __init__(self, gen: np.random.Generator):
        self.gen = gen

    def u64(self, n: int) -> np.ndarray:
        return self.gen.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)


def bit_source(rng, stacklevel: int = 3):
    """The noise source for ``rng=``: the OS CSPRNG for None, else a seeded generator (with a warning)."""
    if rng is None:
        return _OsBits()
    if isinstance(rng, (_OsBits, _GeneratorBits)):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer, np.random.Generator)):
        raise ValueError(f"rng must be None, an int seed or a numpy.random.Generator; got {type(rng).__name__}")
    warnings.warn(
        "numkern.dp: rng= makes the noise reproducible; the released values are NOT differentially "
        "private (use rng=None for noise from the OS CSPRNG)",
        NotPrivateWarning,
        stacklevel=stacklevel,
    )
    return _GeneratorBits(np.random.default_rng(rng))


def data_independent_rng(rng, src):
    """Generator for data-independent randomness (random-feature frequencies, projections)."""
    if isinstance(src, _GeneratorBits):
        return np.random.default_rng(src.gen.integers(0, 2**63))
    if rng is not None and not isinstance(rng, (int, np.integer, np.random.Generator)):
        raise ValueError("rng must be None, an int seed or a numpy.random.Generator")
    return np.random.default_rng(int.from_bytes(os.urandom(16), "little"))


def discrete_laplace(src, size: int, t: int) -> np.ndarray:
    """Samples with P(y) = (1 - p) / (1 + p) * p^|y|, p = exp(-1/t), for an integer scale t >= 1.

    CKS Algorithm 2 with s = 1 (X = U + t V geometric with ratio exp(-1/t), a fair sign bit, the
    doubly counted 0 rejected), run by the C++ sampler on a ChaCha20 stream keyed from `src`: the
    same sampler as ``dp.add_noise``, vectorized and threaded (one stream per 4096 values, so the
    samples do not depend on the thread count).
    """
    from .. import _core

    t = int(t)
    if t < 1 or t >= 2**40:
        raise ValueError(f"discrete Laplace scale must be an integer in [1, 2^40), got {t}")
    out = np.empty(int(size), dtype=np.int64)
    if out.size:
        _core.dp_noise(key_words(src), 0, t, out)
    return out


def discrete_laplace_pmf(y, t: int) -> np.ndarray:
    """The exact pmf the sampler targets (for tests)."""
    p = math.exp(-1.0 / t)
    return (1 - p) / (1 + p) * p ** np.abs(np.asarray(y, dtype=np.float64))


def discrete_laplace_variance(t: int) -> float:
    q = -math.expm1(-1.0 / t)  # 1 - p without cancellation
    return 2.0 * (1.0 - q) / (q * q)


class Release:
    """A noisy release: values (float64, on the grid), the grid exponent, the integer noise parameter
    (the discrete Laplace scale t, or the discrete Gaussian's sigma^2 in grid units), the per-value
    noise variance (value units, exact for both mechanisms), the epsilon actually spent (Laplace: <=
    requested; Gaussian: the epsilon it was calibrated to), and for a Gaussian release its zCDP
    parameter rho (<= the rho allotted) and delta (None for Laplace)."""

    __slots__ = ("values", "grid_exponent", "scale", "variance", "epsilon", "mechanism", "rho", "delta")

    def __init__(self, values, grid_exponent, scale, variance, epsilon, mechanism="laplace", rho=None, delta=None):
        self.values, self.grid_exponent, self.scale, self.variance, self.epsilon = (
            values,
            grid_exponent,
            scale,
            variance,
            epsilon,
        )
        self.mechanism, self.rho, self.delta = mechanism, rho, delta

    @property
    def grid(self) -> float:
        return math.ldexp(1.0, self.grid_exponent)


def _check_sum_fits(sums: np.ndarray) -> None:
    if sums.size and int(np.max(np.abs(sums))) >= 2**62:
        raise ValueError("numkern.dp: fixed-point sum out of range (too many records)")


def release(
    sums, frac_bits: int, sensitivity: int, epsilon: float, src, noise_multiplier: float = 1.0, rows: bool = False
) -> Release:
    """Release integer sums (units 2^-frac_bits) with pure epsilon-DP discrete Laplace noise.

    `sensitivity` is the L1 sensitivity of the integer vector under adding/removing one record,
    an exact integer in the same units. The grid 2^e is chosen from public quantities only (the
    sensitivity, epsilon and the number of coordinates) so the noise scale is at least about 2^16
    grid units per coordinate; when the grid is coarser than the fixed-point unit the sums are rounded (each coordinate's rounding can move by one
    more grid unit, so the sensitivity in grid units is ceil(sensitivity / grid) + n_coords), and the
    integer noise scale is t = ceil(sensitivity_grid / epsilon), so the epsilon spent, returned,
    is sensitivity_grid / t <= epsilon (proved in docs/design/dp.md). `noise_multiplier` exists for the
    privacy audit's deliberately broken variants only.
    """
    sums = np.asarray(sums, dtype=np.int64)
    # One row of coordinates, or (release_rows) several rows of one size released alike.
    sums = sums.reshape(-1, sums.shape[-1]) if rows else sums.ravel()
    _check_sum_fits(sums)
    n_coords = max(1, sums.shape[-1] if sums.ndim == 2 else sums.size)
    eps = Fraction(epsilon)
    sens = Fraction(int(sensitivity), 2**frac_bits)
    sigma = sens / eps
    e = math.floor(math.log2(sigma)) - 16  # about 2^16 grid units of noise: ceil() below costs < 2^-16
    if e + frac_bits > 0:
        # The sums must be rounded to the grid: refine it so the rounding term n_coords stays small
        # against the sensitivity, but never below the fixed-point unit (where no rounding is needed).
        e = max(e - min((n_coords - 1).bit_length(), 20), -frac_bits)
    shift = e + frac_bits
    if shift > 0:
        grid_sums = (sums + (1 << (shift - 1))) >> shift  # floor(s / 2^shift + 1/2)
        sens_grid = -(-int(sensitivity) // (1 << shift)) + n_coords
    else:
        grid_sums = sums << (-shift)
        sens_grid = int(sensitivity) << (-shift)
    t = math.ceil(Fraction(sens_grid) / eps * Fraction(noise_multiplier))
    noise = discrete_laplace(src, sums.size, t)
    values = np.ldexp((grid_sums + noise.reshape(grid_sums.shape)).astype(np.float64), e)
    return Release(values, e, t, math.ldexp(discrete_laplace_variance(t), 2 * e), float(Fraction(sens_grid, t)))


def release_rows(sums, frac_bits: int, sensitivity: int, epsilon: float, src) -> Release:
    """Each row of a 2-D array of integer sums released as :func:`release` releases it alone (the
    same grid, scale and epsilon per row: rows of one size), with the noise of all rows drawn in one
    call; ``values`` has the rows' shape."""
    sums = np.asarray(sums, dtype=np.int64)
    if sums.ndim != 2:
        raise ValueError("release_rows expects a 2-D array of sums")
    return release(sums, frac_bits, sensitivity, epsilon, src, rows=True)


# --- The Gaussian mechanism: discrete Gaussian noise from the C++ sampler (ChaCha20 keyed here) --------


def key_words(src) -> np.ndarray:
    """A 256-bit ChaCha20 key (8 uint32 words) from the noise source: the OS CSPRNG or, with rng=, the
    seeded generator (reproducible)."""
    return np.ascontiguousarray(src.u64(4).view(np.uint32))


def discrete_gaussian_variance(S: int) -> float:
    """Variance of the discrete Gaussian with pmf proportional to exp(-z^2 / (2 S)).

    It is below S (Canonne, Kamath & Steinke 2020, Proposition 19) by a relative amount of about
    4 pi^2 S exp(-2 pi^2 S), under 2^-60 for S >= 3: summed directly below that."""
    if S >= 3:
        return float(S)
    z = np.arange(-60, 61, dtype=np.float64)
    w = np.exp(-z * z / (2.0 * S))
    return float(np.sum(z * z * w) / np.sum(w))


def discrete_gaussian_pmf(y, S: int) -> np.ndarray:
    """The exact pmf the Gaussian sampler targets (for tests), normalized over |z| <= 40 sqrt(S) + 40."""
    r = int(40 * math.isqrt(int(S)) + 40)
    z = np.arange(-r, r + 1, dtype=np.float64)
    norm = float(np.sum(np.exp(-z * z / (2.0 * S))))
    y = np.asarray(y, dtype=np.float64)
    return np.exp(-y * y / (2.0 * S)) / norm


def gaussian_noise(src, size: int, S: int) -> np.ndarray:
    """``size`` discrete Gaussian samples (int64) of variance parameter S (grid units^2)."""
    from .. import _core

    out = np.empty(int(size), dtype=np.int64)
    if out.size:
        _core.dp_noise(key_words(src), 1, int(S), out)
    return out


def sqrt_upper(v: Fraction, bits: int = 40) -> Fraction:
    """A rational upper bound on sqrt(v) (v >= 0), within 2^-bits of it relative to 1."""
    num = v.numerator << (2 * bits)
    q = num // v.denominator + 1  # > v 2^(2 bits)
    return Fraction(math.isqrt(q) + 1, 1 << bits)


_MAX_S = 1 << 56  # the C++ sampler's largest variance parameter (dp_max_gaussian_variance)


def gaussian_grid(sigma: Fraction, n_coords: int, exact_below: int | None):
    """The grid exponent e for Gaussian noise of standard deviation ``sigma`` (value units) on
    ``n_coords`` values: about 2^14 grid units of noise, refined (finer grid) so the rounding term
    sqrt(n_coords) stays small against the sensitivity, but never below 2^-exact_below (where values
    in units 2^-exact_below need no rounding) and never so fine that sigma^2 exceeds 2^54 grid units
    (the sampler allows 2^56)."""
    e = math.floor(math.log2(sigma)) - 14
    rounding = exact_below is None or e + exact_below > 0
    if rounding:
        e -= min((max(n_coords, 1) - 1).bit_length() // 2 + 3, 13)
        if exact_below is not None:
            e = max(e, -exact_below)
    return e


def gaussian_scale(sens_sq: Fraction, n_coords: int, shift_rounds: bool, grid_shift: int, rho: Fraction):
    """(S, b_sq): the integer sigma^2 (grid units) of the discrete Gaussian that makes a release of
    l2 sensitivity sqrt(sens_sq) (grid units before rounding, times 2^-grid_shift) rho-zCDP.

    With rounding (``shift_rounds``) each coordinate's rounding moves by less than one grid unit, so
    the rounded vector's l2 sensitivity is at most b = sqrt(sens_sq) 2^-shift + sqrt(n_coords) (triangle
    inequality); b is bounded above by a rational and S = ceil(b^2 / (2 rho)), so the release is
    (b^2 / (2 S))-zCDP with b^2 / (2 S) <= rho (CKS 2020, Theorem 14)."""
    if shift_rounds:
        b = sqrt_upper(sens_sq / Fraction(4) ** grid_shift) + sqrt_upper(Fraction(max(n_coords, 1)))
        b_sq = b * b
    else:
        b_sq = sens_sq * Fraction(4) ** (-grid_shift)
    S = max(1, math.ceil(b_sq / (2 * rho)))
    return S, b_sq


def release_gaussian(
    sums,
    frac_bits: int,
    sens_sq: int,
    rho: float,
    src,
    noise_multiplier: float = 1.0,
    rows: bool = False,
    epsilon: float | None = None,
    delta: float | None = None,
) -> Release:
    """Release integer sums (units 2^-frac_bits) with rho-zCDP discrete Gaussian noise.

    ``sens_sq`` is the squared l2 sensitivity of the integer vector under adding/removing one record
    (an exact integer in squared fixed-point units). The grid 2^e is chosen from public quantities
    (:func:`gaussian_grid`); the rounding term is added to the sensitivity (:func:`gaussian_scale`),
    and the rho actually spent, ``b^2 / (2 S) <= rho``, is returned in ``Release.rho``.
    ``noise_multiplier`` exists for the privacy audit's deliberately broken variants only.
    """
    sums = np.asarray(sums, dtype=np.int64)
    sums = sums.reshape(-1, sums.shape[-1]) if rows else sums.ravel()
    _check_sum_fits(sums)
    n_coords = max(1, sums.shape[-1] if sums.ndim == 2 else sums.size)
    rho_f = Fraction(rho)
    sigma = sqrt_upper(Fraction(int(sens_sq)) / (2 * rho_f)) / (1 << frac_bits)
    e = gaussian_grid(sigma, n_coords, frac_bits)
    while True:
        shift = e + frac_bits
        S, b_sq = gaussian_scale(Fraction(int(sens_sq)), n_coords, shift > 0, shift, rho_f)
        S = max(1, math.ceil(S * Fraction(noise_multiplier) ** 2))
        if S <= _MAX_S:
            break
        e += 1  # coarser grid: less noise in grid units (the rounding term grows, and is accounted)
    if shift > 0:
        grid_sums = (sums + (1 << (shift - 1))) >> shift
    else:
        grid_sums = sums << (-shift)
    noise = gaussian_noise(src, sums.size, S)
    values = np.ldexp((grid_sums + noise.reshape(grid_sums.shape)).astype(np.float64), e)
    spent = float(b_sq / (2 * S))
    return Release(values, e, S, math.ldexp(discrete_gaussian_variance(S), 2 * e), epsilon, "gaussian", spent, delta)


def gaussian_rho(epsilon: float, delta: float) -> float:
    """The zCDP parameter a Gaussian release calibrated to (epsilon, delta)-DP gets: the largest rho
    whose conversion (:func:`numkern.dp._accountant.zcdp_epsilon`) gives epsilon at delta."""
    from ._accountant import zcdp_rho

    return zcdp_rho(epsilon, delta)


class Budget(NamedTuple):
    """What one structure's fit may spend: pure ``epsilon`` (laplace), or zCDP ``rho`` calibrated to
    ``(epsilon, delta)`` (gaussian). :meth:`part` splits it for sequentially composed releases."""

    mechanism: str
    epsilon: float
    delta: float
    rho: float | None

    @classmethod
    def of(cls, mechanism: str, epsilon: float, delta: float) -> Budget:
        if mechanism == "laplace":
            return cls(mechanism, epsilon, 0.0, None)
        return cls(mechanism, epsilon, delta, gaussian_rho(epsilon, delta))

    def part(self, fraction: float) -> Budget:
        """A share of the budget: epsilon * fraction (Laplace) or rho * fraction (zCDP adds up)."""
        if self.rho is None:
            return self._replace(epsilon=fraction * self.epsilon)
        return self._replace(rho=fraction * self.rho)


def release_budget(sums, frac_bits: int, sensitivity: int, sens_sq: int, budget: Budget, src, rows: bool = False):
    """:func:`release` / :func:`release_rows` (Laplace, l1 ``sensitivity``) or :func:`release_gaussian`
    (l2, squared sensitivity ``sens_sq``), as ``budget`` says."""
    if budget.rho is None:
        if rows:
            return release_rows(sums, frac_bits, sensitivity, budget.epsilon, src)
        return release(sums, frac_bits, sensitivity, budget.epsilon, src)
    return release_gaussian(
        sums, frac_bits, sens_sq, budget.rho, src, rows=rows, epsilon=budget.epsilon, delta=budget.delta
    )
