"""Optional peers, imported only if installed, each pinned to the same thread count as numkern."""

from __future__ import annotations


def torch_or_none(threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def scipy_special_or_none():
    try:
        import scipy.special
    except ImportError:
        return None
    return scipy.special
