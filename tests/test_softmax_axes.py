"""softmax / log_softmax and their backward functions over several axes at once, the whole array
(axis=None, SciPy's default) and 0-d input, against float64 references computed here and against
scipy.special where it is installed; axes that merge into one strided run and axes that do not
(read as sub-slices) in every layout."""

import numpy as np
import pytest

import numkern

TOL = {np.dtype(np.float32): (2e-6, 2e-6), np.dtype(np.float64): (1e-14, 4e-15)}


def _ref(x, axes, log):
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m = np.max(x, axis=axes, keepdims=True)
        z = x - m
        s = np.sum(np.exp(z), axis=axes, keepdims=True)
        return z - np.log(s) if log else np.exp(z) / s


def _layouts(x):
    yield "C", x
    yield "F", np.asfortranarray(x)
    yield "reversed", np.ascontiguousarray(x[::-1, :, ::-1])[::-1, :, ::-1]
    big = np.zeros((x.shape[0], 2 * x.shape[1], x.shape[2]), x.dtype)
    big[:, ::2] = x
    yield "strided", big[:, ::2]


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [None, (0, 2), (2, 0), (1, 2), (0, 1), (-1, -3), (0, 1, 2)])
def test_several_axes_match_the_reference_in_every_layout(rng, axis, dtype, log):
    x = (rng.standard_normal((5, 7, 33)) * 4).astype(dtype)
    axes = tuple(range(3)) if axis is None else tuple(a % 3 for a in axis)
    want = _ref(x, axes, log)
    fn = numkern.log_softmax if log else numkern.softmax
    rtol, atol = TOL[np.dtype(dtype)]
    for name, xv in _layouts(x):
        got = fn(xv, axis=axis)
        assert got.dtype == dtype and got.shape == x.shape, name
        if log:
            np.testing.assert_allclose(got, want, rtol=0, atol=atol * 8 * max(1.0, np.abs(want).max()), err_msg=name)
        else:
            np.testing.assert_allclose(got, want, rtol=rtol * 4, atol=1e-30, err_msg=name)


@pytest.mark.parametrize("log", [False, True])
def test_matches_scipy_on_its_default_axis_none_and_on_tuples(rng, log):
    special = pytest.importorskip("scipy.special")
    x = rng.standard_normal((4, 6, 5))
    fn, sp = (numkern.log_softmax, special.log_softmax) if log else (numkern.softmax, special.softmax)
    for axis in (None, (0, 2), (1, 2), 1):
        np.testing.assert_allclose(fn(x, axis=axis), sp(x, axis=axis), rtol=1e-13, atol=1e-15)
    for scalar in (3.0, -1e300, np.float32(2.5)):
        np.testing.assert_array_equal(fn(scalar), sp(scalar))
        assert np.ndim(fn(scalar)) == 0


def test_scalars_and_empty_axis_tuples():
    assert numkern.softmax(3.0) == 1.0 and numkern.log_softmax(3.0) == 0.0
    assert numkern.softmax(np.array(2.0, np.float32)).dtype == np.float32
    assert np.isnan(numkern.softmax(np.nan)) and np.isnan(numkern.softmax(np.inf))
    assert numkern.softmax(7.0, axis=0) == 1.0 and numkern.softmax(7.0, axis=None) == 1.0
    with pytest.raises(np.exceptions.AxisError):
        numkern.softmax(7.0, axis=1)
    x = np.array([[1.0, np.inf], [-np.inf, 2.0]])
    np.testing.assert_array_equal(numkern.softmax(x, axis=()), [[1.0, np.nan], [np.nan, 1.0]])
    np.testing.assert_array_equal(numkern.log_softmax(x, axis=()), [[0.0, np.nan], [np.nan, 0.0]])


@pytest.mark.parametrize("axis", [(0, 2), None])
def test_special_values_over_several_axes(axis):
    x = np.zeros((3, 4, 5))
    x[0] = -np.inf  # with axis (0, 2): every slice has finite entries; the -inf ones give 0
    x[1, 2, 3] = np.nan
    y = numkern.softmax(x, axis=axis)
    lsm = numkern.log_softmax(x, axis=axis)
    if axis is None:
        assert np.isnan(y).all() and np.isnan(lsm).all()
        return
    nan_slice = y[:, 2, :]
    assert np.isnan(nan_slice).all()
    ok = np.delete(y, 2, axis=1)
    assert np.all(ok[0] == 0) and np.allclose(ok[1:], 1 / 10)
    assert np.all(np.delete(lsm, 2, axis=1)[0] == -np.inf)
    # all -inf over the slice: NaN (scipy)
    z = np.full((2, 3, 2), -np.inf)
    assert np.isnan(numkern.softmax(z, axis=(0, 2))).all()


@pytest.mark.parametrize("log", [False, True])
def test_large_magnitudes_take_the_max_based_path_over_sub_slices(rng, log):
    x = rng.standard_normal((3, 4, 50)) * 1e6  # beyond the two-pass range reduction
    xf = np.asfortranarray(x)[:, :, ::-1][:, :, ::-1]
    fn = numkern.log_softmax if log else numkern.softmax
    want = _ref(x, (0, 2), log)
    got = fn(xf, axis=(0, 2), algorithm="two_pass")
    if log:
        np.testing.assert_allclose(got, want, rtol=1e-14)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)


def test_out_and_in_place_over_several_axes(rng):
    x = rng.standard_normal((6, 5, 8))
    want = numkern.softmax(x, axis=(0, 2))
    out = np.empty((5, 8, 6)).transpose(2, 0, 1)
    assert numkern.softmax(x, axis=(0, 2), out=out) is out
    np.testing.assert_array_equal(out, want)
    xi = np.asfortranarray(x)
    numkern.softmax(xi, axis=(0, 2), out=xi)
    np.testing.assert_allclose(xi, want, rtol=1e-15)


def test_long_sub_sliced_slices_do_not_depend_on_the_thread_count(rng):
    # one slice of 320000 elements over axes (0, 2), which do not merge: split across threads
    x = rng.standard_normal((64, 2, 5000)).astype(np.float32)[:, :1].transpose(2, 1, 0)
    with numkern.thread_limit(1):
        one = numkern.softmax(x, axis=(0, 2))
    np.testing.assert_array_equal(numkern.softmax(x, axis=(0, 2)), one)
    np.testing.assert_allclose(one, _ref(x, (0, 2), False), rtol=1e-5)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("axis", [None, (0, 2), (1, 2)])
def test_backward_over_several_axes(rng, axis, log):
    x = rng.standard_normal((4, 6, 9))
    axes = (0, 1, 2) if axis is None else axis
    f = numkern.log_softmax if log else numkern.softmax
    b = numkern.log_softmax_backward if log else numkern.softmax_backward
    y, dy = f(x, axis=axis), rng.standard_normal(x.shape)
    yd = y.astype(np.float64)
    want = (
        dy - np.exp(yd) * dy.sum(axis=axes, keepdims=True)
        if log
        else yd * (dy - (yd * dy).sum(axis=axes, keepdims=True))
    )
    for name, (yv, dyv) in {
        "C": (y, dy),
        "F": (np.asfortranarray(y), np.asfortranarray(dy)),
        "mixed": (np.asfortranarray(y), dy[::-1][::-1]),
    }.items():
        np.testing.assert_allclose(b(yv, dyv, axis=axis), want, rtol=1e-12, atol=1e-15, err_msg=name)
    assert b(np.float64(0.0), np.float64(2.0)) == 0.0  # a one-element slice has zero gradient


def test_repeated_axes_raise():
    with pytest.raises(ValueError, match="repeated"):
        numkern.softmax(np.zeros((2, 3)), axis=(1, -1))
    with pytest.raises(np.exceptions.AxisError):
        numkern.log_softmax(np.zeros((2, 3)), axis=(0, 2))
    with pytest.raises(TypeError):
        numkern.softmax(np.zeros((2, 3)), axis=(0, 1.0))
