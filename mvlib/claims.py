"""The paper's claims and their verdicts: the only place a verdict is computed.

A claim is a paired comparison of two methods' single-view accuracy on the same seeds (their
students share initialisations), or a level one method must reach. Its verdict at a grid point,
in a ``reproduce`` run or in a chapter comes from :func:`verdict` of its 95% interval over seeds.

- :data:`ENSEMBLE_CLAIMS`, :data:`KD_CLAIMS`, :data:`SD_CLAIMS`, :data:`CLAIMS`: Theorems 2-4,
  their controls and Message 4.
- :func:`claim_table`, :func:`holds_where`, :func:`describe`: each claim per grid point of a
  sweep, where it holds, in words; :func:`paired_claims`: the claims of ``reproduce``'s results.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from mvlib.stats import Interval, mean_ci

if TYPE_CHECKING:
    import pandas as pd


HOLDS = "holds"


def verdict(ci: Interval) -> str:
    """A claim's status from its 95% interval over seeds: ``"holds"`` when the interval lies
    above zero, ``"does not hold"`` otherwise, ``"1 seed"`` when one seed gives no interval."""
    if ci.n < 2:
        return "1 seed"
    return HOLDS if ci.lo > 0 else "does not hold"


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


# Theorem 2: the ensemble of K independently trained models against one of them.
ENSEMBLE_CLAIMS = (Claim("ensemble - single", "ensemble", "single"),)
# The two questions a regime map answers: (a) the ensemble's dark knowledge beats both the flat
# and the permuted teacher; (b) Theorem 4: two-phase self-distillation reaches 3/4 single-view
# accuracy and beats its continuation baseline.
DARK_KNOWLEDGE = ("dark knowledge: real - permuted", "real - flat")
THEOREM4 = ("self-distillation >= 3/4", "distillation - continuation")
# Message 4: training the sum of K members is one wider model, no better than one member.
MESSAGE4 = (Claim("Message 4: sum - single (predicted ~0)", "train_sum", "single"),)
# Every claim ``reproduce`` reports.
CLAIMS = ENSEMBLE_CLAIMS + KD_CLAIMS + SD_CLAIMS + MESSAGE4


def tagged(claims, tag: str) -> tuple[Claim, ...]:
    """The claims renamed ``"TAG: name"``, so KD's and SD's claims share one table."""
    return tuple(replace(c, name=f"{tag}: {c.name}") for c in claims)


def grid_columns(df) -> list[str]:
    """The parameters that vary in a sweep's frame (its grid)."""
    fixed = {
        "seed",
        "method",
        "preset",
        "train",
        "multi_view",
        "single_view",
        "overall",
        "both_views",
    }
    return [c for c in df.columns if c not in fixed and df[c].nunique(dropna=False) > 1]


def _per_seed(df, method: str):
    return df[df.method == method].set_index("seed")[METRIC]


def draws(df, a: str, b: str | None, level: float = 0.0) -> np.ndarray:
    """Per-seed METRIC of ``a`` minus ``b``'s on the same seed (b None: minus ``level``)."""
    x = _per_seed(df, a)
    if b is None:
        return x.to_numpy() - level
    y = _per_seed(df, b)
    seeds = x.index.intersection(y.index)
    return (x[seeds] - y[seeds]).to_numpy()


def interval(df, claim: Claim) -> Interval:
    """The claim's 95% interval over the seeds of one grid point (rows of df)."""
    return mean_ci(draws(df, claim.a, claim.b, claim.level))


def claim_table(df, claims, grid: list[str] | None = None) -> pd.DataFrame:
    """One row per (grid point, claim): mean, lo, hi, seeds and ``holds`` (:func:`verdict`).
    ``grid``: the grid columns (default: ``df.attrs["grid"]``, which
    :func:`mvlib.maps.shipped` sets, else the columns that vary in df; a partial sweep may not
    vary yet in every grid column)."""
    import pandas as pd

    grid = list(grid or df.attrs.get("grid") or grid_columns(df))
    rows = []
    groups = df.groupby(grid, sort=False) if grid else [((), df)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for c in claims:
            if c.a not in set(part.method) or (c.b and c.b not in set(part.method)):
                continue
            ci = interval(part, c)
            rows.append(
                {
                    **dict(zip(grid, key)),
                    "claim": c.name,
                    "mean": ci.mean,
                    "lo": ci.lo,
                    "hi": ci.hi,
                    "seeds": ci.n,
                    "holds": verdict(ci) == HOLDS,
                }
            )
    return pd.DataFrame(rows)


def holds_where(table, claims, grid: list[str]) -> list[dict]:
    """The grid points (``{column: value}``) of a :func:`claim_table` where every one of
    ``claims`` (a name or several) holds."""
    names = [claims] if isinstance(claims, str) else list(claims)
    part = table[table.claim.isin(names)]
    if part.empty:
        return []
    every = part.groupby(grid, sort=False).holds.agg(["all", "size"])
    every = every[every["all"] & (every["size"] == len(names))]
    return [dict(zip(grid, key if isinstance(key, tuple) else (key,))) for key in every.index]


def describe(table, grid: list[str], fmt: str = ".3f") -> list[str]:
    """One sentence per claim of a :func:`claim_table`: where it holds (or that it holds nowhere
    in the range tried) and the range of its mean over the grid points."""
    out = []
    for claim, part in table.groupby("claim", sort=False):
        where = holds_where(part, claim, grid)
        points = "; ".join(", ".join(f"{k}={v:g}" for k, v in p.items()) for p in where)
        verdict = (
            f"holds at {len(where)} of {len(part)} grid points ({points})"
            if where
            else f"holds nowhere in the {len(part)} grid points tried"
        )
        out.append(
            f"{claim}: {verdict}; mean from {part['mean'].min():+{fmt}} to "
            f"{part['mean'].max():+{fmt}}"
        )
    return out


def claims_on(claims, methods) -> list[Claim]:
    """The claims that compare ``methods`` only."""
    return [c for c in claims if {c.a, c.b} - {None} <= set(methods)]


def paired_claims(results: dict[str, dict[str, list[float]]], claims=CLAIMS) -> list[dict]:
    """Each claim whose methods ran in ``results`` (``{method: {metric: [one per seed]}}``):
    the paired difference of single-view accuracy over the seeds (students of a teacher and of
    its controls share initialisations), its 95% interval and ``holds`` (:func:`verdict`)."""
    out = []
    for c in claims:
        if c.a not in results or (c.b is not None and c.b not in results):
            continue
        a = np.asarray(results[c.a][METRIC])
        b = np.asarray(results[c.b][METRIC]) if c.b is not None else c.level
        ci = mean_ci(a - b)
        out.append(
            {
                "claim": c.name,
                "a": c.a,
                "b": c.b,
                "level": c.level,
                "mean": ci.mean,
                "lo": ci.lo,
                "hi": ci.hi,
                "seeds": ci.n,
                "holds": verdict(ci) == HOLDS,
            }
        )
    return out
