"""Distillation targets: the real teacher and the controls that take its knowledge apart.

A teacher is logits ``G: (..., N, k)`` on the training set. Each control keeps part of what G
tells a student and removes the rest (cf. Furlanello et al. 2018's permuted predictions and
Tang et al. 2020's decomposition of knowledge distillation):

======================  ============================================================  ==========
target                  what it keeps                                                 suffix
======================  ============================================================  ==========
:func:`onehot`          one margin for every sample: label smoothing, matched level   ``_onehot``
:func:`flat`            each sample's true-class logit and its mean off-class logit   ``_control``
:func:`permuted`        the same, plus the off-class spread, on the wrong classes     ``_permuted``
real teacher            everything: which wrong classes are likely (class relations)  (none)
======================  ============================================================  ==========

So real - permuted is the value of the class relations (dark knowledge), permuted - flat that of
the off-class spread alone, flat - onehot that of per-sample confidence, and onehot - CE that of
label smoothing.
"""

from __future__ import annotations

import torch

SUFFIXES = ("", "_control", "_onehot", "_permuted")


def _own(G: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mask of the true class, broadcast to G: (..., N, k) bool."""
    return torch.nn.functional.one_hot(y, G.shape[-1]).bool().expand_as(G)


def off_mean(G: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean off-class logit of each sample: (..., N, 1)."""
    return G.masked_fill(_own(G, y), 0.0).sum(-1, keepdim=True) / (G.shape[-1] - 1)


def margin(G: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """True-class logit minus the mean off-class logit: (..., N)."""
    return G.gather(-1, y.expand(G.shape[:-1])[..., None]).squeeze(-1) - off_mean(G, y).squeeze(-1)


def flat(G: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Every off-class logit replaced by the sample's mean off-class logit: the teacher's
    per-sample confidence without the dark knowledge (which wrong classes it finds likely)."""
    return torch.where(_own(G, y), G, off_mean(G, y).expand_as(G))


def onehot(G: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One-hot logits at the teacher's mean level: off-class logits at G's mean off-class logit,
    the true class that plus G's mean margin, the same for every sample (label smoothing matched
    to the teacher, no per-sample information)."""
    lo = off_mean(G, y).mean(-2, keepdim=True)  # (..., 1, 1)
    hi = lo + margin(G, y).mean(-1)[..., None, None]
    return torch.where(_own(G, y), hi.expand_as(G), lo.expand_as(G))


def permuted(G: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The off-class logits of each sample randomly permuted among its off-classes: the same
    confidence, entropy and off-class spread, but the wrong class relations (Furlanello et al.
    2018). The permutation is drawn on the CPU from ``generator`` (same on every device)."""
    k = G.shape[-1]
    own = _own(G, y)
    # rank the off-classes by a random key; the true class keeps its slot (key -1 sorts first)
    keys = torch.rand(G.shape, generator=generator).to(G.device).masked_fill(own, -1.0)
    src = keys.argsort(-1)  # true class first, then off-classes
    dst = keys.argsort(-1)[..., torch.randperm(k - 1, generator=generator) + 1]
    out = G.clone()
    out.scatter_(-1, src[..., 1:], G.gather(-1, dst))
    return out


def targets(
    G: torch.Tensor, y: torch.Tensor, generator: torch.Generator, which: tuple[str, ...] = SUFFIXES
) -> dict[str, torch.Tensor]:
    """The real teacher and its controls, by suffix (``""`` is the real teacher)."""
    make = {
        "": lambda: G,
        "_control": lambda: flat(G, y),
        "_onehot": lambda: onehot(G, y),
        "_permuted": lambda: permuted(G, y, generator),
    }
    unknown = set(which) - set(make)
    if unknown:
        raise ValueError(f"unknown target suffixes {sorted(unknown)}; known: {SUFFIXES}")
    return {s: make[s]() for s in which}
