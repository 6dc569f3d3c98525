"""Gradient descent (eq. 3.1), the experiment pipeline, divergence and determinism."""

from __future__ import annotations

import math

import pytest
import torch
from _mvhelpers import assert_close, gen, logits_ref, tiny_data_config, tiny_experiment

from mvlib import losses, teachers
from mvlib.experiments import (
    METHODS,
    distillation_loss,
    evaluate,
    make_data,
    progress_total,
    reproduce,
    train_average,
    train_ensemble,
    train_linearised,
    train_students,
)
from mvlib.metrics import MAGNITUDES, accuracy
from mvlib.model import LearnerConfig, Network, init_weights
from mvlib.train import TrainingDiverged, feature_magnitude, gradient_descent


@pytest.fixture(scope="module")
def cfg():
    return tiny_experiment()


@pytest.fixture(scope="module")
def data(cfg):
    return make_data(cfg, 0, "cpu")


@pytest.fixture(scope="module")
def members(cfg, data):
    return train_ensemble(cfg, data, 0)


# ----------------------------------------------------------------------------- gradient descent


def test_gradient_descent_step_is_eq_3_1(data):
    """One step: W1 = W0 - eta * mean gradient (the closed form), W0 itself left untouched."""
    lc = LearnerConfig(m=2, sigma0=0.3)
    net = Network(lc)
    X, y = data.train.X, data.train.y
    W0 = init_weights(lc, 2, 4, 16, gen(0))
    W0_copy = W0.clone()
    ce = losses.cross_entropy(y)
    _, grad = net.loss_and_grad(W0, X, ce)
    W1, _ = gradient_descent(net, W0, X, y, ce, 0.7, steps=1)
    assert_close(W1, W0 - 0.7 * grad, rtol=1e-6, atol=1e-7)
    assert torch.equal(W0, W0_copy)
    W_zero, _ = gradient_descent(net, W0, X, y, ce, 0.7, steps=0)
    assert torch.equal(W_zero, W0)


def test_history_records(data):
    lc = LearnerConfig(m=2, sigma0=0.3)
    net = Network(lc)
    X, y, V = data.train.X, data.train.y, data.V
    W0 = init_weights(lc, 2, 4, 16, gen(1))
    ce = losses.cross_entropy(y)
    W, h = gradient_descent(net, W0, X, y, ce, 2.0, steps=20, V=V, record_every=5)
    assert h.step.tolist() == [0, 5, 10, 15, 20]
    assert h.loss.shape == (5, 2) and h.train_acc.shape == (5, 2) and h.Phi.shape == (5, 2, 4, 2)
    assert_close(h.loss[-1], net.loss_and_grad(W, X, ce)[0])
    assert_close(h.loss[0], net.loss_and_grad(W0, X, ce)[0])
    assert_close(h.train_acc[-1], accuracy(net.logits(W, X), y))
    assert_close(h.Phi[-1], feature_magnitude(W, V))
    assert (h.loss[-1] < h.loss[0]).all()  # GD decreases the loss
    _, h0 = gradient_descent(net, W0, X, y, ce, 2.0, steps=3)
    assert len(h0.step) == 0 and h0.loss.numel() == 0


def test_history_weight_norm_and_probes(data):
    """weight_norm is max_{i,r} ||w_{i,r}||; probe_acc is each member's accuracy on a probe set."""
    lc = LearnerConfig(m=2, sigma0=0.3)
    net = Network(lc)
    X, y = data.train.X, data.train.y
    W0 = init_weights(lc, 2, 4, 16, gen(1))
    W0[1, 2, 1] = 5.0  # one neuron of member 1 stands out
    ce = losses.cross_entropy(y)
    probes = {
        "multi": (data.test_multi.X, data.test_multi.y),
        "single": (data.test_single.X, data.test_single.y),
    }
    W, h = gradient_descent(net, W0, X, y, ce, 2.0, steps=10, record_every=5, probes=probes)
    assert h.weight_norm.shape == (3, 2) and set(h.probe_acc) == {"multi", "single"}
    assert float(h.weight_norm[0, 1]) == pytest.approx(5.0 * 4)
    assert float(h.weight_norm[0, 0]) == pytest.approx(float(W0[0].norm(dim=-1).max()))
    assert_close(h.weight_norm[-1], W.norm(dim=-1).flatten(1).amax(1))
    for name, (Xp, yp) in probes.items():
        assert h.probe_acc[name].shape == (3, 2)
        assert_close(h.probe_acc[name][0], accuracy(net.logits(W0, Xp), yp))
        assert_close(h.probe_acc[name][-1], accuracy(net.logits(W, Xp), yp))
    # select keeps every field, sliced by member
    one = h.select(slice(1, 2))
    assert torch.equal(one.step, h.step) and torch.equal(one.weight_norm, h.weight_norm[:, 1:2])
    assert torch.equal(one.probe_acc["single"], h.probe_acc["single"][:, 1:2])
    assert one.Phi.numel() == 0


def test_feature_magnitude_hand_example():
    """Phi_{i,l} = sum_r [<w_{i,r}, v_{i,l}>]^+."""
    V = torch.eye(4).view(2, 2, 4)  # k = 2, d = 4: v_{i,l} = e_{2i+l}
    W = torch.tensor(
        [
            [
                [[1.0, -2.0, 0.0, 5.0], [0.5, 3.0, 9.0, 9.0]],  # class 0, r = 1, 2
                [[0.0, 0.0, -1.0, 2.0], [7.0, 7.0, 4.0, -3.0]],
            ]
        ]
    )  # class 1, r = 1, 2
    Phi = feature_magnitude(W, V)
    assert_close(Phi, torch.tensor([[[1.5, 3.0], [4.0, 2.0]]]))


def test_invalid_step_size(data):
    net = Network(LearnerConfig())
    W0 = init_weights(LearnerConfig(), 1, 4, 16, gen(0))
    ce = losses.cross_entropy(data.train.y)
    for eta in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="eta"):
            gradient_descent(net, W0, data.train.X, data.train.y, ce, eta, steps=1)
    with pytest.raises(ValueError, match="steps"):
        gradient_descent(net, W0, data.train.X, data.train.y, ce, 1.0, steps=-1)


# ----------------------------------------------------------------------------- experiments


def test_train_ensemble_fits_training_set(cfg, data, members):
    assert members.W.shape == (cfg.K, cfg.data.k, cfg.learner.m, cfg.data.d)
    res = evaluate(members, data, cfg.data.mu)
    assert torch.equal(res["train"], torch.ones(cfg.K))
    # the recorded history ends at 100% too, and its loss fell
    assert torch.equal(members.history.train_acc[-1], torch.ones(cfg.K))
    assert (members.history.loss[-1] < members.history.loss[0]).all()
    # better than chance on fresh test data
    assert (res["multi_view"] > 0.5).all()


def test_evaluate_ensemble_is_mean_of_logits(cfg, data, members):
    res = evaluate(members, data, cfg.data.mu, ensemble=True)
    G = members.logits(data.test_single.X).mean(0)
    assert res["single_view"].shape == (1,)
    assert float(res["single_view"]) == pytest.approx(
        float((G.argmax(-1) == data.test_single.y).float().mean())
    )
    assert float(res["overall"]) == pytest.approx(
        (1 - cfg.data.mu) * float(res["multi_view"]) + cfg.data.mu * float(res["single_view"])
    )


def test_training_diverged_names_step_size(data):
    """Coefficients of 1e18 and eta = 1e6: the first step overflows float32 and the loss is NaN."""
    cfg = tiny_experiment(
        data=tiny_data_config(view_low=1e18, view_high=2e18),
        learner=LearnerConfig(m=2),
        N=30,
        n_test=5,
        K=2,
        eta=1e6,
        steps=10,
        record_every=0,
    )
    big = make_data(cfg, 0, "cpu")
    with pytest.raises(TrainingDiverged, match=r"eta = 1000000\.0"):
        train_ensemble(cfg, big, 0)
    # TrainingDiverged is a FloatingPointError, and per-member step sizes are named too
    W0 = init_weights(cfg.learner, 2, 4, 16, gen(0))
    with pytest.raises(FloatingPointError, match=r"eta = \[1000000\.0, 2000000\.0\]"):
        gradient_descent(
            Network(cfg.learner),
            W0,
            big.train.X,
            big.train.y,
            losses.cross_entropy(big.train.y),
            torch.tensor([1e6, 2e6]),
            steps=5,
        )


def test_make_data_deterministic_and_split(cfg):
    a, b, c = make_data(cfg, 5, "cpu"), make_data(cfg, 5, "cpu"), make_data(cfg, 6, "cpu")
    for part in ("train", "test_multi", "test_single"):
        for name in ("X", "y", "single", "strong", "Z", "V"):
            assert torch.equal(getattr(getattr(a, part), name), getattr(getattr(b, part), name)), (
                part,
                name,
            )
        assert not torch.equal(getattr(a, part).X, getattr(c, part).X)
    assert len(a.train) == cfg.N and len(a.test_multi) == len(a.test_single) == cfg.n_test
    assert not a.test_multi.single.any() and a.test_single.single.all()
    assert torch.equal(a.V, a.test_multi.V) and torch.equal(a.V, a.test_single.V)


def test_train_ensemble_deterministic(data):
    cfg = tiny_experiment(steps=15, K=2, record_every=0)
    torch.manual_seed(0)
    a = train_ensemble(cfg, data, 3)
    torch.manual_seed(123)  # the global RNG plays no part
    b = train_ensemble(cfg, data, 3)
    c = train_ensemble(cfg, data, 4)
    assert torch.equal(a.W0, b.W0) and torch.equal(a.W, b.W)
    assert not torch.equal(a.W0, c.W0)
    assert not torch.equal(a.W0[0], a.W0[1])  # members start apart


def test_students_share_initialisation_across_teachers(cfg, data, members):
    X, y = data.train.X, data.train.y
    scfg = tiny_experiment(steps=10, record_every=0)
    G = members.logits(X).mean(0)
    targets = {"distill": G, "distill_control": teachers.flat(G, y)}
    out = train_students(scfg, data, targets, seed=1)
    assert set(out) == set(targets)
    s, c = out["distill"], out["distill_control"]
    assert s.W0.shape[0] == scfg.students
    assert torch.equal(s.W0, c.W0)  # paired students
    assert not torch.equal(s.W, c.W)  # different teachers, different paths
    # two identical teachers give identical students
    same = train_students(scfg, data, {"a": G, "b": G}, seed=1)
    assert_close(same["a"].W, same["b"].W)
    assert_close(same["a"].W, s.W)


def test_train_average_steps_the_mean_model(data):
    """K members trained as one averaged model with step K * eta: a member's update is
    eta * grad of CE at the mean model."""
    cfg = tiny_experiment(steps=1, K=3, record_every=0)
    t = train_average(cfg, data, seed=2)
    W0 = t.W0.clone().requires_grad_()
    Fbar = logits_ref(W0, data.train.X, cfg.learner.q, cfg.learner.varrho).mean(0)
    ce = -Fbar.log_softmax(-1)[torch.arange(cfg.N), data.train.y].mean()
    (g,) = torch.autograd.grad(ce, W0)
    assert_close(t.W, t.W0 - cfg.K * cfg.eta * g, rtol=1e-4, atol=1e-6)


def test_train_linearised_starts_at_network_and_learns(cfg, data, members):
    t = train_linearised(cfg, data, members.W0)
    assert torch.equal(t.W0, members.W0)
    assert (t.history.loss[-1] < t.history.loss[0]).all()
    F0 = Network(cfg.learner).logits(members.W0, data.test_multi.X)
    assert_close(t.model.logits(members.W0, data.test_multi.X), F0, rtol=1e-5, atol=1e-5)


def test_reproduce_runs_every_method_and_counts_progress(monkeypatch):
    monkeypatch.setenv("MVLIB_CACHE", "off")  # progress counts steps actually run
    cfg = tiny_experiment(N=40, n_test=30, K=2, steps=4, ntk_steps=3, students=1, record_every=2)
    calls = []
    res = reproduce(cfg, seed=0, device="cpu", progress=calls.append)
    assert list(res) == list(METHODS)
    for method, r in res.items():
        assert {"train", "multi_view", "single_view", "overall"} <= set(r), method
        fractions = [v for c, v in r.items() if c not in MAGNITUDES and not math.isnan(v)]
        assert all(0.0 <= v <= 1.0 for v in fractions), method
        assert r["overall"] == pytest.approx(
            (1 - cfg.data.mu) * r["multi_view"] + cfg.data.mu * r["single_view"]
        )
    assert sum(calls) == progress_total(cfg) > 0


@pytest.mark.parametrize("kd", ["hinton", "eq43"])
def test_distillation_loss_picks_the_configured_form(kd):
    cfg = tiny_experiment(kd=kd, T=3.0, kd_weight=0.5, tau=0.4, eta_ratio=4.0)
    torch.manual_seed(4)
    F, G, y = 2 * torch.randn(1, 5, 4), 2 * torch.randn(1, 5, 4), torch.tensor([0, 1, 2, 3, 0])
    ref = (
        losses.distill_hinton(y, G, 3.0, 0.5)
        if kd == "hinton"
        else losses.distill_eq43(y, G, 0.4, 4.0)
    )
    other = (
        losses.distill_eq43(y, G, 0.4, 4.0)
        if kd == "hinton"
        else losses.distill_hinton(y, G, 3.0, 0.5)
    )
    v, g = distillation_loss(cfg, y, G)(F, slice(0, 5))
    v_ref, g_ref = ref(F, slice(0, 5))
    assert_close(v, v_ref)
    assert_close(g, g_ref)
    assert not torch.allclose(g, other(F, slice(0, 5))[1])
    # an explicit form overrides the config's
    flip = "eq43" if kd == "hinton" else "hinton"
    assert_close(distillation_loss(cfg, y, G, flip)(F, slice(0, 5))[1], other(F, slice(0, 5))[1])


def test_linearised_students_of_several_teachers_evaluate_separately(cfg, data, members):
    """select() slices the linearised model too: each teacher's students evaluate on their own
    features, equal to a run with that teacher alone."""
    scfg = tiny_experiment(ntk_steps=5, record_every=0)
    G = members.logits(data.train.X).mean(0)
    flat = teachers.flat(G, data.train.y)
    both = train_students(scfg, data, {"a": G, "b": flat}, seed=1, linearised=True)
    alone = train_students(scfg, data, {"b": flat}, seed=1, linearised=True)
    for key, acc in evaluate(both["b"], data, cfg.data.mu).items():
        assert_close(acc, evaluate(alone["b"], data, cfg.data.mu)[key])
    assert_close(
        both["b"].logits(data.test_single.X),
        alone["b"].logits(data.test_single.X),
        rtol=1e-4,
        atol=1e-5,
    )
