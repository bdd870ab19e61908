"""Differentially private structures fitted on a Dask array of records: exact int64 partial sums
per row block, tree-merged, and the noise added once on the driver."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dask
import dask.array as da
import numpy as np

from ..dp._classifier import SimilarityClassifier, class_counts
from ..dp._data import check_records_schema, private_data
from ..dp._distance import DistanceSum
from ..dp._kde import KernelDensity
from ._common import aligned, aligned_plan, task, tree_reduce

if TYPE_CHECKING:
    pass


@task
def _block_sums(plan, block):
    return aligned_plan(plan).partial(aligned(private_data(block)))


@task
def _block_class_sums(plan, block, labels):
    return aligned_plan(plan).partial(aligned(private_data(block)), np.asarray(labels))


def _block_counts(labels, classes):
    return {"count": class_counts(np.asarray(labels), classes)}


def _add(*parts):
    """Key-wise sum of int64 partial sums: exact, so the grouping does not matter."""
    return {key: np.sum([p[key] for p in parts], axis=0, dtype=np.int64) for key in parts[0]}


def fit(
    structure: DistanceSum | KernelDensity | SimilarityClassifier,
    X: da.Array,
    y: da.Array | None = None,
    *,
    split_every: int = 8,
) -> DistanceSum | KernelDensity | SimilarityClassifier:
    """Fit a DP structure (:class:`numkern.dp.DistanceSum`, :class:`numkern.dp.KernelDensity` or
    :class:`numkern.dp.SimilarityClassifier`) on a Dask array of records chunked by rows; returns
    the fitted structure.

    Every row block computes the exact integer (fixed-point) sums the structure releases --
    histogram counts, fixed-point sums of clipped records, sums of rounded random features (per
    class for the classifier), the record or class counts -- with the same code as
    ``structure.fit``; the blocks' sums are added in a tree (int64 addition is exact, so any
    chunking and merge order gives the same integers), and the driver adds the noise once, with the
    same sampler and randomness source as ``fit``. So the privacy guarantee, the sensitivity and
    the noise scale are exactly those of a single-machine fit, and with a seeded ``rng`` the result
    equals ``structure.fit(X.compute())`` (``fit(X, y)`` for the classifier) bit for bit.
    Data-independent randomness (features, projections) is drawn on the driver and shipped to the
    workers; the noise source never leaves the driver.

    Parameters
    ----------
    structure : DistanceSum, KernelDensity or SimilarityClassifier
        Unfitted or fitted (refitting replaces its state; the accountant is charged once).
    X : dask.array.Array or array_like, shape (n, d)
    y : dask.array.Array or array_like, shape (n,), optional
        The labels, for a SimilarityClassifier only (rechunked to X's row blocks). The classifier
        takes two passes: the class counts (from y alone; they set the released sizes and, with
        ``n_components="auto"``, the number of features), then the per-class feature sums.
    split_every : int, default 8
        Fan-in of the merge tree.

    Raises
    ------
    TypeError
        For another structure type, or y given (missing) for a structure that takes none (needs it).
    ValueError
        As ``structure.fit``. NaN/inf records are reported when the blocks are computed, after
        the accountant was charged (``structure.fit`` checks before); the other checks come first.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from numkern import dp
    >>> import numkern.dask as nkd
    >>> X = np.random.default_rng(0).uniform(-1, 1, size=(5000, 2))
    >>> s = nkd.fit(dp.DistanceSum("l1", 1.0, bounds=(-1.0, 1.0)), da.from_array(X, chunks=(1000, 2)))
    >>> print(s.query(np.zeros((1, 2))).shape, bool(s.n_records_ > 4900))
    (1,) True
    """
    if not isinstance(structure, (DistanceSum, KernelDensity, SimilarityClassifier)):
        raise TypeError(
            f"fit supports DistanceSum, KernelDensity and SimilarityClassifier, got {type(structure).__name__}"
        )
    labelled = isinstance(structure, SimilarityClassifier)
    if labelled != (y is not None):
        raise TypeError(
            f"{type(structure).__name__} is fitted "
            + ("on (X, y): pass y" if labelled else "on X alone: y must be None")
        )
    params = structure._params()
    if isinstance(split_every, bool) or not isinstance(split_every, (int, np.integer)) or split_every < 2:
        raise ValueError(f"split_every must be an integer >= 2, got {split_every!r}")
    X = da.asarray(X)
    # The checks structure.fit makes before charging the accountant that need no pass over the
    # data; NaN/inf are found by the sums pass, after the charge (the budget is spent then).
    check_records_schema(X)
    if X.shape[0] > 2**31 - 1:
        raise ValueError("numkern.dp: at most 2^31 - 1 records per structure")
    d = X.shape[1]
    X = X.rechunk({1: -1})
    blocks = X.to_delayed().ravel()
    if labelled:
        return _fit_classifier(structure, params, X, blocks, y, split_every)
    assert not isinstance(structure, SimilarityClassifier)  # handled above
    plan = structure._begin(params, d) if isinstance(structure, KernelDensity) else structure._begin(d)
    parts = [dask.delayed(_block_sums, pure=True)(plan, blk) for blk in blocks]
    return structure._finish(plan, tree_reduce(parts, _add, split_every).compute())


def _fit_classifier(clf, params, X, blocks, y, split_every):
    y = da.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with one label per row of X ({X.shape[0]}); got shape {y.shape}")
    y = y.rechunk({0: X.chunks[0]})
    labels = y.to_delayed().ravel()
    classes = da.unique(y).compute() if clf.classes is None else np.asarray(clf.classes)
    counts = tree_reduce(
        [dask.delayed(_block_counts, pure=True)(lab, classes) for lab in labels], _add, split_every
    ).compute()["count"]  # no randomness: before the charge
    state = clf._begin(params, X.shape[1], classes, stacklevel=5)  # the warning points at the caller of fit
    plan = clf._plan(state, counts)
    parts = [dask.delayed(_block_class_sums, pure=True)(plan, blk, lab) for blk, lab in zip(blocks, labels)]
    return clf._finish(plan, tree_reduce(parts, _add, split_every).compute())
