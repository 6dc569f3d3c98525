"""The paper's claims and their verdicts: the only place a verdict is computed.

A claim is a paired comparison of two methods on the same seeds (their students share
initialisations), or a level one method must reach, on one metric (single-view accuracy unless
it says otherwise). Its verdict at a grid point, in a ``reproduce`` run or in a chapter comes from
:func:`verdict` of its per-seed values: ``holds`` (95% interval above 0), ``equivalent to zero``
(two one-sided tests inside a stated margin), ``fails`` (95% interval below 0) or ``not
resolved``. "Contributes nothing" is read only from ``equivalent to zero``.

- :data:`ENSEMBLE_CLAIMS`, :data:`KD_CLAIMS`, :data:`SD_CLAIMS`, :data:`THEOREM4_CLAIMS`,
  :data:`CLAIMS`: Theorems 2-4 (Theorem 4 on each of its conclusions), controls, Message 4.
- :func:`claim_table`, :func:`holds_where`, :func:`describe`: each claim per grid point of a
  sweep, where it holds, in words; :func:`paired_claims`: the claims of ``reproduce``'s results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from mvlib.config import ExperimentConfig, parameter_names
from mvlib.stats import Interval, equivalence_interval, mean_ci

if TYPE_CHECKING:
    import pandas as pd


HOLDS, EQUIVALENT, FAILS, UNRESOLVED = "holds", "equivalent to zero", "fails", "not resolved"
VERDICTS = (HOLDS, EQUIVALENT, FAILS, UNRESOLVED)
MARGIN = 0.02  # the equivalence margin, in accuracy (2 points), unless a claim states its own


def verdict(values, margin: float = MARGIN, bound: bool = False) -> str:
    """A claim's status from its per-seed values: ``holds`` when their 95% interval is above 0;
    else ``equivalent to zero`` when their 90% interval (Schuirmann's two one-sided tests at 5%)
    lies inside (-margin, margin); else ``fails`` when the 95% interval is below 0; else ``not
    resolved``, as is one seed, which has no interval. An interval that merely holds 0 is not
    "nothing": only equivalence says so. ``bound``: the values are a level's excess (a bound
    the paper states), and a significant shortfall ``fails`` however small."""
    x = np.asarray(values, dtype=float).ravel()
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    if x.size < 2:
        return UNRESOLVED
    ci = mean_ci(x)
    if ci.lo > 0:
        return HOLDS
    if bound and ci.hi < 0:
        return FAILS
    eq = equivalence_interval(x)
    if -margin < eq.lo and eq.hi < margin:
        return EQUIVALENT
    return FAILS if ci.hi < 0 else UNRESOLVED


METRIC = "single_view"


@dataclass(frozen=True)
class Claim:
    """``a - b > 0`` on ``metric`` (b None: ``a - level > 0``; ``b_metric``: b's, or a's own
    other, metric), ``level - a > 0`` when ``below``, with a name for tables. ``level`` is a
    number or a function of the run's parameters (e.g. of mu); ``margin`` is the equivalence
    margin of :func:`verdict`."""

    name: str
    a: str
    b: str | None = None
    level: float | Callable[[Mapping], float] = 0.0
    metric: str = METRIC
    b_metric: str | None = None
    below: bool = False
    margin: float = MARGIN

    @property
    def methods(self) -> set[str]:
        return {self.a} | ({self.b} if self.b else set())

    @property
    def is_level(self) -> bool:
        """Whether the claim is a level one method must reach (a bound), not a comparison."""
        return self.b is None and self.b_metric is None

    def level_at(self, params: Mapping | None) -> float:
        """The level at a run's parameters (``{name: value}``, as :func:`mvlib.config.as_dict`)."""
        return self.level(params) if callable(self.level) else self.level


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
# Theorem 4 (full version), each conclusion its own line; single-view >= 3/4 is in SD_CLAIMS.
# Omega(log k) is read as ln k and O~(1) as 1/tau^2 (mvlib.metrics.theorem4_bounds). The union
# compares the cells only the teacher had with cells neither had (a generic push); the
# continuation's union is the same count for cross-entropy alone.
THEOREM4_CLAIMS = (
    Claim(
        "T4 training: margin >= ln k on 99% of Z", "self_distill", metric="train_margin", level=0.99
    ),
    Claim(
        "T4 Phi_i <= 1/tau^2 on 99% of classes", "self_distill", metric="phi_bounded", level=0.99
    ),
    Claim(
        "T4 multi-view: self-distillation - single", "self_distill", "single", metric="multi_view"
    ),
    Claim(
        "T4 test error <= 0.26 mu: overall - (1 - 0.26 mu)",
        "self_distill",
        metric="overall",
        level=lambda p: 1 - 0.26 * float(p["mu"]),
        margin=0.005,  # the bound itself is 0.026 at mu = 0.1: two points would swallow it
    ),
    Claim(
        "T4 union: teacher-only - neither, learned",
        "self_distill",
        metric="union_teacher_only",
        b_metric="union_neither",
    ),
    Claim(
        "T4 union, continuation (control)",
        "self_distill_continue",
        metric="union_teacher_only",
        b_metric="union_neither",
    ),
    # the same teacher-only cells of the same students, against more training alone
    Claim(
        "T4 union: teacher-only learned, - continuation",
        "self_distill",
        "self_distill_continue",
        metric="union_teacher_only",
    ),
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
# Theorem 1: error in [0.49 mu, 0.51 mu], single-view accuracy 1/2; at the small k here it is
# read inside 1/2 +- 0.05 (the glance page), beside the training fit.
THEOREM1_SINGLE_VIEW = 0.5
T1_TRAIN = Claim("T1: training accuracy - 0.99", "single", metric="train", level=0.99)
T1_HALF = Claim("T1: single-view - 1/2", "single", level=THEOREM1_SINGLE_VIEW)
T1_BAND = (
    Claim("T1: single-view - 0.45", "single", level=THEOREM1_SINGLE_VIEW - 0.05),
    Claim("T1: 0.55 - single-view", "single", level=THEOREM1_SINGLE_VIEW + 0.05, below=True),
)
# Message 4 in the paper's words: the ensemble's gain is not matched by training the sum.
ENSEMBLE_SUM = Claim("Message 4: ensemble - trained sum", "ensemble", "train_sum")
# Figure 6's kernel messages (1) to (3).
NTK_CLAIMS = (
    Claim("Figure 6 (1): NTK ensemble - single", "ntk_ensemble", "ntk_single"),
    Claim("Figure 6 (1): NTK average - ensemble", "ntk_train_average", "ntk_ensemble"),
    Claim("Figure 6 (2): NTK distillation - single", "ntk_distill", "ntk_single"),
    Claim("Figure 6 (3): NTK self-distillation - single", "ntk_self_distill", "ntk_single"),
    # "cannot be distilled" as a gap: the student stays below its ensemble
    Claim("Figure 6 (2): NTK ensemble - student", "ntk_ensemble", "ntk_distill"),
)
# The network beside them (Message 5: its ensemble "can be distilled ... by a large extent").
NETWORK_CONTRAST = (
    Claim("network: ensemble - single", "ensemble", "single"),
    Claim("network: distillation - single", "distill", "single"),
    Claim("network: ensemble - student", "ensemble", "distill"),
)
# Real images (chapter 9, :func:`mvlib.images.seed_frame`): Figure 6's row, Figure 8 and
# Figure 9 on test accuracy, with the margin the real-data table is sized to resolve (half a
# point). Figure 8: an ensemble of students gains less than one of as many single models;
# Figure 9: thinning a layer costs its ensemble less than its single models (at m = 2, the
# thinning the paper's Figure 9 reaches for this width: see ImageConfig.thin).
REAL_MARGIN = 0.005


def _real(name: str, a: str, b: str) -> Claim:
    return Claim(name, a, b, metric="accuracy", margin=REAL_MARGIN)


REAL_CLAIMS = (
    _real("ensemble - single", "ensemble", "single"),
    _real("distillation - single", "distill", "single"),
    _real("dark knowledge: real - permuted", "distill", "distill_permuted"),
    _real("real - flat", "distill", "distill_control"),
    _real("confidence: flat - one-hot", "distill_control", "distill_onehot"),
    _real("label smoothing: one-hot - single", "distill_onehot", "single"),
    _real("self-distillation - continuation", "self_distill", "self_distill_continue"),
    _real("self-distillation - single", "self_distill", "single"),
    _real("born again - single", "born_again", "single"),
    _real("Message 4: ensemble - trained sum", "ensemble", "train_sum"),
    _real("trained average - ensemble", "train_average", "ensemble"),
    _real("Figure 8: singles' ensemble gain - students'", "gain:singles", "gain:students"),
    _real("Figure 9: ensemble gain, half the channels - all", "gain:split2", "gain:original"),
    _real("Figure 9: ensemble gain, averages of 2 - all", "gain:average2", "gain:original"),
)
# Every claim ``reproduce`` reports.
CLAIMS = ENSEMBLE_CLAIMS + KD_CLAIMS + SD_CLAIMS + THEOREM4_CLAIMS + MESSAGE4


def tagged(claims, tag: str) -> tuple[Claim, ...]:
    """The claims renamed ``"TAG: name"``, so KD's and SD's claims share one table."""
    return tuple(replace(c, name=f"{tag}: {c.name}") for c in claims)


def grid_columns(df) -> list[str]:
    """The parameters that vary in a sweep's frame (its grid)."""
    names = set(parameter_names(ExperimentConfig()))
    return [c for c in df.columns if c in names and df[c].nunique(dropna=False) > 1]


def _per_seed(df, method: str, metric: str = METRIC):
    return df[df.method == method].set_index("seed")[metric]


def draws(df, claim: Claim) -> np.ndarray:
    """The claim's per-seed values at one grid point (rows of df): a's metric minus b's on the
    same seed, or minus the level (negated when ``below``); seeds where either is NaN are left
    out (a union rate with no cell in its set)."""
    x = _per_seed(df, claim.a, claim.metric)
    if claim.is_level:
        level = claim.level_at(df.iloc[0] if len(df) else None)
        d = (x - level).dropna().to_numpy()
    else:
        y = _per_seed(df, claim.b or claim.a, claim.b_metric or claim.metric)
        seeds = x.index.intersection(y.index)
        d = (x[seeds] - y[seeds]).dropna().to_numpy()
    return -d if claim.below else d


def testable(df, claim: Claim) -> bool:
    """Whether df holds the claim's methods and metrics (a shipped sweep predates some)."""
    needed = {claim.metric, claim.b_metric} - {None}
    return claim.methods <= set(df.method) and needed <= set(df.columns)


def interval(df, claim: Claim) -> Interval:
    """The claim's 95% interval over the seeds of one grid point (rows of df)."""
    return mean_ci(draws(df, claim))


def _row(claim: Claim, d: np.ndarray) -> dict:
    ci = mean_ci(d)
    status = verdict(d, claim.margin, bound=claim.is_level)
    return {
        "claim": claim.name,
        "mean": ci.mean,
        "lo": ci.lo,
        "hi": ci.hi,
        "seeds": ci.n,
        "verdict": status,
        "margin": claim.margin,
        "holds": status == HOLDS,
    }


def claim_table(df, claims, grid: list[str] | None = None) -> pd.DataFrame:
    """One row per (grid point, claim): mean, lo, hi, seeds, ``verdict`` (:func:`verdict`),
    ``margin`` and ``holds``. ``grid``: the grid columns (default: ``df.attrs["grid"]``, which
    :func:`mvlib.maps.shipped` sets, else the columns that vary in df; a partial sweep may not
    vary yet in every grid column)."""
    import pandas as pd

    grid = list(grid or df.attrs.get("grid") or grid_columns(df))
    rows = []
    groups = df.groupby(grid, sort=False) if grid else [((), df)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for c in claims:
            if testable(part, c) and len(d := draws(part, c)):
                rows.append({**dict(zip(grid, key)), **_row(c, d)})
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


def _value(v) -> str:
    """A grid value as text: numbers short (``8`` for 8.0), names (``eq43``) as they are."""
    return f"{v:g}" if isinstance(v, (int, float, np.number)) else str(v)


def describe(table, grid: list[str], fmt: str = ".3f") -> list[str]:
    """One sentence per claim of a :func:`claim_table`: where it holds (or that it holds nowhere
    in the range tried) and the range of its mean over the grid points."""
    out = []
    for claim, part in table.groupby("claim", sort=False):
        where = holds_where(part, claim, grid)
        points = "; ".join(", ".join(f"{k}={_value(v)}" for k, v in p.items()) for p in where)
        verdict = (
            f"holds at {len(where)} of {len(part)} grid points ({points})"
            if where
            else f"holds nowhere in the {len(part)} grid points tried"
        )
        same = int((part.verdict == EQUIVALENT).sum())  # "contributes nothing", when shown
        verdict += f", equivalent to zero at {same}" if same else ""
        out.append(
            f"{claim}: {verdict}; mean from {part['mean'].min():+{fmt}} to "
            f"{part['mean'].max():+{fmt}}"
        )
    return out


def claims_on(claims, methods) -> list[Claim]:
    """The claims that compare ``methods`` only."""
    return [c for c in claims if c.methods <= set(methods)]


def as_frame(results: Mapping, params: Mapping | None = None) -> pd.DataFrame:
    """``{method: {metric: [one per seed] or one float}}`` as a sweep's rows (method, seed, the
    metrics, and ``params`` as columns), so a run's claims are read as a sweep's are."""
    import pandas as pd

    rows = []
    for m, metrics in results.items():
        per_seed = {c: np.atleast_1d(v) for c, v in metrics.items()}
        n = len(next(iter(per_seed.values())))
        rows += [
            {"method": m, "seed": i, **{c: v[i] for c, v in per_seed.items()}} for i in range(n)
        ]
    frame = pd.DataFrame(rows)
    for name, value in (params or {}).items():
        frame[name] = value
    return frame


def paired_claims(
    results: dict[str, dict[str, list[float]]], claims=CLAIMS, params: Mapping | None = None
) -> list[dict]:
    """Each claim whose methods and metrics are in ``results`` (``{method: {metric: [one per
    seed]}}``): its per-seed values (students of a teacher and of its controls share
    initialisations), 95% interval and :func:`verdict`. ``params``: the run's parameters, for a
    level that depends on them (without them, such a claim is left out)."""
    frame = as_frame(results, params)
    out = []
    for c in claims:
        if callable(c.level) and params is None:
            continue  # a level that depends on the run's parameters needs them
        if testable(frame, c) and len(d := draws(frame, c)):
            row = {"a": c.a, "b": c.b, "metric": c.metric, "level": c.level_at(params)}
            out.append({**_row(c, d), **row})
    return out
