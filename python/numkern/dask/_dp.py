"""Differentially private structures fitted on a Dask array of records: exact int64 partial sums
per row block, tree-merged, and the noise added once on the driver."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from ..dp._data import private_data
from ..dp._distance import DistanceSum
from ..dp._kde import KernelDensity
from ._common import aligned, aligned_plan, task, tree_reduce


@task
def _block_sums(plan, block):
    return aligned_plan(plan).partial(aligned(private_data(block)))


def _add(*parts):
    """Key-wise sum of int64 partial sums: exact, so the grouping does not matter."""
    return {key: np.sum([p[key] for p in parts], axis=0, dtype=np.int64) for key in parts[0]}


def fit(structure, X, *, split_every: int = 8):
    """Fit a DP structure (:class:`numkern.dp.DistanceSum` or :class:`numkern.dp.KernelDensity`)
    on a Dask array of records chunked by rows; returns the fitted structure.

    Every row block computes the exact integer (fixed-point) sums the structure releases --
    histogram counts, fixed-point sums of clipped records, sums of rounded random features, the
    record count -- with the same code as ``structure.fit``; the blocks' sums are added in a
    tree (int64 addition is exact, so any chunking and merge order gives the same integers), and
    the driver adds the noise once, with the same sampler and randomness source as ``fit``. So
    the privacy guarantee, the sensitivity and the noise scale are exactly those of a
    single-machine fit, and with a seeded ``rng`` the result equals ``structure.fit(X.compute())``
    bit for bit. Data-independent randomness (features, projections) is drawn on the driver and
    shipped to the workers; the noise source never leaves the driver.

    Parameters
    ----------
    structure : DistanceSum or KernelDensity
        Unfitted or fitted (refitting replaces its state; the accountant is charged once).
    X : dask.array.Array or array_like, shape (n, d)
    split_every : int, default 8
        Fan-in of the merge tree.

    Raises
    ------
    TypeError
        For another structure type.
    ValueError
        As ``structure.fit`` (NaN/inf records are reported when the blocks are computed).
    """
    if not isinstance(structure, (DistanceSum, KernelDensity)):
        raise TypeError(f"fit supports DistanceSum and KernelDensity, got {type(structure).__name__}")
    params = structure._params()
    X = da.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must be a real numeric array, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_records, n_features); got {X.ndim} dimension(s)")
    if X.shape[0] > 2**31 - 1:
        raise ValueError("numkern.dp: at most 2^31 - 1 records per structure")
    d = X.shape[1]
    plan = structure._begin(params, d) if isinstance(structure, KernelDensity) else structure._begin(d)
    blocks = X.rechunk({1: -1}).to_delayed().ravel()
    parts = [dask.delayed(_block_sums, pure=True)(plan, blk) for blk in blocks]
    return structure._finish(plan, tree_reduce(parts, _add, split_every).compute())
