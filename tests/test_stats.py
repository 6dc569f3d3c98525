"""mvlib.stats: the one-sided quantiles and the equivalence interval (TOST)."""

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
    for df in (31, 60, 500):  # past the table: not the normal quantile, t itself
        assert stats.t95(df) == pytest.approx(t.ppf(0.95, df), abs=3e-3)
        assert stats.t975(df) == pytest.approx(t.ppf(0.975, df), abs=3e-3)
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
