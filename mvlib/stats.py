"""Intervals over seeds: every claim in the book is a mean with a 95% interval, not a point."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Student t quantiles t_{0.975, df}, df = 1..30 (beyond, see _quantile).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


# One-sided t_{0.95, df}, df = 1..30: the two one-sided tests of equivalence (TOST) at 5% each.
_T95 = (
    6.314,
    2.920,
    2.353,
    2.132,
    2.015,
    1.943,
    1.895,
    1.860,
    1.833,
    1.812,
    1.796,
    1.782,
    1.771,
    1.761,
    1.753,
    1.746,
    1.740,
    1.734,
    1.729,
    1.725,
    1.721,
    1.717,
    1.714,
    1.711,
    1.708,
    1.706,
    1.703,
    1.701,
    1.699,
    1.697,
)


def _quantile(table: tuple[float, ...], normal: float, df: int) -> float:
    if df < 1:
        raise ValueError(f"df must be an integer >= 1, got {df}")
    # beyond the table, the first Cornish-Fisher term: within 0.003 of t for df > 30
    return table[df - 1] if df <= len(table) else normal + (normal**3 + normal) / (4 * df)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (two-sided 95%)."""
    return _quantile(_T975, 1.96, df)


def t95(df: int) -> float:
    """The 95% quantile of Student's t with ``df`` degrees of freedom (one-sided 95%)."""
    return _quantile(_T95, 1.645, df)


@dataclass(frozen=True)
class Interval:
    """Mean of n values with the two-sided 95% t-interval [lo, hi] (lo = hi = mean when n = 1)."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half(self) -> float:
        return self.hi - self.mean

    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        return f"{self.mean:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"


FRACTION = (0.0, 1.0)  # the range of an accuracy or of a fraction of classes


def _half(x: np.ndarray, quantile) -> float:
    """Half-width of the t-interval of x's mean at ``quantile`` (:func:`t975` or :func:`t95`)."""
    return quantile(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)


def mean_ci(values, bounds: tuple[float, float] | None = None) -> Interval:
    """Mean and 95% t-interval of a 1-D sample (seeds, or paired differences). ``bounds``: the
    range the quantity lives in, e.g. (0, 1) for an accuracy; the interval is cut to it (a
    t-interval of a few seeds near 1 would otherwise reach past 1)."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError(f"mean_ci needs finite values, got {x.tolist()}")
    m = float(x.mean())
    if x.size == 1:
        return Interval(m, m, m, 1)
    half = _half(x, t975)
    lo, hi = bounds or (-math.inf, math.inf)
    return Interval(m, max(m - half, lo), min(m + half, hi), int(x.size))


def equivalence_interval(values) -> Interval:
    """Mean and 90% t-interval of a 1-D sample: two one-sided tests at 5% (Schuirmann's TOST)
    both reject "the mean is at least the margin away from 0" exactly when this interval lies
    inside (-margin, margin)."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2 or not np.isfinite(x).all():
        raise ValueError(f"equivalence_interval needs >= 2 finite values, got {x.tolist()}")
    m = float(x.mean())
    half = _half(x, t95)
    return Interval(m, m - half, m + half, int(x.size))


def paired(a, b) -> Interval:
    """Interval of the paired difference a - b (same seeds, same student initialisations)."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired needs equal lengths, got {a.size} and {b.size}")
    return mean_ci(a - b)


def prediction_interval(values) -> Interval:
    """Where one more draw (a new seed) falls with 95% probability, from n >= 2 draws:
    mean +- t_{0.975, n-1} sd sqrt(1 + 1/n). The live run of a chapter is checked against the
    shipped sweep with this, not with the (narrower) interval of the mean."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size < 2 or not np.isfinite(x).all():
        raise ValueError(f"prediction_interval needs >= 2 finite values, got {x.tolist()}")
    m = float(x.mean())
    half = t975(x.size - 1) * float(x.std(ddof=1)) * math.sqrt(1 + 1 / x.size)
    return Interval(m, m - half, m + half, int(x.size))
