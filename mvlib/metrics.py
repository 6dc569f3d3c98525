"""Accuracy split by view type, and which views each model learned (Section 2.3)."""
from __future__ import annotations

import torch

from mvlib.data import MultiViewData


def correct(F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """F_y(X) > max_{i != y} F_i(X) (Theorem 1's criterion; a tie is an error): (..., N, k) -> (..., N)."""
    own = torch.nn.functional.one_hot(y, F.shape[-1]).bool().expand_as(F)
    return F.gather(-1, y.expand(F.shape[:-1])[..., None]).squeeze(-1) > F.masked_fill(own, -torch.inf).amax(-1)


def accuracy(F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of samples classified correctly, per member: F (K, N, k) -> (K,)."""
    return correct(F, y).float().mean(-1)


def overall(multi_view: torch.Tensor, single_view: torch.Tensor, mu: float) -> torch.Tensor:
    """Accuracy on D = (1 - mu) D_m + mu D_s (Def. 3.3), from the two split test sets."""
    return (1 - mu) * multi_view + mu * single_view


def learned_views(Phi: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """The learned-view map: view l of class i counts as learned when
    Phi_{i,l} >= threshold * max_l' Phi_{i,l'}. Phi (..., k, 2) -> bool (..., k, 2).

    Theorem 1's lottery: for most classes exactly one view is learned, the set M."""
    return Phi >= threshold * Phi.amax(-1, keepdim=True).clamp(min=1e-12)


def accuracy_by_strong_view(F: torch.Tensor, data: MultiViewData, learned: torch.Tensor):
    """Single-view accuracy split by whether the sample's strong view is one the model learned.

    F (K, N, k) on single-view samples, learned (K, k, 2) -> (acc on learned-view samples (K,),
    acc on unlearned-view samples (K,))."""
    K = F.shape[0]
    hit = correct(F, data.y)
    known = learned[:, data.y, data.strong.clamp(min=0)]                 # (K, N)
    def mean(mask):
        return (hit & mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return mean(known), mean(~known)
