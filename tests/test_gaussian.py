"""Gaussian inputs with teacher labels (Section 2.2, Figure 7): config, data, training, metrics."""

from __future__ import annotations

import math

import pytest
import torch
from _mvhelpers import logits_ref

from mvlib import gaussian
from mvlib.gaussian import (
    SAMPLES_PER_PARAMETER,
    GaussianConfig,
    ensemble_metrics,
    error_removed,
    for_preset,
    gaussian_run,
    logits,
    make_data,
    mean_cross_entropy,
    mixture,
    output_variance,
    train_members,
)
from mvlib.metrics import accuracy
from mvlib.model import LearnerConfig
from mvlib.presets import get_preset


def tiny(**kw) -> GaussianConfig:
    """Every member fits its 40 training samples in 300 steps (checked on seeds 1-3)."""
    base = dict(
        k=3,
        d=8,
        P=2,
        sigma_x=0.8,
        N=40,
        n_test=100,
        K=3,
        eta=2.0,
        steps=300,
        learner=LearnerConfig(m=4, q=4, varrho=1.0, sigma0=0.3),
    )
    base.update(kw)
    return GaussianConfig(**base)


@pytest.mark.parametrize(
    "name, value",
    [
        ("k", 1),
        ("d", 0),
        ("P", 0),
        ("sigma_x", 0.0),
        ("m_star", 0),
        ("scale_star", -1.0),
        ("N", 0),
        ("n_test", 0),
        ("K", 1),
        ("eta", 0.0),
        ("steps", -1),
        ("chunk", -1),
        ("d", 2.5),
    ],
)
def test_config_names_bad_parameter(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        tiny(**{name: value})


def test_shapes_and_teacher_scale():
    cfg = tiny(m_star=2)
    task = make_data(cfg, 0)
    assert task.W_star.shape == (1, 3, 2, 8)
    assert task.train.X.shape == (40, 2, 8) and task.train.y.shape == (40,)
    assert task.test.X.shape == (100, 2, 8) and len(task.test) == 100
    # every teacher neuron has norm scale_star * varrho / sigma_x (pre-activations ~ N(0, 1))
    assert torch.allclose(task.W_star.norm(dim=-1), torch.full((1, 3, 2), 1 / 0.8))
    assert task.train.y.dtype == torch.long and int(task.train.y.max()) < 3


def test_labels_are_the_teachers_argmax_and_every_class_is_present():
    cfg = tiny(k=10, d=10, N=2000, m_star=1)
    task = make_data(cfg, 0)
    counts = torch.bincount(task.train.y, minlength=10)
    assert (counts > 0).all()
    # balanced enough: no class holds more than twice its share
    assert counts.max() < 2 * 2000 / 10
    F_star = logits_ref(task.W_star, task.train.X, cfg.learner.q, cfg.learner.varrho)
    assert torch.equal(F_star[0].argmax(-1), task.train.y)


def test_same_seed_same_data_and_numbers():
    cfg = tiny()
    a, b = make_data(cfg, 3), make_data(cfg, 3)
    assert torch.equal(a.train.X, b.train.X) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.X, make_data(cfg, 4).train.X)
    Wa, Wb = train_members(cfg, a, 3), train_members(cfg, b, 3)
    assert torch.equal(Wa, Wb)
    assert ensemble_metrics(logits(cfg, Wa, a.test.X), a.test.y) == ensemble_metrics(
        logits(cfg, Wb, b.test.X), b.test.y
    )


@pytest.mark.parametrize("seed", [2, 3])
def test_members_fit_the_training_set(seed):
    cfg = tiny()
    task = make_data(cfg, seed)
    W = train_members(cfg, task, seed)
    assert W.shape == (3, 3, 4, 8)
    assert (accuracy(logits(cfg, W, task.train.X), task.train.y) == 1.0).all()
    # the members differ: independent initialisations
    assert not torch.allclose(W[0], W[1])


def test_ensemble_metrics_by_hand():
    # two members, two samples, two classes; logits chosen so every number is known
    F = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 2.0], [0.0, 3.0]]])
    y = torch.tensor([0, 1])
    m = ensemble_metrics(F, y)
    assert m["member_acc"] == pytest.approx(0.75) and m["ensemble_acc"] == pytest.approx(0.5)
    assert m["acc_gain"] == pytest.approx(-0.25)  # the mean (1, 1) on sample 0 is a tie
    ce = lambda z, c: math.log(math.exp(z[0]) + math.exp(z[1])) - z[c]  # noqa: E731
    members = [(ce([2, 0], 0) + ce([0, 1], 1)) / 2, (ce([0, 2], 0) + ce([0, 3], 1)) / 2]
    assert m["member_loss"] == pytest.approx(sum(members) / 2)
    assert m["ensemble_loss"] == pytest.approx((ce([1, 1], 0) + ce([0, 2], 1)) / 2)
    # Var over two members is (a - b)^2 / 4 per class: sample 0 (4 + 4) / 4, sample 1 (0 + 4) / 4
    assert m["logit_var"] == pytest.approx((2.0 + 1.0) / 2)
    assert m["flip"] == pytest.approx(0.25)  # member 1 on sample 0 (the tie reads 0)
    assert error_removed(m) == pytest.approx(-0.25 / 0.25)


def test_ensemble_loss_never_exceeds_members_mean():
    """Cross-entropy is convex in the logits (Jensen), so the output average's loss is at most
    the members' mean, for any logits; equality when the members agree."""
    g = torch.Generator().manual_seed(0)
    F, y = 3 * torch.randn(5, 200, 4, generator=g), torch.randint(4, (200,), generator=g)
    m = ensemble_metrics(F, y)
    assert m["ensemble_loss"] < m["member_loss"] and m["logit_var"] > 0
    same = ensemble_metrics(F[:1].expand(5, -1, -1), y)
    assert same["loss_drop"] == pytest.approx(0.0, abs=1e-6) and same["logit_var"] == 0.0
    assert same["acc_gain"] == 0.0 and same["flip"] == 0.0
    assert torch.allclose(
        mean_cross_entropy(F, y),
        torch.nn.functional.cross_entropy(
            F.transpose(1, 2), y.expand(5, -1), reduction="none"
        ).mean(-1),
    )


def test_output_variance_of_the_softmax_is_bounded():
    F = torch.tensor([[[50.0, 0.0]], [[0.0, 50.0]]])  # two members, opposite certainties
    logit_var, softmax_var = output_variance(F)
    assert logit_var == pytest.approx(2 * 625.0) and softmax_var == pytest.approx(0.5)


def test_mixture_is_linear_in_mu():
    a, b = {"member_acc": 1.0, "flip": 0.0}, {"member_acc": 0.5, "flip": 0.4}
    assert mixture(a, b, 0.1) == pytest.approx({"member_acc": 0.95, "flip": 0.04})


@pytest.mark.parametrize("name", ["ci", "book", "paper"])
def test_for_preset_follows_the_multiview_preset(name):
    cfg = get_preset(name)
    g = for_preset(cfg)
    assert (g.k, g.K, g.eta, g.steps, g.learner) == (
        cfg.data.k,
        cfg.K,
        cfg.eta,
        cfg.steps,
        cfg.learner,
    )
    assert g.N == SAMPLES_PER_PARAMETER * g.k * g.learner.m * g.d >= 5 * g.k * g.learner.m * g.d
    assert g.sigma_x * math.sqrt(g.d) == pytest.approx(2.2)
    assert for_preset(get_preset("paper")).N > for_preset(get_preset("ci")).N


def test_gaussian_run_trains_once_per_config_and_seed(tmp_path, monkeypatch):
    """gaussian_run reads its members from the cache: the numbers trained without the cache,
    and no training on a second call; another seed or config is trained."""
    cfg = tiny(steps=50)
    monkeypatch.setenv("MVLIB_CACHE", "off")
    uncached = gaussian_run(cfg, 2)
    monkeypatch.setenv("MVLIB_CACHE", str(tmp_path))
    assert gaussian_run(cfg, 2) == uncached

    def untrainable(*args):
        raise RuntimeError("trained again")

    monkeypatch.setattr(gaussian, "train_members", untrainable)
    assert gaussian_run(cfg, 2) == uncached
    for other_seed, other_cfg in ((3, cfg), (2, tiny(steps=51))):
        with pytest.raises(RuntimeError, match="trained again"):
            gaussian_run(other_cfg, other_seed)
