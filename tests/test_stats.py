"""mvlib.stats: the equivalence interval (TOST) and a claim's verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mvlib import stats


def test_t_quantiles_match_scipy_where_installed():
    t = pytest.importorskip("scipy.stats").t
    for df in (1, 2, 4, 9, 30):
        assert stats.t95(df) == pytest.approx(t.ppf(0.95, df), abs=1e-3)
        assert stats.t975(df) == pytest.approx(t.ppf(0.975, df), abs=1e-3)
    assert stats.t95(500) == 1.645
    with pytest.raises(ValueError, match="df must be"):
        stats.t95(0)


def test_equivalence_interval_is_the_90_percent_t_interval():
    x = [0.01, -0.02, 0.0, 0.015, -0.005]
    eq = stats.equivalence_interval(x)
    sd = float(np.std(x, ddof=1))
    assert eq.half == pytest.approx(2.132 * sd / math.sqrt(5))
    assert eq.half < stats.mean_ci(x).half  # narrower than the 95% interval
    with pytest.raises(ValueError, match=">= 2 finite"):
        stats.equivalence_interval([0.1])


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.10, 0.12, 0.11, 0.13], stats.HOLDS),
        ([-0.10, -0.12, -0.11, -0.13], stats.FAILS),
        # tiny and tight around 0: equivalent within the 0.02 margin
        ([0.002, -0.003, 0.001, 0.0, -0.001], stats.EQUIVALENT),
        # significantly below 0, yet inside the margin: equivalence is the informative reading
        ([-0.004, -0.005, -0.006, -0.005], stats.EQUIVALENT),
        # wide around 0: an interval that holds 0 is not "nothing"
        ([0.08, -0.07, 0.05, -0.06], stats.UNRESOLVED),
        ([0.5], stats.UNRESOLVED),  # one seed decides nothing
    ],
)
def test_verdicts(values, expected):
    assert stats.verdict(values) == expected


def test_verdict_margin_is_stated_and_checked():
    x = [0.01, 0.012, 0.008, 0.011, -0.03]
    assert stats.verdict(x, margin=0.1) == stats.EQUIVALENT
    assert stats.verdict(x, margin=0.005) == stats.UNRESOLVED
    with pytest.raises(ValueError, match="margin"):
        stats.verdict(x, margin=0)
