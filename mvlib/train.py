"""Full-batch gradient descent, eq. (3.1): W <- W - eta * E_{(X,y) ~ Z} grad_W L.

One loop for every trainer; the objective (:mod:`mvlib.losses`) and the learner
(:class:`mvlib.model.Network` or :class:`mvlib.model.Linearised`) are its arguments.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from mvlib._validate import check_range
from mvlib.metrics import accuracy
from mvlib.model import Loss


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


@dataclass
class History:
    """Recorded every ``record_every`` steps: ``step (T,)``, ``loss (T, K)``,
    ``train_acc (T, K)``, ``Phi (T, K, k, 2)`` (when the features V are given)."""

    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    Phi: list = field(default_factory=list)

    def stack(self) -> "History":
        return History(*(torch.tensor(v) if k == "step" else torch.stack(v) if v else torch.empty(0)
                         for k, v in vars(self).items()))


def feature_magnitude(W: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Phi_{i,l} = sum_{r in [m]} [<w_{i,r}, v_{i,l}>]^+ (Section 2.3 / Thm. 4): (K, k, 2)."""
    return torch.einsum("kimd,ild->kiml", W, V).clamp(min=0).sum(2)


def gradient_descent(model, W: torch.Tensor, X: torch.Tensor, y: torch.Tensor, loss: Loss,
                     eta: float | torch.Tensor, steps: int, V: torch.Tensor | None = None,
                     record_every: int = 0, progress: Callable[[int], None] | None = None):
    """Run ``steps`` GD steps from W: (K, k, m, d) and return (W, History).

    ``eta`` is a number or one step size per member (K,). Raises TrainingDiverged, naming the step
    size, as soon as a member's loss is not finite.
    """
    check_range("steps", steps, 0, None, integer=True)
    eta_t = torch.as_tensor(eta, dtype=W.dtype, device=W.device).reshape(-1, 1, 1, 1)
    if not torch.isfinite(eta_t).all() or (eta_t <= 0).any():
        raise ValueError(f"eta must be a positive finite step size, got {eta}")
    hist = History()
    W = W.clone()
    for t in range(steps + 1):
        value, grad = model.loss_and_grad(W, X, loss)
        if not torch.isfinite(value).all():
            raise TrainingDiverged(
                f"training diverged at step {t}: the loss is {value.tolist()}; "
                f"lower the step size (eta = {eta if not torch.is_tensor(eta) else eta.tolist()})")
        if record_every and (t % record_every == 0 or t == steps):
            hist.step.append(t)
            hist.loss.append(value.cpu())
            F = model.logits(W, X)
            hist.train_acc.append(accuracy(F, y).cpu())
            if V is not None:
                hist.Phi.append(feature_magnitude(W, V).cpu())
        if t == steps:
            break
        W -= eta_t * grad
        if progress is not None:
            progress(1)
    return W, hist.stack()
