"""Training objectives of mvlib.losses against hand computations (eq. 4.2, 4.3, Hinton et al.)."""

from __future__ import annotations

import math

import pytest
import torch
from _mvhelpers import assert_close

from mvlib import losses

# A tiny case: k = 3 classes, two samples, one student member. Sample 1 has a logit (8) whose
# tau^2-scaled value (2) exceeds 1, so eq. (4.2)'s truncation is active there.
F_ROWS = [[2.0, -1.0, 0.5], [8.0, 0.0, 1.0]]
G_ROWS = [[1.0, 3.0, -2.0], [0.5, 0.5, 6.0]]
Y = [0, 2]


def _softmax(row):
    mx = max(row)
    e = [math.exp(v - mx) for v in row]
    return [v / sum(e) for v in e]


def _trunc_softmax(row, tau):
    return _softmax([min(tau**2 * v, 1.0) / tau for v in row])


def _tensors():
    return torch.tensor([F_ROWS]), torch.tensor([G_ROWS]), torch.tensor(Y)


def test_cross_entropy_value_and_gradient():
    F, _, y = _tensors()
    value, g = losses.cross_entropy(y)(F, slice(0, 2))
    exp_value = sum(-math.log(_softmax(r)[c]) for r, c in zip(F_ROWS, Y))
    assert value.shape == (1,)
    assert float(value[0]) == pytest.approx(exp_value, rel=1e-6)
    exp_g = [[p - (i == c) for i, p in enumerate(_softmax(r))] for r, c in zip(F_ROWS, Y)]
    assert_close(g, torch.tensor([exp_g]), rtol=1e-6, atol=1e-7)


def test_truncated_logit_eq_4_2():
    F, _, _ = _tensors()
    tau = 0.5
    got = losses.truncated_logit(F, tau)
    exp = torch.tensor([[_trunc_softmax(r, tau) for r in F_ROWS]])
    assert_close(got, exp, rtol=1e-6, atol=1e-7)
    # the truncation matters on sample 1: without it the scaled logits would be 4, 0, 0.5
    untrunc = _softmax([tau * v for v in F_ROWS[1]])
    assert abs(untrunc[0] - float(got[0, 1, 0])) > 0.1


@pytest.mark.parametrize("eta_ratio", [0.0, 2.0, 10.0])
def test_distill_eq43_hand_computed(eta_ratio):
    F, G, y = _tensors()
    tau = 0.5
    value, g = losses.distill_eq43(y, G, tau, eta_ratio)(F, slice(0, 2))
    exp_g, exp_value = [], 0.0
    for fr, gr, c in zip(F_ROWS, G_ROWS, Y):
        p, pf, pg = _softmax(fr), _trunc_softmax(fr, tau), _trunc_softmax(gr, tau)
        exp_g.append([p[i] - (i == c) + eta_ratio * min(0.0, pf[i] - pg[i]) for i in range(3)])
        exp_value += -math.log(p[c])
    assert_close(g, torch.tensor([exp_g]), rtol=1e-5, atol=1e-6)
    # the reported value is the cross-entropy alone (the [.]^- term is not a gradient)
    assert float(value[0]) == pytest.approx(exp_value, rel=1e-6)


def test_distill_eq43_term_is_the_negative_part_only():
    F, G, y = _tensors()
    _, g_ce = losses.cross_entropy(y)(F, slice(0, 2))
    _, g = losses.distill_eq43(y, G, 0.5, 3.0)(F, slice(0, 2))
    extra = g - g_ce
    assert (extra <= 1e-7).all()  # [a]^- = min(0, a)
    assert (extra < -1e-3).any()  # and it is not identically zero here
    # where the student's truncated logit is below the teacher's, nothing is added
    pF, pG = losses.truncated_logit(F, 0.5), losses.truncated_logit(G, 0.5)
    assert (extra[pF >= pG].abs() < 1e-7).all()


def test_distill_eq43_capped_stops_only_at_the_students_truncation():
    """A student with two truncated logits (8, 8 at tau = 0.5) cannot match a teacher confident
    in one of them: eq. 4.3 pushes the truncated logit up (forever: it no longer moves the
    student's truncated logit); capped, that push is zero and every other entry unchanged."""
    F = torch.tensor([[[8.0, 8.0, 0.0], [1.0, 0.0, 0.0]]])
    G = torch.tensor([[[8.0, 0.0, 0.0], [0.0, 3.0, 0.0]]])
    y = torch.tensor([0, 1])
    _, g = losses.distill_eq43(y, G, 0.5, 3.0)(F, slice(0, 2))
    _, g_cap = losses.distill_eq43(y, G, 0.5, 3.0, capped=True)(F, slice(0, 2))
    _, g_ce = losses.cross_entropy(y)(F, slice(0, 2))
    push = g - g_ce
    truncated = 0.5**2 * F >= 1
    assert push[0, 0, 0] < -0.1  # the truncated logit of the teacher's class is pushed up
    assert push[0, 1, 1] < -0.1  # and so is an untruncated one
    assert_close(g_cap[truncated], g_ce[truncated])
    assert_close(g_cap[~truncated], g[~truncated])


def test_distill_eq43_slices_teacher_rows():
    F, G, y = _tensors()
    loss = losses.distill_eq43(y, G, 0.5, 2.0)
    _, g_full = loss(F, slice(0, 2))
    _, g_1 = loss(F[:, 1:2], slice(1, 2))
    assert_close(g_1, g_full[:, 1:2])


@pytest.mark.parametrize("T,w", [(1.0, 1.0), (4.0, 0.5), (8.0, 0.0)])
def test_distill_hinton_value_hand_computed(T, w):
    F, G, y = _tensors()
    value, _ = losses.distill_hinton(y, G, T, w)(F, slice(0, 2))
    exp = 0.0
    for fr, gr, c in zip(F_ROWS, G_ROWS, Y):
        pF, pG = _softmax([v / T for v in fr]), _softmax([v / T for v in gr])
        kl = sum(a * (math.log(a) - math.log(b)) for a, b in zip(pG, pF))
        exp += -math.log(_softmax(fr)[c]) + w * T**2 * kl
    assert float(value[0]) == pytest.approx(exp, rel=1e-5)


@pytest.mark.parametrize("T,w", [(1.0, 1.0), (4.0, 0.5), (8.0, 2.0)])
def test_distill_hinton_gradient_is_gradient_of_value(T, w):
    torch.manual_seed(0)
    F = (3 * torch.randn(2, 5, 3)).requires_grad_()  # two student members
    G = 3 * torch.randn(1, 5, 3)  # one teacher, broadcast to both
    y = torch.tensor([0, 1, 2, 1, 0])
    value, g = losses.distill_hinton(y, G, T, w)(F, slice(0, 5))
    assert value.shape == (2,)
    (g_auto,) = torch.autograd.grad(value.sum(), F)
    assert_close(g, g_auto, rtol=1e-5, atol=1e-6)


def test_distill_hinton_per_member_teachers_and_slices():
    torch.manual_seed(1)
    F = 2 * torch.randn(2, 4, 3)
    G = 2 * torch.randn(2, 4, 3)  # member l distils from teacher l
    y = torch.tensor([2, 0, 1, 1])
    loss = losses.distill_hinton(y, G, 2.0, 1.0)
    v, g = loss(F, slice(0, 4))
    for l in range(2):
        v_l, g_l = losses.distill_hinton(y, G[l : l + 1], 2.0, 1.0)(F[l : l + 1], slice(0, 4))
        assert_close(v[l : l + 1], v_l)
        assert_close(g[l : l + 1], g_l)
    v_a, g_a = loss(F[:, :3], slice(0, 3))
    v_b, g_b = loss(F[:, 3:], slice(3, 4))
    assert_close(v_a + v_b, v, rtol=1e-5, atol=1e-6)
    assert_close(torch.cat([g_a, g_b], 1), g)


def test_averaged_is_gradient_of_ce_of_mean_model():
    torch.manual_seed(3)
    K = 3
    F = (2 * torch.randn(K, 6, 4)).requires_grad_()
    y = torch.tensor([0, 1, 2, 3, 3, 1])
    value, g = losses.averaged(losses.cross_entropy(y), K)(F, slice(0, 6))
    Fbar = F.mean(0, keepdim=True)
    ref = -Fbar.log_softmax(-1)[0, torch.arange(6), y].sum()
    (g_auto,) = torch.autograd.grad(ref, F)
    assert value.shape == (K,)
    assert_close(value, ref.detach().expand(K), rtol=1e-6, atol=1e-6)
    assert g.shape == F.shape
    assert_close(g, g_auto, rtol=1e-5, atol=1e-7)
    # and it differs from training each member on its own cross-entropy
    _, g_own = losses.cross_entropy(y)(F.detach(), slice(0, 6))
    assert not torch.allclose(g, g_own / K, atol=1e-3)


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda y, G: losses.distill_eq43(y, G, 0.0, 1.0), "tau"),
        (lambda y, G: losses.distill_eq43(y, G, 0.5, -1.0), "eta_ratio"),
        (lambda y, G: losses.distill_hinton(y, G, -2.0, 1.0), "T"),
        (lambda y, G: losses.distill_hinton(y, G, 2.0, -0.5), "kd_weight"),
    ],
)
def test_invalid_loss_parameters(call, name):
    _, G, y = _tensors()
    with pytest.raises(ValueError, match=name):
        call(y, G)
