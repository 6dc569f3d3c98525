"""Message 4 of the paper's Figure 6: the sum, the average and the width.

Def. 3.4 sums over neurons, so the sum of K members of width m is one model of width M = K * m
(its K * m neurons drawn at sigma0 member by member). Models of several widths therefore train
in one batch, as groups of members, each group trained as one sum (as ``train_sum``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from mvlib import losses
from mvlib._validate import check_range
from mvlib.cache import cached
from mvlib.config import STREAM_WIDTH, ExperimentConfig
from mvlib.model import Network
from mvlib.stats import mean_ci
from mvlib.trainers import Data, Trained, evaluate, fit, initial, make_data
from mvlib.units import Run, as_network, members, trained_average, trained_sum, unit_key


def grouped_sum(loss: Callable, sizes: tuple[int, ...]) -> Callable:
    """Several sums in one batch: the members form consecutive groups of ``sizes`` (G groups);
    group g is one model F_g = sum of its members and each member receives dL/dF_g of its group
    (:func:`mvlib.losses.summed`, once per group). ``loss`` sees the groups' logits (G, n, k)."""
    group = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))

    def wrapped(F, s):
        g = group.to(F.device)
        value, grad = loss(F.new_zeros(len(sizes), *F.shape[1:]).index_add_(0, g, F), s)
        return value[g], grad[g]

    return wrapped


def width_sizes(cfg: ExperimentConfig, widths) -> tuple[int, ...]:
    """Members per model: M / m for each width M (neurons per class, a multiple of m)."""
    m = cfg.learner.m
    if len(widths) == 0:
        raise ValueError("widths must name at least one width")
    for M in widths:
        check_range("width", M, m, None, integer=True, why="neurons per class, a multiple of m")
        if M % m:
            raise ValueError(f"width must be a multiple of m = {m}, got {M}")
    return tuple(M // m for M in widths)


def train_widths(
    cfg: ExperimentConfig,
    data: Data,
    seed: int,
    widths: tuple[int, ...],
    progress: Callable | None = None,
) -> list[Trained]:
    """Single models of widths M (neurons per class; repeat a width for independent draws),
    trained by GD on cross-entropy with step eta (eq. 3.1), all in one batch. Model j is the sum
    of M_j / m members, exactly :func:`train_sum` with K = M_j / m. Returns one Trained per
    width, W (M_j / m, k, m, d); evaluate it with ``ensemble=True`` (the mean ranks as the sum)."""
    sizes = width_sizes(cfg, widths)
    W0 = initial(cfg, sum(sizes), seed, STREAM_WIDTH, data.train.X.device)
    trained = fit(
        cfg,
        Network(cfg.learner, cfg.chunk),
        W0,
        data,
        grouped_sum(losses.cross_entropy(data.train.y), sizes),
        cfg.eta,
        cfg.steps,
        progress,
    )
    ends = torch.tensor(sizes).cumsum(0).tolist()
    return [trained.select(slice(end - K, end)) for K, end in zip(sizes, ends)]


def width_key(cfg: ExperimentConfig) -> ExperimentConfig:
    """The cache key of :func:`wide_models`: the members' fields with K at its default (the
    widths, not K, set the models)."""
    return replace(unit_key(cfg, "members"), K=ExperimentConfig.K)


@cached
def _widths_unit(cfg, seed, widths):
    return [Run.of(t) for t in train_widths(cfg, make_data(cfg, seed), seed, widths)]


def wide_models(
    cfg: ExperimentConfig, seed: int, widths: tuple[int, ...], data: Data | None = None
) -> list[Trained]:
    """:func:`train_widths`, cached."""
    data = data or make_data(cfg, seed)
    return [as_network(cfg, r, data) for r in _widths_unit(width_key(cfg), seed, tuple(widths))]


def message4_rows(
    cfg: ExperimentConfig, seed: int, widths: tuple[int, ...] = (), data: Data | None = None
) -> list[dict]:
    """Every model of Message 4's comparison on data seed ``seed``, one row per trained model:
    ``{"seed", "model", "width", "draw", "train", "multi_view", "single_view", "overall",
    "both_views"}``, ``width`` in neurons per class. Models: "single model" (each of the K
    members at width m, then :func:`wide_models` at ``widths``), "ensemble" (eq. 4.1),
    "trained sum" and "trained average" (K members jointly, K * m neurons per class)."""
    data = data or make_data(cfg, seed)
    mu, m, K = cfg.data.mu, cfg.learner.m, cfg.K
    team = members(cfg, seed, data)
    models = [
        ("single model", m, evaluate(team, data, mu)),
        ("ensemble", K * m, evaluate(team, data, mu, ensemble=True)),
        ("trained sum", K * m, evaluate(trained_sum(cfg, seed, data), data, mu, True)),
        ("trained average", K * m, evaluate(trained_average(cfg, seed, data), data, mu, True)),
    ]
    if widths:
        models += [
            ("single model", M, evaluate(t, data, mu, ensemble=True))
            for M, t in zip(widths, wide_models(cfg, seed, widths, data))
        ]
    rows, draws = [], {}
    for name, width, res in models:
        for j in range(len(res["single_view"])):
            draw = draws[name, width] = draws.get((name, width), -1) + 1
            rows.append(
                {
                    "seed": seed,
                    "model": name,
                    "width": width,
                    "draw": draw,
                    **{key: float(v[j]) for key, v in res.items()},
                }
            )
    return rows


def width_curve(rows: list[dict], m: int, metric: str = "single_view") -> list[dict]:
    """The single models of each width M (rows of :func:`message4_rows`), ascending:
    ``{"width", "n", "mean", "interval", "min", "max", "holds"}``, the interval a 95% t-interval
    over draws (:func:`mvlib.stats.mean_ci`). ``holds`` is Message 4 at width M: the mean lies
    within [min, max] of the single models of width m, so a sum of M / m members is no better
    than one member."""
    by_width = {}
    for r in rows:
        if r["model"] == "single model":
            by_width.setdefault(r["width"], []).append(r[metric])
    if m not in by_width:
        raise ValueError(f"rows hold no single model of width m = {m}")
    lo, hi = min(by_width[m]), max(by_width[m])
    out = []
    for M in sorted(by_width):
        v, ci = by_width[M], mean_ci(by_width[M])
        out.append(
            {
                "width": M,
                "n": len(v),
                "mean": ci.mean,
                "interval": ci,
                "min": min(v),
                "max": max(v),
                "holds": lo <= ci.mean <= hi,
            }
        )
    return out
