"""Full-batch gradient descent, eq. (3.1): W <- W - eta * E_{(X,y) ~ Z} grad_W L.

One loop for every trainer; the objective (:mod:`mvlib.losses`) and the learner
(:class:`mvlib.model.Network` or :class:`mvlib.model.Linearised`) are its arguments.

Training that goes wrong stops with a subclass of :class:`TrainingDiverged` that names the cause
and the parameter to change, instead of finishing silently with a useless model: a non-finite
loss, a loss that explodes (:class:`TrainingExploded`), a loss that does not move
(:class:`TrainingStalled`), or a member whose training accuracy falls back to chance after it had
learned (:class:`TrainingCollapsed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch

from mvlib._validate import check_range
from mvlib.metrics import accuracy, correct
from mvlib.model import Loss

# A loss above EXPLODE_FACTOR * max(initial loss, EXPLODE_FLOOR) is runaway growth: GD at a stable
# step never raises the loss, and the floor (in nats, the scale of a cross-entropy of O(1) logits)
# keeps a continuation from a near-zero loss from tripping on harmless transients.
EXPLODE_FACTOR = 100.0
EXPLODE_FLOOR = 1.0
# Within STALL_STEPS steps every member's loss must leave [1 - STALL_TOL, 1 + STALL_TOL] x its
# initial value. The presets' runs from scratch (eta = 6, eta_ntk = 32) lower it by more than 25%
# in 100 steps, even on the plateau before the features cross varrho; a step 1e4 times too small
# does not move it measurably. A loss that rises is not a stall: eq. (4.3) reports cross-entropy,
# which a self-distillation continuation legitimately raises. Losses below STALL_FLOOR are done.
STALL_STEPS = 100
STALL_TOL = 1e-3
STALL_FLOOR = 1e-3
# Training accuracy is "at chance" below 1/k + COLLAPSE_LEVEL (1 - 1/k) and "learned" above
# 1/k + LEARNED_LEVEL (1 - 1/k). A member that was learned and is now at chance has been pulled off
# the labels: a distillation weight too large, or a step that overshoots.
COLLAPSE_LEVEL = 0.1
LEARNED_LEVEL = 0.5


class TrainingDiverged(FloatingPointError):
    """Training went wrong; the base class is raised when the loss became NaN or infinite."""


class TrainingExploded(TrainingDiverged):
    """The loss grew past EXPLODE_FACTOR times its initial value."""


class TrainingStalled(TrainingDiverged):
    """The loss did not move in the first STALL_STEPS steps."""


class TrainingCollapsed(TrainingDiverged):
    """A member's training accuracy fell to chance level 1/k after it had learned."""


@dataclass
class History:
    """Recorded every ``record_every`` steps: ``step (T,)``, ``loss (T, K)``, ``train_acc (T, K)``,
    ``Phi (T, K, k, 2)`` (when the features V are given), ``weight_norm (T, K)`` the largest
    ||w_{i,r}|| over classes and neurons, and ``probe_acc {name: (T, K)}`` the accuracy on each
    probe set (Theorem 3 speaks of accuracy over iterations)."""

    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    Phi: list = field(default_factory=list)
    weight_norm: list = field(default_factory=list)
    probe_acc: dict = field(default_factory=dict)

    def stack(self) -> History:
        def stacked(v):
            return torch.stack(v) if v else torch.empty(0)

        return History(
            torch.tensor(self.step),
            stacked(self.loss),
            stacked(self.train_acc),
            stacked(self.Phi),
            stacked(self.weight_norm),
            {name: stacked(v) for name, v in self.probe_acc.items()},
        )

    def select(self, members: slice) -> History:
        """The records of some members only (a stacked History; ``step`` is shared)."""

        def part(v):
            return v[:, members] if v.numel() else v

        out = {
            f.name: part(getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("step", "probe_acc")
        }
        return History(
            self.step, **out, probe_acc={name: part(v) for name, v in self.probe_acc.items()}
        )


def feature_magnitude(W: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Phi_{i,l} = sum_{r in [m]} [<w_{i,r}, v_{i,l}>]^+ (Section 2.3 / Thm. 4): (K, k, 2)."""
    return torch.einsum("kimd,ild->kiml", W, V).clamp(min=0).sum(2)


def weight_norm(W: torch.Tensor) -> torch.Tensor:
    """max_{i, r} ||w_{i,r}||: W (K, k, m, d) -> (K,)."""
    return W.norm(dim=-1).flatten(1).amax(1)


def _counting(loss: Loss, y: torch.Tensor, hits: torch.Tensor) -> Loss:
    """``loss`` that also adds each member's correctly classified samples to ``hits`` (K,): the
    training accuracy of the step comes free with the logits the loss sees."""

    def wrapped(F, s):
        hits.add_(correct(F, y[s]).sum(-1))
        return loss(F, s)

    return wrapped


def _eta_text(eta) -> str:
    return f"eta = {eta.tolist() if torch.is_tensor(eta) else eta}"


def _fmt(values: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values.tolist()) + "]"


def _members(mask: torch.Tensor) -> list[int]:
    return mask.nonzero().flatten().tolist()


def _check(
    t: int,
    value: torch.Tensor,
    acc: torch.Tensor,
    first: torch.Tensor,
    moved: torch.Tensor,
    peak: torch.Tensor,
    k: int,
    eta,
    hint: str,
):
    """Raise the TrainingDiverged subclass that fits step t's loss (K,) and accuracy (K,), given
    the initial loss, whether it has moved by STALL_TOL, and the best accuracy so far (K,)."""
    tail = f"; {hint}" if hint else ""
    if not torch.isfinite(value).all():
        raise TrainingDiverged(
            f"training diverged at step {t}: the loss is {value.tolist()}; "
            f"lower the step size ({_eta_text(eta)}){tail}"
        )
    limit = EXPLODE_FACTOR * first.clamp(min=EXPLODE_FLOOR)
    if (value > limit).any():
        j = _members(value > limit)
        raise TrainingExploded(
            f"training exploded at step {t}: the loss of members {j} is {_fmt(value[j])}, over "
            f"{EXPLODE_FACTOR:g} x its initial {_fmt(first[j])}; lower the step size "
            f"({_eta_text(eta)}){tail}"
        )
    chance = 1.0 / k
    fell = (peak >= chance + LEARNED_LEVEL * (1 - chance)) & (
        acc <= chance + COLLAPSE_LEVEL * (1 - chance)
    )
    if fell.any():
        j = _members(fell)
        raise TrainingCollapsed(
            f"training collapsed at step {t}: the training accuracy of members {j} fell to "
            f"{_fmt(acc[j])} (chance 1/k = {chance:.3g}) after reaching {_fmt(peak[j])}; "
            f"the objective pulls the model off the labels: lower the step size "
            f"({_eta_text(eta)}) or the weight of any term besides cross-entropy{tail}"
        )
    if t == STALL_STEPS:
        stuck = (first > STALL_FLOOR) & ~moved
        if stuck.any():
            j = _members(stuck)
            raise TrainingStalled(
                f"training stalled: after {t} steps the loss of members {j} is {_fmt(value[j])},"
                f" within {STALL_TOL:g} of its initial {_fmt(first[j])}; raise the step size "
                f"({_eta_text(eta)}){tail}"
            )


def gradient_descent(
    model,
    W: torch.Tensor,
    X: torch.Tensor,
    y: torch.Tensor,
    loss: Loss,
    eta: float | torch.Tensor,
    steps: int,
    V: torch.Tensor | None = None,
    record_every: int = 0,
    progress: Callable[[int], None] | None = None,
    probes: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    hint: str = "",
):
    """Run ``steps`` GD steps from W: (K, k, m, d) on X: (N, P, d), y: (N,) and return
    (W, History).

    ``eta`` is a number or one step size per member (K,). ``probes`` maps a name to a labelled
    set (X_p (n, P, d), y_p (n,)) whose per-member accuracy is recorded with the history.
    Raises a :class:`TrainingDiverged` (sub)class naming the cause and the step size when the
    loss is not finite, explodes or stalls, or a member's training accuracy collapses to chance;
    ``hint`` (e.g. "lower kd_weight or T") is appended to the message.
    """
    check_range("steps", steps, 0, None, integer=True)
    eta_t = torch.as_tensor(eta, dtype=W.dtype, device=W.device).reshape(-1, 1, 1, 1)
    if not torch.isfinite(eta_t).all() or (eta_t <= 0).any():
        raise ValueError(f"eta must be a positive finite step size, got {eta}")
    K, k = W.shape[:2]
    hist = History(probe_acc={name: [] for name in probes or {}})
    W = W.clone()
    hits = torch.zeros(K, device=W.device)
    counted = _counting(loss, y, hits)
    first = peak = None
    for t in range(steps + 1):
        hits.zero_()
        value, grad = model.loss_and_grad(W, X, counted)
        acc = hits / X.shape[0]
        if first is None:
            first, peak = value.detach().clone(), acc.clone()
            moved = torch.zeros_like(first, dtype=torch.bool)
        peak = torch.maximum(peak, acc)
        moved |= (value - first).abs() > STALL_TOL * first
        _check(t, value, acc, first, moved, peak, k, eta, hint)
        if record_every and (t % record_every == 0 or t == steps):
            hist.step.append(t)
            hist.loss.append(value.cpu())
            hist.train_acc.append(acc.cpu())
            hist.weight_norm.append(weight_norm(W).cpu())
            if V is not None:
                hist.Phi.append(feature_magnitude(W, V).cpu())
            for name, (Xp, yp) in (probes or {}).items():
                hist.probe_acc[name].append(accuracy(model.logits(W, Xp), yp).cpu())
        if t == steps:
            break
        W -= eta_t * grad
        if progress is not None:
            progress(1)
    return W, hist.stack()
