"""Distillation targets (mvlib.teachers) and intervals (mvlib.stats)."""

from __future__ import annotations

import math

import pytest
import torch
from _mvhelpers import assert_close, gen

from mvlib import stats, teachers


@pytest.fixture
def G():
    return torch.randn(3, 50, 6, generator=gen(0)) * 3


@pytest.fixture
def y():
    return torch.randint(6, (50,), generator=gen(1))


def _off(G, y):
    own = torch.nn.functional.one_hot(y, G.shape[-1]).bool().expand_as(G)
    return G[~own].view(*G.shape[:-1], -1)


def test_flat_keeps_true_logit_and_mean_margin(G, y):
    H = teachers.flat(G, y)
    own = torch.nn.functional.one_hot(y, 6).bool().expand_as(G)
    assert torch.equal(H[own], G[own])
    assert_close(teachers.margin(H, y), teachers.margin(G, y))
    assert _off(H, y).std(-1).max() < 1e-5  # no off-class spread


def test_flat_hand_example():
    H = teachers.flat(torch.tensor([[5.0, 1.0, 2.0, 6.0]]), torch.tensor([0]))
    assert torch.equal(H, torch.tensor([[5.0, 3.0, 3.0, 3.0]]))


def test_onehot_is_the_same_for_every_sample_at_the_mean_margin(G, y):
    H = teachers.onehot(G, y)
    m = teachers.margin(H, y)
    assert_close(m, teachers.margin(G, y).mean(-1, keepdim=True).expand_as(m))
    assert_close(
        teachers.off_mean(H, y),
        teachers.off_mean(G, y).mean(-2, keepdim=True).expand_as(m[..., None]),
    )
    assert _off(H, y).std(-1).max() < 1e-5


def test_permuted_permutes_off_classes_within_each_sample(G, y):
    H = teachers.permuted(G, y, gen(2))
    own = torch.nn.functional.one_hot(y, 6).bool().expand_as(G)
    assert torch.equal(H[own], G[own])
    assert torch.equal(_off(H, y).sort(-1).values, _off(G, y).sort(-1).values)
    assert not torch.equal(H, G)  # something moved
    assert torch.equal(H, teachers.permuted(G, y, gen(2)))  # seeded
    # every off-class position is a destination about equally often: the permutation is random
    moved = (H != G) & ~own
    assert moved.float().mean() > 0.5


def test_targets_by_suffix(G, y):
    t = teachers.targets(G, y, gen(0))
    assert set(t) == set(teachers.SUFFIXES)
    assert t[""] is G
    with pytest.raises(ValueError, match="unknown target suffixes"):
        teachers.targets(G, y, gen(0), which=("_bogus",))


def test_mean_ci_matches_t_interval():
    x = [0.1, 0.3, 0.2, 0.4]
    ci = stats.mean_ci(x)
    sd = math.sqrt(sum((v - 0.25) ** 2 for v in x) / 3)
    assert ci.mean == pytest.approx(0.25)
    assert ci.half == pytest.approx(3.182 * sd / 2)
    assert ci.n == 4 and ci.lo < ci.mean < ci.hi
    assert not ci.excludes_zero() if ci.lo < 0 else ci.excludes_zero()


def test_mean_ci_cut_to_bounds():
    x = [1.0, 1.0, 0.9]
    free, cut = stats.mean_ci(x), stats.mean_ci(x, stats.FRACTION)
    assert free.hi > 1 and cut.hi == 1 and (cut.mean, cut.lo, cut.n) == (free.mean, free.lo, 3)
    assert stats.mean_ci([0.0, 0.1, 0.0], stats.FRACTION).lo == 0


def test_paired_and_one_value():
    ci = stats.paired([0.9, 0.8, 0.85], [0.7, 0.65, 0.6])
    assert ci.excludes_zero() and ci.mean == pytest.approx(0.2)
    one = stats.mean_ci([0.5])
    assert (one.lo, one.hi) == (0.5, 0.5)
    with pytest.raises(ValueError, match="equal lengths"):
        stats.paired([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        stats.mean_ci([float("nan")])
    assert f"{ci:.2f}".startswith("0.20 [")
