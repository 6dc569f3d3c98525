"""Accuracy split by view type, and which views each model learned (Section 2.3)."""

from __future__ import annotations

import math

import torch

from mvlib.data import MultiViewData


def correct(F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """F_y(X) > max_{i != y} F_i(X) (Theorem 1's criterion; a tie is an error):
    (..., N, k) -> (..., N)."""
    return margins(F, y) > 0


def accuracy(F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of samples classified correctly, per member: F (K, N, k) -> (K,)."""
    return correct(F, y).float().mean(-1)


def overall(multi_view: torch.Tensor, single_view: torch.Tensor, mu: float) -> torch.Tensor:
    """Accuracy on D = (1 - mu) D_m + mu D_s (Def. 3.3), from the two split test sets."""
    return (1 - mu) * multi_view + mu * single_view


def accuracy_by_view(F: torch.Tensor, data: MultiViewData) -> torch.Tensor:
    """Accuracy on the single-view samples of class i whose strong view is l, per model:
    F (K, N, k) on single-view samples -> (K, k, 2) (NaN where no such sample)."""
    k = F.shape[-1]
    hit = correct(F, data.y).float()  # (K, N)
    cell = data.y * 2 + data.strong.clamp(min=0)  # (N,) in [0, 2k)
    n = torch.bincount(cell, minlength=2 * k).float()
    hits = torch.zeros(F.shape[0], 2 * k, device=F.device).index_add_(1, cell, hit)
    return (hits / n).view(F.shape[0], k, 2)


def learned_views_behaviour(
    F: torch.Tensor, data: MultiViewData, level: float = 0.5
) -> torch.Tensor:
    """The learned-view map from behaviour: view l of class i counts as learned when the model
    classifies at least ``level`` of the single-view test samples of class i whose strong view is
    l correctly (those samples carry view l and only a faint trace rho of the other, Def. 3.3).
    F (K, N, k) on single-view samples -> bool (K, k, 2).

    For single models and ensembles per-(class, view) accuracy is bimodal: near 1 for a learned
    view, well below 1/2 otherwise, so the level is not a tuning knob (the book shows the
    histogram). Students of weak targets (one-hot, permuted) also learn views partly (0.6-0.9):
    the map then counts a partly learned view as learned."""
    return accuracy_by_view(F, data) >= level


def learned_views(Phi: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """The learned-view map by feature magnitude (the mechanism plot; decide by behaviour with
    :func:`learned_views_behaviour`): view l of class i counts as learned when
    Phi_{i,l} >= threshold * max_l' Phi_{i,l'}. Phi (..., k, 2) -> bool (..., k, 2).

    Theorem 1's lottery: for most classes exactly one view is learned, the set M."""
    return Phi >= threshold * Phi.amax(-1, keepdim=True).clamp(min=1e-12)


def accuracy_by_strong_view(F: torch.Tensor, data: MultiViewData, learned: torch.Tensor):
    """Single-view accuracy split by whether the sample's strong view is one the model learned.

    F (K, N, k) on single-view samples, learned (K, k, 2) -> (acc on learned-view samples (K,),
    acc on unlearned-view samples (K,))."""
    hit = correct(F, data.y)
    known = learned[:, data.y, data.strong.clamp(min=0)]  # (K, N)

    def mean(mask):
        return (hit & mask).sum(-1) / mask.sum(-1).clamp(min=1)

    return mean(known), mean(~known)


def margins(F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """F_y(X) - max_{i != y} F_i(X), Theorem 4's training margin: (..., N, k) -> (..., N)."""
    own = torch.nn.functional.one_hot(y, F.shape[-1]).bool().expand_as(F)
    true = F.gather(-1, y.expand(F.shape[:-1])[..., None]).squeeze(-1)
    return true - F.masked_fill(own, -torch.inf).amax(-1)


def union_rates(
    teacher: torch.Tensor, before: torch.Tensor, after: torch.Tensor, level: float = 0.5
) -> dict[str, torch.Tensor]:
    """Theorem 4's union, cell by cell. Each (class, view) cell of a student is in M_F (its own,
    learned before phase two), M_G minus M_F (the teacher's only) or neither; a cell is learned
    when its single-view accuracy (:func:`accuracy_by_view`) is at least ``level``. Returns, per
    student, the fraction of the teacher-only cells and of the "neither" cells learned after
    phase two (``teacher_only``, ``neither``; NaN where the set is empty). A union needs
    the teacher-only rate clearly above the "neither" rate, which measures a generic push.

    teacher (k, 2) or (1, k, 2); before, after (S, k, 2) -> {name: (S,)}."""
    in_G, in_F = teacher >= level, before >= level
    # a cell without single-view test samples (NaN) is in no set
    seen = teacher.isfinite() & before.isfinite() & after.isfinite()
    sets = {"teacher_only": in_G & ~in_F & seen, "neither": ~in_G & ~in_F & seen}
    out = {}
    for name, cells in sets.items():
        cells = cells.expand_as(before)
        n = cells.sum((-2, -1)).float()
        learned = (after >= level) & cells
        out[name] = learned.sum((-2, -1)) / n.where(n > 0, torch.nan)
    return out


# The metrics that are not fractions (every other metric ``reproduce`` returns lies in [0, 1]).
MAGNITUDES = ("phi_max", "logit_max")


def theorem4_bounds(F_train: torch.Tensor, y: torch.Tensor, Phi: torch.Tensor, tau: float):
    """Theorem 4's first two conclusions, per model, as fractions (full version; the ICLR text
    trains the student from scratch instead). Reads Omega(log k) as ln k and O~(1) as
    1/tau^2 = log^4 k, the point where eq. (4.2) truncates a logit (beyond it eq. 4.3's push on
    that logit no longer depends on the teacher).

    F_train (K, N, k) on the training set Z, Phi (K, k, 2) -> {"train_margin": fraction of Z
    with F_y >= max_{i != y} F_i + ln k, "phi_bounded": fraction of classes with
    Phi_i = Phi_{i,1} + Phi_{i,2} <= 1/tau^2, "phi_max": max_i Phi_i, "logit_max": max |F| on
    Z}, each (K,)."""
    k, Phi_i = F_train.shape[-1], Phi.sum(-1)  # the theorem bounds Phi_i, each class's sum
    return {
        "train_margin": (margins(F_train, y) >= math.log(k)).float().mean(-1),
        "phi_bounded": (Phi_i <= 1 / tau**2).float().mean(-1),
        "phi_max": Phi_i.amax(-1),
        "logit_max": F_train.abs().flatten(1).amax(-1),
    }
