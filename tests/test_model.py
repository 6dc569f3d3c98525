"""The learner of Def. 3.4: smoothed ReLU, closed-form gradients, batching over members, and the
linearised (NTK) model."""

from __future__ import annotations

import pytest
import torch
from _mvhelpers import assert_close, gen, logits_ref, mean_ce_ref, relu_tilde_ref, tiny_data_config

from mvlib import losses
from mvlib.data import sample
from mvlib.model import (
    LearnerConfig,
    Linearised,
    Network,
    init_weights,
    smoothed_relu,
    smoothed_relu_and_grad,
    smoothed_relu_grad,
)
from mvlib.train import gradient_descent

QS = [2, 3, 4, 6]
VARRHOS = [0.3, 1.0, 2.5]


# ----------------------------------------------------------------------------- smoothed ReLU


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("varrho", VARRHOS)
def test_smoothed_relu_matches_definition(q, varrho):
    pts = [
        -3.0,
        -0.5 * varrho,
        0.0,
        0.1 * varrho,
        0.5 * varrho,
        0.9 * varrho,
        varrho,
        1.5 * varrho,
        7.0,
    ]
    z = torch.tensor(pts, dtype=torch.float64)
    expected = [
        0.0
        if t <= 0
        else t**q / (q * varrho ** (q - 1))
        if t <= varrho
        else t - (1 - 1 / q) * varrho
        for t in pts
    ]
    assert_close(
        smoothed_relu(z, q, varrho),
        torch.tensor(expected, dtype=torch.float64),
        rtol=1e-12,
        atol=1e-12,
    )
    expected_grad = [
        0.0 if t <= 0 else (t / varrho) ** (q - 1) if t <= varrho else 1.0 for t in pts
    ]
    assert_close(
        smoothed_relu_grad(z, q, varrho),
        torch.tensor(expected_grad, dtype=torch.float64),
        rtol=1e-12,
        atol=1e-12,
    )


def test_smoothed_relu_q4_known_values():
    # q = 4, varrho = 1: z^4/4 on [0, 1], z - 3/4 above.
    z = torch.tensor([-1.0, 0.5, 1.0, 2.0])
    assert_close(smoothed_relu(z, 4, 1.0), torch.tensor([0.0, 0.015625, 0.25, 1.25]))
    assert_close(smoothed_relu_grad(z, 4, 1.0), torch.tensor([0.0, 0.125, 1.0, 1.0]))


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("varrho", VARRHOS)
def test_smoothed_relu_and_derivative_continuous(q, varrho):
    for h in (1e-6, 1e-9):
        for at, value, slope in ((0.0, 0.0, 0.0), (varrho, varrho / q, 1.0)):
            z = torch.tensor([at - h, at + h], dtype=torch.float64)
            f, fp = smoothed_relu(z, q, varrho), smoothed_relu_grad(z, q, varrho)
            # left and right limits agree with each other and with the value at the joint
            assert abs(float(f[0]) - value) < 10 * h and abs(float(f[1]) - value) < 10 * h
            assert abs(float(fp[0]) - slope) < 10 * q * h / varrho
            assert abs(float(fp[1]) - slope) < 10 * q * h / varrho


@pytest.mark.parametrize("q", QS)
def test_smoothed_relu_grad_matches_autograd(q):
    torch.manual_seed(q)
    varrho = 0.7
    z = (torch.randn(500, dtype=torch.float64) * 2 * varrho).requires_grad_()
    (g_auto,) = torch.autograd.grad(smoothed_relu(z, q, varrho).sum(), z)
    (g_ref,) = torch.autograd.grad(relu_tilde_ref(z, q, varrho).sum(), z)
    g = smoothed_relu_grad(z.detach(), q, varrho)
    assert_close(g, g_auto, rtol=1e-10, atol=1e-12)
    assert_close(g, g_ref, rtol=1e-10, atol=1e-12)
    # float32 too (the library's working precision)
    z32 = z.detach().float()
    assert_close(smoothed_relu_grad(z32, q, varrho), g_ref.float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("q", QS)
def test_smoothed_relu_and_grad_agree_with_separate(q):
    torch.manual_seed(10 + q)
    z = torch.randn(300) * 1.5
    f, fp = smoothed_relu_and_grad(z, q, 0.8)
    assert_close(f, smoothed_relu(z, q, 0.8), rtol=1e-6, atol=1e-7)
    assert_close(fp, smoothed_relu_grad(z, q, 0.8), rtol=1e-6, atol=1e-7)
    assert_close(f, relu_tilde_ref(z, q, 0.8), rtol=1e-5, atol=1e-6)


def test_smoothed_relu_leaves_input_untouched():
    z = torch.linspace(-2, 3, 101)
    before = z.clone()
    smoothed_relu(z, 4, 0.5)
    smoothed_relu_grad(z, 3, 2.0)
    smoothed_relu_and_grad(z, 4, 1.0)
    assert torch.equal(z, before)


# ----------------------------------------------------------------------------- init


def test_init_weights_shape_scale_and_seed():
    cfg = LearnerConfig(m=5, sigma0=0.1)
    W = init_weights(cfg, 3, 4, 16, gen(0))
    assert W.shape == (3, 4, 5, 16)
    assert float(W.std()) == pytest.approx(0.1, rel=0.1)
    assert torch.equal(W, init_weights(cfg, 3, 4, 16, gen(0)))
    assert not torch.equal(W[0], W[1])  # members are independent draws


# ----------------------------------------------------------------------------- network


def _regimes_present(W, X, varrho):
    pre = torch.einsum("kimd,npd->knpim", W, X)
    return bool((pre < 0).any() and ((pre > 0) & (pre < varrho)).any() and (pre > varrho).any())


@pytest.mark.parametrize("chunk", [None, 7, 40, 1000])
def test_logits_match_definition(tiny_sample, learner_cfg, chunk):
    W = init_weights(learner_cfg, 2, 4, 16, gen(3))
    X = tiny_sample.X
    W_before, X_before = W.clone(), X.clone()
    assert _regimes_present(W, X, learner_cfg.varrho)
    F = Network(learner_cfg, chunk=chunk).logits(W, X)
    assert F.shape == (2, 40, 4)
    assert_close(F, logits_ref(W, X, learner_cfg.q, learner_cfg.varrho), rtol=1e-5, atol=1e-5)
    assert torch.equal(W, W_before) and torch.equal(X, X_before)  # inputs not overwritten


def _autograd_mean_loss_grad(W, X, y, q, varrho, loss_of_F):
    W64 = W.detach().double().requires_grad_()
    value = loss_of_F(logits_ref(W64, X.double(), q, varrho))  # (K,)
    (grad,) = torch.autograd.grad(value.sum(), W64)
    return value.detach(), grad


def _close_rel(a, b, rel):
    """max |a - b| <= rel * max |b| (relative to the tensor's scale)."""
    err = float((a.double() - b.double()).abs().max())
    scale = float(b.double().abs().max())
    assert err <= rel * scale, f"max error {err:.3g} vs scale {scale:.3g}"


@pytest.mark.parametrize("chunk", [None, 7, 13])
def test_closed_form_gradient_equals_autograd_cross_entropy(tiny_sample, learner_cfg, chunk):
    W = init_weights(learner_cfg, 3, 4, 16, gen(4))
    X, y = tiny_sample.X, tiny_sample.y
    assert _regimes_present(W, X, learner_cfg.varrho)
    value, grad = Network(learner_cfg, chunk=chunk).loss_and_grad(W, X, losses.cross_entropy(y))
    ref_value, ref_grad = _autograd_mean_loss_grad(
        W, X, y, learner_cfg.q, learner_cfg.varrho, lambda F: mean_ce_ref(F, y)
    )
    assert value.shape == (3,) and grad.shape == W.shape
    assert_close(value.double(), ref_value, rtol=1e-5, atol=1e-6)
    assert float(grad.abs().max()) > 1e-3  # a non-trivial gradient
    _close_rel(grad, ref_grad, 1e-5)


@pytest.mark.parametrize("chunk", [None, 7])
def test_closed_form_gradient_with_per_sample_teacher(tiny_sample, learner_cfg, chunk):
    """The chunk slices reach the loss: a teacher-dependent loss (Hinton KD) still matches
    autograd."""
    W = init_weights(learner_cfg, 2, 4, 16, gen(5))
    X, y = tiny_sample.X, tiny_sample.y
    torch.manual_seed(0)
    G = 3 * torch.randn(1, 40, 4)
    T, w = 2.0, 0.7

    def hinton_mean(F):
        logpF = (F / T).log_softmax(-1)
        pG = (G.double() / T).softmax(-1)
        kl = (pG * (pG.log() - logpF)).sum(-1)
        return mean_ce_ref(F, y) + w * T**2 * kl.mean(-1)

    value, grad = Network(learner_cfg, chunk=chunk).loss_and_grad(
        W, X, losses.distill_hinton(y, G, T, w)
    )
    ref_value, ref_grad = _autograd_mean_loss_grad(
        W, X, y, learner_cfg.q, learner_cfg.varrho, hinton_mean
    )
    assert_close(value.double(), ref_value, rtol=1e-5, atol=1e-6)
    _close_rel(grad, ref_grad, 1e-5)


def test_chunked_equals_unchunked(tiny_sample, learner_cfg):
    W = init_weights(learner_cfg, 2, 4, 16, gen(6))
    X, y = tiny_sample.X, tiny_sample.y
    ce = losses.cross_entropy(y)
    v0, g0 = Network(learner_cfg).loss_and_grad(W, X, ce)
    v1, g1 = Network(learner_cfg, chunk=9).loss_and_grad(W, X, ce)
    assert_close(v1, v0, rtol=1e-5, atol=1e-6)
    _close_rel(g1, g0, 1e-5)


def test_K_batched_members_equal_separate_runs(tiny_sample, learner_cfg):
    """GD on K members at once gives each member the weights of its own single-member run,
    including with one step size per member."""
    X, y = tiny_sample.X, tiny_sample.y
    W0 = init_weights(learner_cfg, 3, 4, 16, gen(7))
    net = Network(learner_cfg)
    ce = losses.cross_entropy(y)
    eta = torch.tensor([0.5, 1.0, 2.0])
    W_batch, hist = gradient_descent(net, W0, X, y, ce, eta, steps=25, record_every=5)
    W_same, _ = gradient_descent(net, W0, X, y, ce, 1.0, steps=25)
    for i in range(3):
        W_i, hist_i = gradient_descent(
            net, W0[i : i + 1], X, y, ce, float(eta[i]), steps=25, record_every=5
        )
        _close_rel(W_batch[i : i + 1], W_i, 1e-5)
        _close_rel(
            W_batch[i : i + 1] - W0[i : i + 1], W_i - W0[i : i + 1], 1e-4
        )  # the movement too
        assert_close(hist.loss[:, i], hist_i.loss[:, 0], rtol=1e-5, atol=1e-6)
        W_s, _ = gradient_descent(net, W0[i : i + 1], X, y, ce, 1.0, steps=25)
        _close_rel(W_same[i : i + 1], W_s, 1e-5)
    assert not torch.allclose(W_batch, W0)  # training moved the weights
    assert torch.equal(W0, init_weights(learner_cfg, 3, 4, 16, gen(7)))  # W0 untouched


# ----------------------------------------------------------------------------- linearised (NTK)


@pytest.fixture
def ntk_setup(tiny_sample, learner_cfg):
    W0 = init_weights(learner_cfg, 2, 4, 16, gen(8))
    lin = Linearised(learner_cfg, W0, tiny_sample.X)
    X_new = sample(tiny_data_config(), 25, tiny_sample.V, gen(9)).X
    return learner_cfg, W0, lin, tiny_sample.X, tiny_sample.y, X_new


def test_linearised_equals_network_at_init(ntk_setup):
    cfg, W0, lin, X, y, X_new = ntk_setup
    net = Network(cfg)
    assert_close(lin.logits(W0, X), net.logits(W0, X), rtol=1e-5, atol=1e-6)
    assert_close(lin.logits(W0, X_new), net.logits(W0, X_new), rtol=1e-5, atol=1e-6)


# torch.func.jvp itself warns about torch.jit.script in this torch version.
@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning")
def test_linearised_is_first_order_taylor_expansion(ntk_setup):
    cfg, W0, lin, X, y, X_new = ntk_setup
    torch.manual_seed(1)
    D = 0.3 * torch.randn_like(W0)
    q, varrho = cfg.q, cfg.varrho
    for Xs in (X, X_new):
        F0, jvp = torch.func.jvp(lambda W, Xs=Xs: logits_ref(W, Xs, q, varrho), (W0,), (D,))
        errs = []
        for eps in (0.04, 0.02, 0.01):
            W = W0 + eps * D
            # the linear model is exactly F(W0) + eps J D ...
            assert_close(lin.logits(W, Xs), F0 + eps * jvp, rtol=1e-5, atol=1e-5)
            # ... and differs from the network by O(eps^2)
            errs.append(float((logits_ref(W, Xs, q, varrho) - lin.logits(W, Xs)).abs().max()))
        assert errs[0] > 1e-4  # the network is not linear here
        assert errs[1] < errs[0] / 3 and errs[2] < errs[1] / 3  # halving eps quarters the error


def test_linearised_train_path_equals_new_input_path(ntk_setup):
    cfg, W0, lin, X, y, X_new = ntk_setup
    torch.manual_seed(2)
    W = W0 + 0.2 * torch.randn_like(W0)
    via_J = lin.logits(W, X)  # X is the training set: stored features
    via_new = lin.logits(W, X.clone())  # a copy takes the new-input path
    assert_close(via_J, via_new, rtol=1e-5, atol=1e-5)
    chunked = Linearised(cfg, W0, X, chunk=6)
    assert_close(chunked.logits(W, X.clone()), via_J, rtol=1e-5, atol=1e-5)
    assert_close(chunked.logits(W, X), via_J, rtol=1e-5, atol=1e-5)


def test_linearised_gradient_equals_autograd(ntk_setup):
    cfg, W0, lin, X, y, X_new = ntk_setup
    torch.manual_seed(3)
    W = (W0 + 0.2 * torch.randn_like(W0)).requires_grad_()
    ref = mean_ce_ref(lin.logits(W, X), y)
    (g_ref,) = torch.autograd.grad(ref.sum(), W)
    value, grad = lin.loss_and_grad(W.detach(), X, losses.cross_entropy(y))
    assert_close(value, ref.detach(), rtol=1e-5, atol=1e-6)
    assert float(g_ref.abs().max()) > 0
    _close_rel(grad, g_ref, 1e-5)


def test_linearised_trains_only_on_its_inputs(ntk_setup):
    cfg, W0, lin, X, y, X_new = ntk_setup
    with pytest.raises(ValueError):
        lin.loss_and_grad(W0, X_new, losses.cross_entropy(y[:25]))


def test_linearised_kernel_scale(ntk_setup):
    """Mean over samples and classes of sum_r ||grad_{w_{i,r}} F_i(X_n)||^2, per member."""
    cfg, W0, lin, X, y, X_new = ntk_setup
    pre = torch.einsum("kimd,npd->knpim", W0, X)
    Dp = smoothed_relu_grad(pre, cfg.q, cfg.varrho)
    J = torch.einsum("knpim,npd->knimd", Dp, X)  # grad of F_i(X_n) wrt w_{i,r}
    expected = J.pow(2).sum((-1, -2)).mean((1, 2))
    assert_close(lin.kernel_scale(), expected, rtol=1e-5, atol=0)
