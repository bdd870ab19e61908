"""Integer and rng arguments are checked by one function each, with the same rules in every family,
and a bad dtype is a TypeError everywhere (dp included)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import numkern
from numkern import dp, nn
from numkern.sketch import SRHT, CountSketch, Gaussian, SparseSign

SKETCHES = [SRHT, Gaussian, SparseSign, CountSketch]


@pytest.mark.parametrize("cls", SKETCHES)
def test_sketches_accept_every_rng_form_and_agree_on_the_seed(cls):
    a = np.random.default_rng(0).standard_normal((100, 3))
    by_int = cls(100, 16, rng=7) @ a
    by_seq = cls(100, 16, rng=np.random.SeedSequence(7)) @ a
    by_bitgen = cls(100, 16, rng=np.random.PCG64(7)) @ a
    by_gen = cls(100, 16, rng=np.random.default_rng(7)) @ a
    np.testing.assert_array_equal(by_int, by_seq)
    np.testing.assert_array_equal(by_int, by_bitgen)
    np.testing.assert_array_equal(by_int, by_gen)
    assert not np.array_equal(by_int, cls(100, 16, rng=8) @ a)


@pytest.mark.isa_independent
@pytest.mark.parametrize("bad", [True, 1.5, "7", [7], -1])
def test_bad_rng_arguments_raise_the_same_errors_everywhere(bad):
    expected = ValueError if bad == -1 and not isinstance(bad, bool) else TypeError
    x = np.ones((4, 8), dtype=np.float32)
    with pytest.raises(expected, match="rng"):
        SRHT(8, 4, rng=bad)
    with pytest.raises(expected, match="rng"):
        numkern.shiftquant(x, 4, rounding="stochastic", rng=bad)
    with pytest.raises(expected, match="rng"):
        nn.Linear(3, 2, rng=bad)


@pytest.mark.isa_independent
def test_shiftquant_and_nn_accept_a_seed_sequence():
    x = np.random.default_rng(1).standard_normal((8, 32)).astype(np.float32)
    a = numkern.shiftquant(x, 4, rounding="stochastic", rng=np.random.SeedSequence(3))
    b = numkern.shiftquant(x, 4, rounding="stochastic", rng=3)
    np.testing.assert_array_equal(a.qdata, b.qdata)
    np.testing.assert_array_equal(
        nn.Linear(3, 2, rng=np.random.SeedSequence(3)).weight.data, nn.Linear(3, 2, rng=3).weight.data
    )


@pytest.mark.isa_independent
def test_integer_arguments_share_one_rule():
    # A float or a bool is a TypeError; an integer out of range a ValueError naming the range.
    with pytest.raises(TypeError, match="in_features must be an integer"):
        nn.Linear(3.0, 2)
    with pytest.raises(ValueError, match=r"in_features must be >= 1, got 0"):
        nn.Linear(0, 2)
    with pytest.raises(TypeError, match="out_shift must be an integer"):
        numkern.l1_norm_int8(np.zeros((2, 4), np.int8), out_shift=True)
    with pytest.raises(ValueError, match=r"out_shift must be in \[0, 7\], got 8"):
        numkern.l1_norm_int8(np.zeros((2, 4), np.int8), out_shift=8)
    with pytest.raises(TypeError, match="m must be an integer"):
        Gaussian(8, 2.0)
    with pytest.raises(ValueError, match=r"n_groups must be in \[1, 32\], got 0"):
        numkern.shiftquant(np.ones((2, 4), np.float32), 4, n_groups=0)
    assert numkern.l1_norm_int8(np.zeros((2, 4), np.int8), out_shift=np.int64(3)).dtype == np.int8


@pytest.mark.isa_independent
@pytest.mark.parametrize("dtype", [np.complex128, np.dtype("U3"), np.dtype("datetime64[s]"), object])
def test_dp_structures_raise_type_error_for_a_bad_dtype(dtype):
    bad = np.zeros((5, 2), dtype=dtype)
    good = np.zeros((5, 2))
    # The classifier reads an object array as scikit-learn does: numbers as float64, and None as NaN,
    # which it refuses (ValueError).
    sk_bad = np.full((5, 2), None, dtype=object) if dtype is object else bad
    sk_error = ValueError if dtype is object else TypeError
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dp.NotPrivateWarning)
        with pytest.raises(TypeError, match="dtype"):
            dp.DistanceSum("l1", 1.0, bounds=(-1.0, 1.0), rng=0).fit(bad)
        with pytest.raises(TypeError, match="dtype"):
            dp.KernelDensity("gaussian", 1.0, epsilon=1.0, n_components=8, rng=0).fit(bad)
        with pytest.raises(sk_error):
            dp.SimilarityClassifier(epsilon=1.0, n_components=8, rng=0).fit(sk_bad, np.arange(5) % 2)
        if dtype is object:
            dp.SimilarityClassifier(epsilon=1.0, n_components=8, rng=0).fit(bad, np.arange(5) % 2)
        fitted = dp.DistanceSum("l1", 1.0, bounds=(-1.0, 1.0), rng=0).fit(good)
        with pytest.raises(TypeError, match="dtype"):
            fitted.query(bad)
