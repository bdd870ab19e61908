"""Peer comparisons behind ``python -m numkern bench``: one module per family, each exposing
``cases(quick: bool) -> list[Case]``."""

FAMILIES = {
    "softmax": "numkern.bench.softmax",
    "sketch": "numkern.bench.sketch",
}
