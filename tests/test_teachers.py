"""Distillation targets (mvlib.teachers) and intervals (mvlib.stats)."""

from __future__ import annotations

import math

import pytest
import torch
from _mvhelpers import assert_close, gen

from mvlib import losses, stats, teachers


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


# ----- the instrument: controls matched in the probability each loss reads, derangements

LINKS = {
    "hinton T=8": losses.hinton_link(8.0),
    "eq. 4.2, tau=0.19, x3": losses.eq42_link(0.19, 3.0),  # truncates most true-class logits
    "eq. 4.2, tau=0.09": losses.eq42_link(0.09),
}


@pytest.fixture
def teacher():
    """Ensemble-like logits: a large true-class logit (10-16) over spread off-class ones."""
    g = gen(3)
    y = torch.randint(10, (400,), generator=g)
    G = torch.randn(400, 10, generator=g) * 1.5
    G[torch.arange(400), y] = 10 + 6 * torch.rand(400, generator=g)
    return G, y


def _p_true(link, G, y):
    return torch.softmax(link(G), -1).gather(-1, y[..., None]).squeeze(-1)


@pytest.mark.parametrize("form", LINKS)
def test_flat_matches_each_samples_true_class_probability(teacher, form):
    G, y = teacher
    link = LINKS[form]
    H = teachers.flat(G, y, link)
    assert (_p_true(link, H, y) - _p_true(link, G, y)).abs().max() < 1e-4
    assert _off(link(H), y).std(-1).max() < 1e-4  # no off-class spread left
    # the logit-matched flat teacher is more confident than the real one (Jensen)
    assert (_p_true(link, teachers.flat(G, y), y) > _p_true(link, G, y) + 1e-4).float().mean() > 0.5


@pytest.mark.parametrize("form", LINKS)
def test_onehot_matches_the_mean_true_class_probability(teacher, form):
    G, y = teacher
    link = LINKS[form]
    p = _p_true(link, teachers.onehot(G, y, link), y)
    assert (p - _p_true(link, G, y).mean()).abs().max() < 1e-4  # every sample at the mean
    assert (link(teachers.onehot(G, y, link)) <= link.top + 1e-6).all()


def test_onehot_of_a_certain_teacher_is_finite():
    # Hinton at T = 1 with a margin of 40: the mean true-class probability rounds to 1
    G = torch.zeros(5, 4)
    y = torch.arange(5) % 4
    G[torch.arange(5), y] = 40.0
    assert torch.isfinite(teachers.onehot(G, y, losses.hinton_link(1.0))).all()


def test_derangements_have_no_fixed_point_and_differ_by_row():
    perm = teachers.derangements(2000, 9, gen(4))
    assert (perm != torch.arange(9)).all()
    assert torch.equal(perm.sort(-1).values, torch.arange(9).expand(2000, 9))
    assert len({tuple(r) for r in perm.tolist()}) > 1900  # 9! / e = 133,496 derangements
    assert torch.equal(perm, teachers.derangements(2000, 9, gen(4)))
    with pytest.raises(ValueError, match="fixed point"):
        teachers.derangements(3, 1, gen(4))


def test_deranged_permuted_moves_every_off_class_value_of_every_sample(teacher):
    G, y = teacher
    H = teachers.permuted(G, y, gen(5), derange=True)
    own = torch.nn.functional.one_hot(y, 10).bool()
    assert torch.equal(H[own], G[own])
    assert torch.equal(_off(H, y).sort(-1).values, _off(G, y).sort(-1).values)
    assert (_off(H, y) != _off(G, y)).all()  # no off-class value in place, in any sample
    # the samples' permutations are independent: positions' sources differ across samples
    src = (_off(H, y)[..., None] == _off(G, y)[..., None, :]).float().argmax(-1)
    assert len({tuple(r) for r in src.tolist()}) > 300
    # matched in probability, a permutation changes nothing the loss sees of the true class
    for link in LINKS.values():
        assert (_p_true(link, H, y) - _p_true(link, G, y)).abs().max() < 1e-5


def test_targets_with_a_link_build_the_matched_controls(teacher):
    G, y = teacher
    link = LINKS["hinton T=8"]
    t = teachers.targets(G, y, gen(6), link=link)
    assert torch.equal(t["_control"], teachers.flat(G, y, link))
    assert torch.equal(t["_permuted"], teachers.permuted(G, y, gen(6), derange=True))


@pytest.mark.parametrize("form", ["hinton", "eq43", "eq43_capped"])
def test_units_controls_match_what_the_configured_loss_reads(teacher, form):
    """The controls a unit trains on (controls = probability), read back through the loss itself:
    from uniform student logits, the distillation term's push is a known function of the
    teacher's probabilities, so the loss's own true-class probability of each target is
    recovered and compared with the real teacher's."""
    from _mvhelpers import tiny_experiment

    from mvlib.trainers import distillation_loss
    from mvlib.units import DISTILL, _controls

    G, y = teacher
    cfg = tiny_experiment(
        controls="probability", T=3.0, tau=0.19, teacher_scale=3.0, eta_ratio=2.0, kd_weight=1.0
    )
    targets = dict(
        zip(("real", "flat", "onehot", "permuted"), _controls(cfg, DISTILL, G, y, 0, form).values())
    )
    F = torch.zeros(1, *G.shape)  # softmax and logit^tau of F: 1/k everywhere

    def p_true(T):
        on, off = (distillation_loss(cfg, y, T[None], form, w)(F, slice(None))[1] for w in (1, 0))
        scale = cfg.kd_weight * cfg.T if form == "hinton" else cfg.eta_ratio
        p = 1 / G.shape[-1] - (on - off)[0] / scale  # exact where the teacher exceeds 1/k
        return p.gather(-1, y[:, None]).squeeze(-1)

    real = p_true(targets["real"])
    assert (real > 1 / G.shape[-1]).all()  # the true class is read, not clipped
    assert (p_true(targets["flat"]) - real).abs().max() < 1e-4
    assert (p_true(targets["permuted"]) - real).abs().max() < 1e-4
    assert (p_true(targets["onehot"]) - real.mean()).abs().max() < 1e-4
    assert (_off(targets["permuted"], y) != _off(G, y)).all()  # no fixed point in any sample
