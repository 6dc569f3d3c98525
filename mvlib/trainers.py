"""The trainers: config -> data -> K learners trained at once by GD (eq. 3.1) -> evaluate.

Each trainer takes the data and returns a :class:`Trained`; :mod:`mvlib.units` caches them per
(config, seed) and the chapters call them to show each mechanism.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from mvlib import losses
from mvlib.config import (
    STREAM_AVERAGE,
    STREAM_DATA,
    STREAM_MEMBERS,
    STREAM_NTK_STUDENTS,
    STREAM_STUDENTS,
    STREAM_SUM,
    ExperimentConfig,
    default_device,
    rng,
)
from mvlib.data import MultiViewData, features, sample
from mvlib.metrics import accuracy, learned_views_behaviour, overall
from mvlib.model import Linearised, Network, init_weights
from mvlib.teachers import LOGIT
from mvlib.train import History, gradient_descent


@dataclass
class Data:
    """The training set Z and the two test sets (all multi-view, all single-view)."""

    train: MultiViewData
    test_multi: MultiViewData
    test_single: MultiViewData

    @property
    def V(self):
        return self.train.V


def make_data(cfg: ExperimentConfig, seed: int, device=None) -> Data:
    """Features, N training samples of D, and n_test test samples of each view type."""
    device = device or default_device()
    g = rng(seed, STREAM_DATA)
    V = features(cfg.data, g)
    train = sample(cfg.data, cfg.N, V, g)
    return Data(
        train.to(device),
        sample(cfg.data, cfg.n_test, V, g, "multi").to(device),
        sample(cfg.data, cfg.n_test, V, g, "single").to(device),
    )


@dataclass
class Trained:
    """K trained members of one learner: weights (K, k, m, d), their init and history."""

    model: object
    W0: torch.Tensor
    W: torch.Tensor
    history: History

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        return self.model.logits(self.W, X)

    def select(self, members: slice) -> Trained:
        return Trained(
            self.model.select(members),
            self.W0[members],
            self.W[members],
            self.history.select(members),
        )


def scores(F_train, F_multi, F_single, data: Data, mu: float) -> dict[str, torch.Tensor]:
    """Per-member accuracies (train, multi-view test, single-view test, overall on D) and
    ``both_views``: the fraction of classes whose two views the model learned, judged by its
    behaviour on single-view test data (:func:`mvlib.metrics.learned_views_behaviour`)."""
    mv, sv = accuracy(F_multi, data.test_multi.y), accuracy(F_single, data.test_single.y)
    both = learned_views_behaviour(F_single, data.test_single).all(-1).float().mean(-1)
    return {
        "train": accuracy(F_train, data.train.y),
        "multi_view": mv,
        "single_view": sv,
        "overall": overall(mv, sv, mu),
        "both_views": both,
    }


def evaluate(
    trained: Trained, data: Data, mu: float, ensemble: bool = False
) -> dict[str, torch.Tensor]:
    """Accuracies of each member (K,), or of their output average G = (1/K) sum F (eq. 4.1)."""
    Fs = [trained.logits(d.X) for d in (data.train, data.test_multi, data.test_single)]
    if ensemble:
        Fs = [F.mean(0, keepdim=True) for F in Fs]
    return scores(*Fs, data, mu)


def fit(cfg, model, W0, data, loss, eta, steps, progress=None, hint=""):
    """The model trained from W0 by GD on ``loss``. Records the single-view test accuracy over
    iterations: Theorem 3 speaks of "at least 90% of the iterations"."""
    probes = {"single_view": (data.test_single.X, data.test_single.y)}
    W, hist = gradient_descent(
        model,
        W0,
        data.train.X,
        data.train.y,
        loss,
        eta,
        steps,
        V=data.V,
        record_every=cfg.record_every,
        progress=progress,
        probes=probes,
        hint=hint,
    )
    return Trained(model, W0, W, hist)


def initial(cfg: ExperimentConfig, K: int, seed: int, stream: int, device, m: int | None = None):
    """K initialisations (K, k, m, d) drawn from ``stream`` of ``seed`` (Def. 3.4's sigma0)."""
    learner = cfg.learner if m is None else replace(cfg.learner, m=m)
    return init_weights(learner, K, cfg.data.k, cfg.data.d, rng(seed, stream), device)


def _fit_network(cfg: ExperimentConfig, data: Data, W0, loss, progress) -> Trained:
    """Networks from W0 trained by GD on ``loss`` with the config's step and step count."""
    return fit(cfg, Network(cfg.learner, cfg.chunk), W0, data, loss, cfg.eta, cfg.steps, progress)


def train_ensemble(
    cfg: ExperimentConfig,
    data: Data,
    seed: int,
    K: int | None = None,
    progress: Callable | None = None,
) -> Trained:
    """K independently initialised single models trained by GD on cross-entropy (Theorem 1);
    their output average is the ensemble (eq. 4.1, Theorem 2)."""
    K = K or cfg.K
    W0 = initial(cfg, K, seed, STREAM_MEMBERS, data.train.X.device)
    return _fit_network(cfg, data, W0, losses.cross_entropy(data.train.y), progress)


def train_average(
    cfg: ExperimentConfig,
    data: Data,
    seed: int,
    K: int | None = None,
    progress: Callable | None = None,
    linearised: bool = False,
) -> Trained:
    """One model F = (1/K) sum_l f_l trained jointly from scratch. The step is K * eta so each
    member moves as fast as a single model at the same loss gradient: each member keeps playing
    its own lottery, so this is an ensemble trained in parallel."""
    K = K or cfg.K
    W0 = initial(cfg, K, seed, STREAM_AVERAGE, data.train.X.device)
    model, eta, steps = _learner(cfg, W0, data, linearised)
    return fit(
        cfg,
        model,
        W0,
        data,
        losses.averaged(losses.cross_entropy(data.train.y), K),
        K * eta,
        steps,
        progress,
    )


def train_sum(
    cfg: ExperimentConfig,
    data: Data,
    seed: int,
    K: int | None = None,
    progress: Callable | None = None,
) -> Trained:
    """The unscaled sum F = sum_l f_l of K members trained jointly with step eta (the paper's
    Figure 6, "train sum_l f_l", the form Message 4 is about): one network of K * m neurons per
    class, i.e. a single model of width K * m."""
    K = K or cfg.K
    W0 = initial(cfg, K, seed, STREAM_SUM, data.train.X.device)
    loss = losses.summed(losses.cross_entropy(data.train.y), K)
    return _fit_network(cfg, data, W0, loss, progress)


def _learner(cfg, W0, data, linearised):
    """(model, per-member step size, steps) of the network or its NTK linearisation at W0."""
    if not linearised:
        return Network(cfg.learner, cfg.chunk), cfg.eta, cfg.steps
    model = Linearised(cfg.learner, W0, data.train.X, cfg.chunk)
    return model, cfg.eta_ntk / model.kernel_scale(), cfg.ntk_steps


def train_linearised(
    cfg: ExperimentConfig, data: Data, W0: torch.Tensor, progress: Callable | None = None
) -> Trained:
    """The NTK model around W0 (the networks' own initialisation) trained by the same GD."""
    model, eta, steps = _learner(cfg, W0, data, True)
    return fit(cfg, model, W0, data, losses.cross_entropy(data.train.y), eta, steps, progress)


def teacher_link(cfg: ExperimentConfig, kd: str) -> losses.Link | None:
    """The scores the distillation form ``kd`` reads of a teacher, through which the controls are
    matched (:mod:`mvlib.teachers`); None when ``cfg.controls`` matches them in logits."""
    if cfg.controls == LOGIT:
        return None
    if kd.startswith("eq43"):
        return losses.eq42_link(cfg.tau, cfg.teacher_scale)
    return losses.hinton_link(cfg.T)


def distillation_loss(
    cfg: ExperimentConfig, y: torch.Tensor, G: torch.Tensor, kd: str | None = None, weight=1.0
):
    """The distillation objective towards teacher logits G: eq. (4.3) (teacher scaled by
    ``cfg.teacher_scale``) or Hinton's form. ``weight`` (a number or one per member) multiplies
    the distillation term; 0 leaves cross-entropy alone."""
    form = kd or cfg.kd
    if form.startswith("eq43"):
        ratio, capped = cfg.eta_ratio * weight, form == "eq43_capped"
        return losses.distill_eq43(y, G, cfg.tau, ratio, cfg.teacher_scale, capped)
    return losses.distill_hinton(y, G, cfg.T, cfg.kd_weight * weight)


def train_students(
    cfg: ExperimentConfig,
    data: Data,
    teachers: dict[str, torch.Tensor],
    seed: int,
    kd: str | None = None,
    linearised: bool = False,
    progress: Callable | None = None,
) -> dict[str, Trained]:
    """cfg.students fresh students per teacher (logits on the training set, (N, k)), all trained
    in one batch. Students of different teachers share their initialisations, so a teacher and
    its controls are compared on the same students (paired)."""
    S, names = cfg.students, list(teachers)
    device = data.train.X.device
    W0 = initial(cfg, S, seed, STREAM_NTK_STUDENTS if linearised else STREAM_STUDENTS, device)
    W0 = W0.repeat(len(names), 1, 1, 1)
    G = torch.cat([teachers[n].expand(S, -1, -1) for n in names])
    model, eta, steps = _learner(cfg, W0, data, linearised)
    trained = fit(
        cfg,
        model,
        W0,
        data,
        distillation_loss(cfg, data.train.y, G, kd),
        eta,
        steps,
        progress,
        hint=_kd_hint(kd or cfg.kd),
    )
    return {n: trained.select(slice(j * S, (j + 1) * S)) for j, n in enumerate(names)}


def _kd_hint(kd: str) -> str:
    return (
        "lower eta_ratio or teacher_scale (eq. 4.3)"
        if kd.startswith("eq43")
        else "lower kd_weight or T (Hinton's form)"
    )


def continue_students(
    cfg: ExperimentConfig,
    data: Data,
    W: torch.Tensor,
    teachers: dict[str, torch.Tensor | None],
    kd: str | None = None,
    progress: Callable | None = None,
) -> dict[str, Trained]:
    """Phase two of self-distillation (Theorem 4): the trained students W (S, k, m, d) continue
    for cfg.sd_steps steps, once per teacher, all in one batch; a teacher of None continues on
    cross-entropy alone (the baseline that separates more training from distillation)."""
    S, names = W.shape[0], list(teachers)
    y = data.train.y
    none = torch.zeros(len(y), cfg.data.k, device=W.device)  # ignored: weight 0
    G = torch.cat([(none if teachers[n] is None else teachers[n]).expand(S, -1, -1) for n in names])
    weight = torch.cat([torch.full((S,), float(teachers[n] is not None)) for n in names]).to(
        W.device
    )
    trained = fit(
        cfg,
        Network(cfg.learner, cfg.chunk),
        W.repeat(len(names), 1, 1, 1),
        data,
        distillation_loss(cfg, y, G, kd or cfg.sd_kd, weight),
        cfg.eta,
        cfg.sd_steps,
        progress,
        hint=_kd_hint(kd or cfg.sd_kd),
    )
    return {n: trained.select(slice(j * S, (j + 1) * S)) for j, n in enumerate(names)}
