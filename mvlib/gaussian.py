"""Gaussian inputs: ensembles reduce output variance, not test error (Section 2.2, Figure 7).

Inputs ``X: (N, P, d)`` are i.i.d. Gaussian patches ``x_p ~ N(0, sigma_x^2 I_d)``: no views, no
structure beyond isotropic noise. Labels are ``y = argmax_i F*_i(X)`` of a random *teacher* F* of
the learner's own kind (Def. 3.4), so the task is realisable. K members train in one batch with
the book's learner, gradient descent (eq. 3.1) and cross-entropy, exactly as on multi-view data;
this module adds the data and the numbers that tell a lower convex test loss from a lower test
error: per-member and ensemble (eq. 4.1, output average) accuracy and cross-entropy, and the
variance of the outputs across members.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from mvlib import losses
from mvlib._validate import check_range
from mvlib.cache import cached
from mvlib.config import ExperimentConfig, rng
from mvlib.metrics import accuracy
from mvlib.model import LearnerConfig, Network, init_weights
from mvlib.train import gradient_descent
from mvlib.trainers import evaluate
from mvlib.trainers import make_data as make_multiview_data
from mvlib.units import members

# Generator streams of one seed (disjoint from each other for every seed).
STREAM_TEACHER, STREAM_TRAIN, STREAM_TEST, STREAM_MEMBERS = range(4)
# Training samples per learner parameter (k m d) in ``for_preset``: at 7 the members' test
# accuracy is within a few points of their training accuracy (measured at the ci preset).
SAMPLES_PER_PARAMETER = 7


@dataclass(frozen=True)
class GaussianConfig:
    """Gaussian data with teacher labels, and the ensemble trained on it.

    The teacher F* has ``m_star`` neurons per class, each ``w*_{i,r}`` of norm
    ``scale_star * varrho / sigma_x`` in a uniformly random direction, so every teacher
    pre-activation ``<w*_{i,r}, x_p>`` is ``N(0, (scale_star * varrho)^2)``: the same law for
    every class (balanced labels), and ``scale_star ~ 1`` puts it across all three pieces of
    ReLU~ (zero, polynomial, linear), so the labelling function is non-linear.
    """

    k: int = 10  # classes
    d: int = 10  # patch dimension
    P: int = 2  # patches per sample
    sigma_x: float = 0.7  # patch noise std per coordinate; |x_p| ~ sigma_x sqrt(d)
    m_star: int = 1  # teacher neurons per class
    scale_star: float = 1.0  # teacher pre-activation std, in units of varrho
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    N: int = 2000  # training samples
    n_test: int = 2000  # test samples
    K: int = 10  # ensemble members
    eta: float = 6.0  # GD step size, eq. (3.1)
    steps: int = 600  # GD steps
    chunk: int = 0  # samples per chunk in forward/backward (0: all at once)

    def __post_init__(self):
        check_range("k", self.k, 2, None, integer=True)
        check_range("d", self.d, 1, None, integer=True)
        check_range("P", self.P, 1, None, integer=True)
        check_range("sigma_x", self.sigma_x, 1e-6, None)
        check_range("m_star", self.m_star, 1, None, integer=True)
        check_range("scale_star", self.scale_star, 1e-6, None)
        check_range("N", self.N, 1, None, integer=True)
        check_range("n_test", self.n_test, 1, None, integer=True)
        check_range("K", self.K, 2, None, integer=True, why="an ensemble needs two members")
        check_range("eta", self.eta, 1e-12, None)
        check_range("steps", self.steps, 0, None, integer=True)
        check_range("chunk", self.chunk, 0, None, integer=True)


@dataclass
class GaussianData:
    """Samples ``X: (N, P, d)`` and teacher labels ``y: (N,)``."""

    X: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.y.shape[0]


@dataclass
class GaussianTask:
    """The teacher ``W_star: (1, k, m_star, d)``, a training set and a test set of its labels."""

    W_star: torch.Tensor
    train: GaussianData
    test: GaussianData


def teacher(cfg: GaussianConfig, generator: torch.Generator) -> torch.Tensor:
    """Random teacher weights W*: (1, k, m_star, d), rows of norm scale_star * varrho / sigma_x."""
    W = torch.randn(1, cfg.k, cfg.m_star, cfg.d, generator=generator)
    norm = cfg.scale_star * cfg.learner.varrho / cfg.sigma_x
    return norm * W / W.norm(dim=-1, keepdim=True)


def label(cfg: GaussianConfig, W_star: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """y = argmax_i F*_i(X), the teacher's class (Def. 3.4 with m = m_star): (N, P, d) -> (N,)."""
    net = Network(replace(cfg.learner, m=cfg.m_star), cfg.chunk)
    return net.logits(W_star, X)[0].argmax(-1)


def sample(
    cfg: GaussianConfig, n: int, W_star: torch.Tensor, generator: torch.Generator
) -> GaussianData:
    """n samples: patches i.i.d. N(0, sigma_x^2 I_d), labels from the teacher."""
    check_range("n", n, 1, None, integer=True)
    X = cfg.sigma_x * torch.randn(n, cfg.P, cfg.d, generator=generator)
    return GaussianData(X, label(cfg, W_star, X))


def make_data(cfg: GaussianConfig, seed: int) -> GaussianTask:
    """The teacher of ``seed``, N training and n_test test samples (each from its own stream)."""
    W_star = teacher(cfg, rng(seed, STREAM_TEACHER))
    return GaussianTask(
        W_star,
        sample(cfg, cfg.N, W_star, rng(seed, STREAM_TRAIN)),
        sample(cfg, cfg.n_test, W_star, rng(seed, STREAM_TEST)),
    )


def train_members(cfg: GaussianConfig, task: GaussianTask, seed: int) -> torch.Tensor:
    """K independently initialised learners trained by GD on cross-entropy over the training
    set, in one batch: the trained weights W: (K, k, m, d)."""
    W0 = init_weights(cfg.learner, cfg.K, cfg.k, cfg.d, rng(seed, STREAM_MEMBERS))
    W, _ = gradient_descent(
        Network(cfg.learner, cfg.chunk),
        W0,
        task.train.X,
        task.train.y,
        losses.cross_entropy(task.train.y),
        cfg.eta,
        cfg.steps,
    )
    return W


@cached
def _members_unit(cfg: GaussianConfig, seed: int) -> torch.Tensor:
    return train_members(cfg, make_data(cfg, seed), seed).cpu()


def logits(cfg: GaussianConfig, W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """The members' outputs F(X): W (K, k, m, d), X (N, P, d) -> (K, N, k)."""
    return Network(cfg.learner, cfg.chunk).logits(W, X)


def mean_cross_entropy(F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Test loss -log softmax_y(F(X)) averaged over samples, per member: (K, N, k) -> (K,)."""
    return -F.log_softmax(-1).gather(-1, y.expand(F.shape[0], -1)[..., None]).squeeze(-1).mean(-1)


def output_variance(F: torch.Tensor) -> tuple[float, float]:
    """Across-member variance of the outputs, summed over classes and averaged over samples:
    ``E_X sum_i Var_l F^(l)_i(X)`` of the logits and of the softmax, for F: (K, N, k).

    Members are i.i.d. given the data, so the output average of K members has 1/K of it."""

    def var(Z):
        return float(Z.var(0, unbiased=False).sum(-1).mean())

    return var(F), var(F.softmax(-1))


def ensemble_metrics(F: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Members against their output average G = (1/K) sum_l F^(l) (eq. 4.1) on one test set,
    F: (K, N, k), y: (N,). Accuracies and cross-entropies of members are means over members.

    ``flip``: fraction of (member, sample) pairs whose prediction differs from the ensemble's,
    the only way averaging can change accuracy."""
    G = F.mean(0, keepdim=True)
    logit_var, softmax_var = output_variance(F)
    member_acc, ensemble_acc = float(accuracy(F, y).mean()), float(accuracy(G, y)[0])
    member_loss, ensemble_loss = (
        float(mean_cross_entropy(F, y).mean()),
        float(mean_cross_entropy(G, y)[0]),
    )
    flip = float((F.argmax(-1) != G.argmax(-1)).float().mean())
    return {
        "member_acc": member_acc,
        "ensemble_acc": ensemble_acc,
        "acc_gain": ensemble_acc - member_acc,
        "member_loss": member_loss,
        "ensemble_loss": ensemble_loss,
        "loss_drop": member_loss - ensemble_loss,
        "logit_var": logit_var,
        "softmax_var": softmax_var,
        "flip": flip,
    }


def error_removed(metrics: dict[str, float]) -> float:
    """Fraction of a member's test errors that the ensemble removes,
    (acc_ensemble - acc_member) / (1 - acc_member): comparable across tasks of different
    difficulty."""
    return metrics["acc_gain"] / max(1.0 - metrics["member_acc"], 1e-12)


def mixture(multi: dict[str, float], single: dict[str, float], mu: float) -> dict[str, float]:
    """Every metric on D = (1 - mu) D_m + mu D_s (Def. 3.3) from the two split test sets; all
    are expectations over samples, so they mix linearly."""
    return {key: (1 - mu) * multi[key] + mu * single[key] for key in multi}


def gaussian_run(cfg: GaussianConfig, seed: int) -> dict[str, float]:
    """One seed on Gaussian data: the ensemble metrics on the test set, the members' worst
    training accuracy, and the share of the test set's most frequent class."""
    task = make_data(cfg, seed)
    W = _members_unit(cfg, seed).to(task.train.X.device)  # cached: nbval and the build train once
    out = ensemble_metrics(logits(cfg, W, task.test.X), task.test.y)
    out["member_train_acc_min"] = float(accuracy(logits(cfg, W, task.train.X), task.train.y).min())
    out["error_removed"] = error_removed(out)
    out["top_class_share"] = float(torch.bincount(task.test.y, minlength=cfg.k).max()) / cfg.n_test
    return out


def multiview_run(cfg: ExperimentConfig, seed: int) -> dict[str, float]:
    """The same numbers for the book's ensemble on multi-view data (data seed ``seed``): metrics
    on D mixed from the split test sets, plus the single-view test set's own accuracy gain."""
    data = make_multiview_data(cfg, seed)
    team = members(cfg, seed, data)  # cached: the same ensemble as every chapter's
    multi, single = (
        ensemble_metrics(team.logits(t.X), t.y) for t in (data.test_multi, data.test_single)
    )
    out = mixture(multi, single, cfg.data.mu)
    out["error_removed"] = error_removed(out)
    out["single_view_acc_gain"] = single["acc_gain"]
    out["member_train_acc_min"] = float(evaluate(team, data, cfg.data.mu)["train"].min())
    return out


def for_preset(cfg: ExperimentConfig) -> GaussianConfig:
    """The Gaussian experiment beside a multi-view preset: the same k, learner, K, step size and
    steps, and a task that grows with the preset: d = d_mv / 20, P = P_mv / 8, patches of norm
    ~2.2 (sigma_x = 2.2 / sqrt(d), the scale at which eta trains the learner from sigma0), a
    teacher of m_star = 1 neuron per class that the learner's m >= 1 can express, and
    N = SAMPLES_PER_PARAMETER k m d training samples, so members generalise (Section 2.2's
    setting: every single model is well trained)."""
    d = max(2, cfg.data.d // 20)
    N = SAMPLES_PER_PARAMETER * cfg.data.k * cfg.learner.m * d
    return GaussianConfig(
        k=cfg.data.k,
        d=d,
        P=max(1, cfg.data.P // 8),
        sigma_x=2.2 / math.sqrt(d),
        m_star=1,
        scale_star=1.0,
        learner=cfg.learner,
        N=N,
        n_test=cfg.n_test,
        K=cfg.K,
        eta=cfg.eta,
        steps=cfg.steps,
        chunk=cfg.chunk,
    )
