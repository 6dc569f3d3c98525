"""The regime map: where each claim holds, from a sweep's tidy CSV (:mod:`mvlib.sweep`).

A claim is a paired comparison of two methods' single-view accuracy on the same seeds (their
students share initialisations), or a level one method must reach; it holds at a grid point when
the 95% interval over seeds clears zero (or the level).
"""
from __future__ import annotations

from dataclasses import dataclass

from mvlib.stats import Interval, mean_ci

METRIC = "single_view"


@dataclass(frozen=True)
class Claim:
    """``a - b > 0`` on METRIC (b None: ``a - level > 0``), with a name for tables."""

    name: str
    a: str
    b: str | None = None
    level: float = 0.0


# Theorem 3 and its controls (knowledge distillation from the ensemble).
KD_CLAIMS = (
    Claim("dark knowledge: real - permuted", "distill", "distill_permuted"),
    Claim("real - flat", "distill", "distill_control"),
    Claim("confidence: flat - one-hot", "distill_control", "distill_onehot"),
    Claim("distillation - single", "distill", "single"),
)
# Theorem 4 (two-phase self-distillation) and its controls.
SD_CLAIMS = (
    Claim("self-distillation >= 3/4", "self_distill", level=0.75),
    Claim("distillation - continuation", "self_distill", "self_distill_continue"),
    Claim("teacher: real - one-hot", "self_distill", "self_distill_onehot"),
    Claim("dark knowledge: real - permuted", "self_distill", "self_distill_permuted"),
)


def grid_columns(df) -> list[str]:
    """The parameters that vary in a sweep's frame (its grid)."""
    fixed = {"seed", "method", "preset", "train", "multi_view", "single_view", "overall",
             "both_views"}
    return [c for c in df.columns if c not in fixed and df[c].nunique(dropna=False) > 1]


def _per_seed(df, method: str):
    return df[df.method == method].set_index("seed")[METRIC]


def interval(df, claim: Claim) -> Interval:
    """The claim's 95% interval over the seeds of one grid point (rows of df)."""
    a = _per_seed(df, claim.a)
    if claim.b is None:
        return mean_ci(a.to_numpy() - claim.level)
    b = _per_seed(df, claim.b)
    seeds = a.index.intersection(b.index)
    return mean_ci((a[seeds] - b[seeds]).to_numpy())


def claim_table(df, claims) -> "pd.DataFrame":  # noqa: F821
    """One row per (grid point, claim): mean, lo, hi, seeds and ``holds`` (lo > 0)."""
    import pandas as pd

    grid = grid_columns(df)
    rows = []
    groups = df.groupby(grid, sort=False) if grid else [((), df)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for c in claims:
            if c.a not in set(part.method) or (c.b and c.b not in set(part.method)):
                continue
            ci = interval(part, c)
            rows.append({**dict(zip(grid, key)), "claim": c.name, "mean": ci.mean, "lo": ci.lo,
                         "hi": ci.hi, "seeds": ci.n, "holds": ci.lo > 0})
    return pd.DataFrame(rows)
