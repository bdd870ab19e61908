"""Peer comparisons behind ``python -m numkern bench``: one module per family, each exposing
``cases(quick: bool) -> list[Case]``."""

FAMILIES = {
    "softmax": "numkern.bench.softmax",
    "norm": "numkern.bench.norm",
    "quant": "numkern.bench.quant",
    "dp": "numkern.bench.dp",
    "sketch": "numkern.bench.sketch",
    "dask": "numkern.bench.dask",
}
