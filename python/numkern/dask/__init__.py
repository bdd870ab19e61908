"""numkern.dask: numkern's mergeable algorithms on chunked Dask arrays and clusters.

Optional extra ``pip install numkern[dask]`` (dask[array], distributed). ``import numkern`` never
imports Dask; this module does.

- :func:`softmax`, :func:`log_softmax` -- blockwise when the axis is one chunk, otherwise a tree
  reduction of the two-pass (mantissa, exponent) sums and a blockwise scaling pass;
- :func:`lstsq` -- Gaussian sketch of row blocks keyed by global row index, tree-summed in a
  fixed dyadic order over 4096-row tiles (bit-identical for any chunking and to
  :func:`numkern.lstsq`), then sketch-and-solve or a preconditioned solver with one pass of
  blockwise products per iteration;
- :func:`fit` -- the DP structures: exact integer partial sums per block, merged, noise added once;
- :func:`matmul` -- ShiftQuant GEMM with row blocks of ``a`` and exact integer partial sums over K.

Every kernel runs with one thread per Dask thread (no oversubscription) and releases the GIL.
"""

try:
    import dask  # noqa: F401
    import dask.array  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra only
    raise ImportError("numkern.dask needs the optional extra: pip install 'numkern[dask]'") from exc

from ._dp import fit
from ._lstsq import lstsq
from ._quant import matmul
from ._softmax import log_softmax, softmax

__all__ = ["fit", "log_softmax", "lstsq", "matmul", "softmax"]
