"""Training objectives, each as ``loss(F, s) -> (sum of losses (K,), d sum / dF (K, n, k))``
for the logits ``F: (K, n, k)`` of the samples ``s`` (a slice of the training set).

Every trainer runs the same gradient descent (:func:`mvlib.train.gradient_descent`); they differ
only in the objective built here. Teachers are logits ``G: (K or 1, N, k)``, one per member, so
students of different teachers (a real one and its control) train in one batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mvlib._validate import check_range
from mvlib.model import Loss


def _onehot(y: torch.Tensor, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(y, k).to(torch.float32)


def _ce(F: torch.Tensor, y: torch.Tensor):
    logp = F.log_softmax(-1)
    return -logp.gather(-1, y.expand(F.shape[0], -1)[..., None]).squeeze(-1).sum(
        -1
    ), logp.exp() - _onehot(y, F.shape[-1])


def cross_entropy(y: torch.Tensor) -> Loss:
    """L(F; X, y) = -log logit_y(F, X) (Section 3.2); dL/dF_i = logit_i - 1{i = y}."""
    return lambda F, s: _ce(F, y[s])


@dataclass(frozen=True)
class Link:
    """The scores u = min{gain * scale * G, cap} / divide whose softmax a distillation loss
    reads of teacher logits G: Hinton's G / T (:func:`hinton_link`), eq. (4.2)'s
    min{tau^2 s G, 1} / tau (:func:`eq42_link`). The controls of :mod:`mvlib.teachers` are
    matched through it, in the probability the loss acts on."""

    divide: float
    gain: float = 1.0
    scale: float = 1.0
    cap: float = math.inf

    def __call__(self, G: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.gain * (self.scale * G), max=self.cap) / self.divide

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        """Logits G with ``self(G) = u``, for u up to the cap (cap / divide)."""
        return u * self.divide / self.gain / self.scale

    @property
    def top(self) -> float:
        """The largest score: cap / divide (inf without truncation)."""
        return self.cap / self.divide


def hinton_link(T: float) -> Link:
    """softmax(G / T): Hinton et al. (2015) at temperature T."""
    return Link(divide=T)


def eq42_link(tau: float, scale: float = 1.0) -> Link:
    """logit^tau(scale * G) of eq. (4.2): min{tau^2 scale G, 1} / tau."""
    return Link(divide=tau, gain=tau**2, scale=scale, cap=1.0)


def truncated_logit(F: torch.Tensor, tau: float) -> torch.Tensor:
    """logit^tau_i(F, X) = softmax_i(min{tau^2 F_i, 1} / tau), eq. (4.2)."""
    return torch.softmax(eq42_link(tau)(F), -1)


def _per_member(name: str, w) -> torch.Tensor | float:
    """A non-negative weight, or one per member (K,) shaped (K, 1, 1) to scale dL/dF."""
    if torch.is_tensor(w):
        if not torch.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"{name} must be finite and >= 0 for every member, got {w.tolist()}")
        return w.to(torch.float32).reshape(-1, 1, 1)
    check_range(name, w, 0.0, None)
    return w


def truncation_fraction(G: torch.Tensor, tau: float, scale: float = 1.0) -> float:
    """Fraction of a teacher's logits that eq. (4.2) truncates (tau^2 * scale * G > 1)."""
    return float((tau**2 * scale * G > 1.0).float().mean())


def distill_eq43(
    y: torch.Tensor, G: torch.Tensor, tau: float, eta_ratio, scale: float = 1.0, capped=False
) -> Loss:
    """The update of eq. (4.3) as a step of size eta along
    ``dL_CE/dF_i + (eta'/eta) [logit^tau_i(F) - logit^tau_i(scale * G)]^-``.

    ``scale`` is eq. (4.1)'s Theta~(1) factor of the teacher G = (Theta~(1)/K) sum_l F^[l]; it
    decides whether the truncation min{tau^2 G_i, 1} acts on the teacher at all.
    ``eta_ratio`` (eta'/eta) is a number or one per member (K,): 0 leaves plain cross-entropy.
    The second term is not the gradient of any loss (it is truncated at 0), so the value reported
    is the cross-entropy alone. ``capped``: no push on a logit the student's own truncation has
    reached (tau^2 F_i >= 1), where a larger F_i no longer changes logit^tau_i(F); eq. 4.3 as
    written keeps pushing there, without bound.
    """
    check_range("tau", tau, 1e-6, None)
    check_range("teacher_scale", scale, 1e-6, None)
    ratio = _per_member("eta_ratio", eta_ratio)
    pG = torch.softmax(eq42_link(tau, scale)(G), -1)

    def loss(F, s):
        value, g = _ce(F, y[s])
        push = (truncated_logit(F, tau) - pG[:, s]).clamp(max=0.0)
        if capped:
            push = push * (tau**2 * F < 1.0)
        return value, g + ratio * push

    return loss


def distill_hinton(y: torch.Tensor, G: torch.Tensor, T: float, weight: float) -> Loss:
    """Hinton et al. (2015): CE + weight * T^2 KL(softmax(G/T) || softmax(F/T)).
    The KL term's gradient is weight * T (softmax(F/T) - softmax(G/T)). ``weight`` is a number
    or one per member (K,)."""
    check_range("T", T, 1e-6, None)
    w = _per_member("kd_weight", weight)
    logpG = torch.log_softmax(hinton_link(T)(G), -1)

    def loss(F, s):
        value, g = _ce(F, y[s])
        logpF = torch.log_softmax(F / T, -1)
        pG = logpG[:, s].exp()
        kl = (pG * (logpG[:, s] - logpF)).sum(-1)
        return value + (w * T**2 * kl).sum(-1).reshape(-1), g + w * T * (logpF.exp() - pG)

    return loss


def averaged(loss: Loss, K: int) -> Loss:
    """Training the average (Message 4): the K members form one model F = (1/K) sum_l f_l, and
    every member receives dL/dF / K."""

    def wrapped(F, s):
        value, g = loss(F.mean(0, keepdim=True), s)
        return value.expand(K), g.expand(K, -1, -1) / K

    return wrapped


def summed(loss: Loss, K: int) -> Loss:
    """Training the sum (the paper's Figure 6, "train sum_l f_l"): the K members form one model
    F = sum_l f_l, and every member receives dL/dF. It is exactly one network of width K * m."""

    def wrapped(F, s):
        value, g = loss(F.sum(0, keepdim=True), s)
        return value.expand(K), g.expand(K, -1, -1)

    return wrapped
