"""Distillation targets: the real teacher and the controls that take its knowledge apart.

A teacher is logits ``G: (..., N, k)`` on the training set. Each control keeps part of what G
tells a student and removes the rest (cf. Furlanello et al. 2018's permuted predictions and
Tang et al. 2020's decomposition of knowledge distillation). With a ``link``
(:class:`mvlib.losses.Link`: the scores whose softmax the loss reads) the controls are matched in
the probability the loss acts on, not in logits: flattening or equalising logits lowers the
softmax's off-class mass (Jensen), so a logit-matched control is more confident than its teacher.
Without one they are matched in logits (the instrument the shipped maps were computed with).

======================  ============================================================  ==========
target                  what it keeps                                                 suffix
======================  ============================================================  ==========
:func:`onehot`          one confidence for every sample: label smoothing, matched     ``_onehot``
:func:`flat`            each sample's confidence, its off-class mass spread evenly    ``_control``
:func:`permuted`        the same, plus the off-class spread, on the wrong classes     ``_permuted``
real teacher            everything: which wrong classes are likely (class relations)  (none)
======================  ============================================================  ==========

So real - permuted is the value of the class relations (dark knowledge), permuted - flat that of
the off-class spread alone, flat - onehot that of per-sample confidence, and onehot - CE that of
label smoothing.
"""

from __future__ import annotations

import math

import torch

from mvlib.losses import Link

SUFFIXES = ("", "_control", "_onehot", "_permuted")
# How the controls are built: in the probability the loss reads, with a derangement per sample
# (the instrument); or in logits with one shared permutation (the shipped maps').
MATCHED, LOGIT = "probability", "logit"
CONTROLS = (MATCHED, LOGIT)


def _own(G: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mask of the true class, broadcast to G: (..., N, k) bool."""
    return torch.nn.functional.one_hot(y, G.shape[-1]).bool().expand_as(G)


def off_mean(G: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean off-class logit of each sample: (..., N, 1)."""
    return G.masked_fill(_own(G, y), 0.0).sum(-1, keepdim=True) / (G.shape[-1] - 1)


def margin(G: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """True-class logit minus the mean off-class logit: (..., N)."""
    return G.gather(-1, y.expand(G.shape[:-1])[..., None]).squeeze(-1) - off_mean(G, y).squeeze(-1)


def _off_scores(u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log mean_{j != y} exp(u_j) per sample: the level that spread evenly over the off-classes
    keeps their softmax mass: (..., N, 1)."""
    off = u.masked_fill(_own(u, y), -torch.inf)
    return off.logsumexp(-1, keepdim=True) - math.log(u.shape[-1] - 1)


def flat(G: torch.Tensor, y: torch.Tensor, link: Link | None = None) -> torch.Tensor:
    """The teacher's per-sample confidence without its dark knowledge (which wrong classes it
    finds likely): the true-class logit kept, every off-class one set to one level. With a link,
    the level spreads the teacher's off-class mass evenly, so the loss sees each sample's
    true-class probability unchanged; without, the mean off-class logit."""
    if link is None:
        level = off_mean(G, y)
    else:
        level = link.inverse(_off_scores(link(G), y))
    return torch.where(_own(G, y), G, level.expand_as(G))


def onehot(G: torch.Tensor, y: torch.Tensor, link: Link | None = None) -> torch.Tensor:
    """One target for every sample (label smoothing matched to the teacher, no per-sample
    information). With a link: its true-class probability is the teacher's mean true-class
    probability under the loss's softmax; without, its margin is the teacher's mean logit margin
    above its mean off-class logit."""
    if link is None:
        lo = off_mean(G, y).mean(-2, keepdim=True)  # (..., 1, 1)
        hi = lo + margin(G, y).mean(-1)[..., None, None]
        return torch.where(_own(G, y), hi.expand_as(G), lo.expand_as(G))
    u = link(G)
    p = torch.softmax(u.double(), -1).gather(-1, y.expand(G.shape[:-1])[..., None])
    p = p.mean(-2, keepdim=True).clamp(1e-12, 1 - 1e-12)  # a certain teacher: a finite gap
    gap = torch.log(p * (G.shape[-1] - 1) / (1 - p)).to(G.dtype)  # true minus off score at p
    lo = torch.minimum(_off_scores(u, y).mean(-2, keepdim=True), link.top - gap)
    return torch.where(_own(G, y), link.inverse(lo + gap), link.inverse(lo))


def derangements(rows: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """``rows`` independent uniform permutations of range(n) without a fixed point (rejection
    from uniform permutations: about e draws a row): (rows, n) long, drawn on the CPU."""
    if n < 2:
        raise ValueError(f"a permutation of {n} item(s) without a fixed point does not exist")
    perm = torch.rand(rows, n, generator=generator).argsort(-1)
    fixed = (perm == torch.arange(n)).any(-1)
    while fixed.any():
        perm[fixed] = torch.rand(int(fixed.sum()), n, generator=generator).argsort(-1)
        fixed = (perm == torch.arange(n)).any(-1)
    return perm


def permuted(
    G: torch.Tensor, y: torch.Tensor, generator: torch.Generator, derange: bool = False
) -> torch.Tensor:
    """The off-class logits of each sample randomly permuted among its off-classes: the same
    confidence, entropy and off-class spread, but the wrong class relations (Furlanello et al.
    2018). ``derange``: an independent permutation per sample with no fixed point, so no sample
    keeps an off-class value in place; otherwise one permutation applied in a random order per
    sample (every sample then has its cycle type; the shipped maps' instrument). Drawn on the
    CPU from ``generator`` (the same on every device)."""
    k = G.shape[-1]
    own = _own(G, y)
    if derange:
        off = torch.arange(k).expand(*G.shape[:-1], k).to(G.device)
        off = off[~own].view(*G.shape[:-1], k - 1)  # each sample's off-classes, in order
        perm = derangements(off[..., 0].numel(), k - 1, generator).view(off.shape).to(G.device)
        out = G.clone()
        out.scatter_(-1, off, G.gather(-1, off.gather(-1, perm)))
        return out
    # rank the off-classes by a random key; the true class keeps its slot (key -1 sorts first)
    keys = torch.rand(G.shape, generator=generator).to(G.device).masked_fill(own, -1.0)
    src = keys.argsort(-1)  # true class first, then off-classes
    dst = keys.argsort(-1)[..., torch.randperm(k - 1, generator=generator) + 1]
    out = G.clone()
    out.scatter_(-1, src[..., 1:], G.gather(-1, dst))
    return out


def targets(
    G: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    which: tuple[str, ...] = SUFFIXES,
    link: Link | None = None,
) -> dict[str, torch.Tensor]:
    """The real teacher and its controls, by suffix (``""`` is the real teacher). ``link``: match
    the controls in the probability the loss reads and derange the permuted one per sample
    (:data:`MATCHED`); None: matched in logits, one shared permutation (:data:`LOGIT`)."""
    make = {
        "": lambda: G,
        "_control": lambda: flat(G, y, link),
        "_onehot": lambda: onehot(G, y, link),
        "_permuted": lambda: permuted(G, y, generator, derange=link is not None),
    }
    unknown = set(which) - set(make)
    if unknown:
        raise ValueError(f"unknown target suffixes {sorted(unknown)}; known: {SUFFIXES}")
    return {s: make[s]() for s in which}
