"""Hypothesis strategies and the runner shared by the fuzz tests (tests/test_fuzz*.py).

``fuzz(fuzz_settings, body, **strategies)`` runs ``body(**drawn)`` under the active profile
(``fuzz-ci`` or ``--fuzz-long``) and counts every example it runs; conftest.py prints the total in
the terminal summary."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

#: Examples run in this process, over every fuzz test (printed by conftest.py): in total, and per
#: fuzz body how many reached the reference comparison ("checked") or raised TypeError/ValueError.
EXAMPLES = {"total": 0}
TALLIES: dict = {}
_current = ["?"]


def _tally(kind):
    per = TALLIES.setdefault(_current[0], {"run": 0, "checked": 0, "raised": 0})
    per[kind] += 1


SPECIAL = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    np.inf,
    -np.inf,
    np.nan,
    1e30,
    -1e30,
    3e38,
    -3e38,
    7e5,
    -7e5,
    1e-40,
    5e-324,
    88.0,
    -104.0,
]
FLOAT_DTYPES = [np.float32, np.float64, np.float16]
ALL_DTYPES = [np.float32, np.float64, np.float16, np.int32, np.uint8, np.bool_]
#: Dtypes every float entry point must reject with TypeError.
WRONG_DTYPES = [np.complex64, np.complex128, object, "U2", "S2", "M8[s]", "m8[s]", np.longdouble]
LAYOUTS = ["plain", "fortran", "reversed", "strided", "broadcast", "unaligned"]


def fuzz(fuzz_settings, body, *, scale=1.0, **strategies):
    """Run ``body`` on examples drawn from ``strategies`` (keyword arguments of body).

    ``scale`` multiplies the profile's example count (for expensive bodies). No example database:
    every body is called ``counted``, which would make the tests share saved examples."""
    n = max(1, int(fuzz_settings.max_examples * scale))

    name = getattr(body, "__qualname__", "body").replace(".<locals>.run", "")

    def counted(**kw):
        EXAMPLES["total"] += 1
        _current[0] = name
        _tally("run")
        body(**kw)

    counted.__qualname__ = getattr(body, "__qualname__", "body")
    s = settings(
        fuzz_settings,
        max_examples=n,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    given(**strategies)(s(counted))()


def values(dtype, special=True, lo=-100.0, hi=100.0):
    """Elements of ``dtype``: specials (NaN, +-inf, huge, denormal, +-0) and ordinary values."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        finfo = np.finfo(dtype)
        with np.errstate(all="ignore"):
            specials = [dtype.type(v) for v in SPECIAL if abs(v) <= finfo.max or not np.isfinite(v)]
        ordinary = st.floats(lo, hi, width=32).map(dtype.type)
        return st.one_of(st.sampled_from(specials), ordinary) if special else ordinary
    if dtype.kind == "b":
        return st.booleans()
    if dtype.kind == "c":
        return st.complex_numbers(max_magnitude=100, width=dtype.itemsize * 8)
    info = np.iinfo(dtype)
    return st.integers(max(info.min, -1000), min(info.max, 1000))


def layout(plain, kind):
    """The values of ``plain`` in the given memory layout (same shape, same values)."""
    shape = plain.shape
    if kind == "plain" or plain.ndim == 0:
        return plain
    if kind == "fortran":
        return np.asfortranarray(plain)
    if kind == "reversed":  # negative strides on every axis
        axes = tuple(range(plain.ndim))
        return np.flip(np.ascontiguousarray(np.flip(plain, axes)), axes)
    if kind == "strided":  # every other element of a twice larger buffer
        base = np.zeros(tuple(2 * s for s in shape), plain.dtype)
        view = base[tuple(slice(0, 2 * s, 2) for s in shape)]
        view[...] = plain
        return view
    if kind == "broadcast":  # zero strides: one row repeated
        row = plain[(0,) * (plain.ndim - 1)] if plain.size else plain.reshape(-1)[: shape[-1]]
        return np.broadcast_to(row if plain.size else np.zeros(shape[-1], plain.dtype), shape)
    # Unaligned: the same values one byte past an aligned address (read-only frombuffer view).
    arr = np.ascontiguousarray(plain)
    raw = np.zeros(arr.nbytes + 1, np.uint8)
    raw[1:] = np.frombuffer(arr.tobytes(), np.uint8)
    return np.frombuffer(raw[1:].data, dtype=arr.dtype).reshape(arr.shape)


@st.composite
def arrays(
    draw,
    dtypes=tuple(ALL_DTYPES),
    min_dims=1,
    max_dims=3,
    min_side=0,
    max_side=9,
    shape=None,
    special=True,
    layouts=tuple(LAYOUTS),
):
    """An array of a drawn dtype, shape and memory layout (0- and 1-sized axes included)."""
    dtype = np.dtype(draw(st.sampled_from(list(dtypes))))
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side))
    shape = tuple(shape)
    plain = draw(hnp.arrays(dtype, shape, elements=values(dtype, special)))
    kind = draw(st.sampled_from(list(layouts))) if shape else "plain"
    return layout(plain, kind)


def snapshot(*arrays_):
    """Bytes, shapes and strides of the inputs, to check that a call did not mutate them."""
    return [None if a is None else (np.asarray(a).tobytes(), np.asarray(a).shape) for a in arrays_]


def compute_dtype(x):
    """numkern's float policy: the dtype a float kernel returns for input ``x``."""
    return np.dtype(np.float64) if x.dtype.kind in "biu" else x.dtype


def all_finite(*arrays_):
    with np.errstate(all="ignore"):
        return all(np.isfinite(np.asarray(a, dtype=np.float64)).all() for a in arrays_ if a is not None)


def assert_raised_for(exc, problems):
    """A TypeError/ValueError is right only if the inputs had a problem, and it must say something."""
    _tally("raised")
    assert str(exc), f"{type(exc).__name__} without a message"
    assert problems, f"unexpected {type(exc).__name__}: {exc}"


def checked(what="value"):
    """Record (for --hypothesis-show-statistics) that an example reached the reference comparison."""
    _tally("checked")


def pick(good, bad, bad_percent=12):
    """A good value (from a list or strategy) most of the time, else one of the bad values, so most
    examples reach the reference comparison and each bad argument still shows up often."""
    good_s = good if isinstance(good, st.SearchStrategy) else st.sampled_from(list(good))
    return st.integers(0, 99).flatmap(lambda r: st.sampled_from(list(bad)) if r >= 100 - bad_percent else good_s)
