"""The paper's experiments, batched: config -> data -> train (K seeds at once) -> evaluate.

``reproduce`` runs every method of the headline table on one data seed; the chapters call the
pieces (``make_data``, ``train_ensemble``, ``train_students`` ...) to show each mechanism.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Callable

import torch

from mvlib import losses
from mvlib._validate import check_range
from mvlib.data import MultiViewConfig, MultiViewData, features, sample
from mvlib.metrics import accuracy, overall
from mvlib.model import LearnerConfig, Linearised, Network, init_weights
from mvlib.train import History, gradient_descent

METHODS = ("single", "ensemble", "distill", "distill_control", "self_distill", "self_distill_control",
           "train_average", "ntk_single", "ntk_ensemble", "ntk_train_average", "ntk_distill")
KD_FORMS = ("hinton", "eq43")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one run needs. ``data`` and ``learner`` follow the paper's definitions; the
    rest sets training (eq. 3.1), distillation (eq. 4.3 or Hinton's form) and the NTK contrast."""

    data: MultiViewConfig = field(default_factory=MultiViewConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    N: int = 600                # training samples
    n_test: int = 2000          # test samples of each view type
    K: int = 10                 # ensemble members
    eta: float = 3.0            # GD step size, eq. (3.1)
    steps: int = 1000           # GD steps, for every network trainer
    kd: str = "hinton"          # distillation form of the headline: "hinton" or "eq43"
    T: float = 8.0              # Hinton temperature
    kd_weight: float = 1.0      # weight of the T^2 KL term beside cross-entropy
    tau: float = 0.19           # eq. (4.2) truncation scale, 1/ln^2(k) at k = 10
    eta_ratio: float = 10.0     # eta'/eta of eq. (4.3)
    students: int = 2           # students per teacher (paired inits across teacher and control)
    eta_ntk: float = 32.0       # NTK step, in units of 1 / (mean tangent-kernel diagonal)
    ntk_steps: int = 500
    record_every: int = 50
    chunk: int = 0              # samples per chunk in forward/backward (0: all at once)
    seeds: int = 2              # data seeds a chapter reports (mean and spread)

    def __post_init__(self):
        check_range("N", self.N, 1, None, integer=True)
        check_range("n_test", self.n_test, 1, None, integer=True)
        check_range("K", self.K, 1, None, integer=True)
        check_range("eta", self.eta, 1e-12, None)
        check_range("steps", self.steps, 0, None, integer=True)
        if self.kd not in KD_FORMS:
            raise ValueError(f"kd must be one of {KD_FORMS}, got {self.kd!r}")
        check_range("T", self.T, 1e-3, None)
        check_range("kd_weight", self.kd_weight, 0.0, None)
        check_range("tau", self.tau, 1e-6, None)
        check_range("eta_ratio", self.eta_ratio, 0.0, None)
        check_range("students", self.students, 1, None, integer=True)
        check_range("eta_ntk", self.eta_ntk, 1e-12, None)
        check_range("ntk_steps", self.ntk_steps, 0, None, integer=True)
        check_range("record_every", self.record_every, 0, None, integer=True)
        check_range("chunk", self.chunk, 0, None, integer=True)
        check_range("seeds", self.seeds, 1, None, integer=True)


def parameter_names(cfg: ExperimentConfig) -> list[str]:
    """Every overridable name: the fields of data, learner and the experiment itself."""
    return ([f.name for f in fields(cfg.data)] + [f.name for f in fields(cfg.learner)]
            + [f.name for f in fields(cfg) if f.name not in ("data", "learner")])


def _parse(current, raw):
    if isinstance(raw, str) and not isinstance(current, str):
        try:
            return type(current)(float(raw)) if isinstance(current, int) and float(raw).is_integer() else type(current)(raw)
        except ValueError:
            raise ValueError(f"cannot read {raw!r} as {type(current).__name__}") from None
    return raw


def with_overrides(cfg: ExperimentConfig, overrides: dict) -> ExperimentConfig:
    """A copy of cfg with parameters replaced by name (``{"k": 12, "mu": "0.15"}``); strings are
    converted to the field's type. Unknown names raise ValueError listing the known ones."""
    parts = {"data": {}, "learner": {}, "top": {}}
    for name, raw in overrides.items():
        for part, obj in (("data", cfg.data), ("learner", cfg.learner), ("top", cfg)):
            if name in {f.name for f in fields(obj)} and name not in ("data", "learner"):
                try:
                    parts[part][name] = _parse(getattr(obj, name), raw)
                except ValueError as e:
                    raise ValueError(f"{name}: {e}") from None
                break
        else:
            raise ValueError(f"unknown parameter {name!r}; known: {', '.join(parameter_names(cfg))}")
    return replace(cfg, data=replace(cfg.data, **parts["data"]), learner=replace(cfg.learner, **parts["learner"]),
                   **parts["top"])


def as_dict(cfg: ExperimentConfig) -> dict:
    """Flat {name: value} of every parameter (the JSON's "config")."""
    out = {f.name: getattr(cfg.data, f.name) for f in fields(cfg.data)}
    out.update({f.name: getattr(cfg.learner, f.name) for f in fields(cfg.learner)})
    out.update({f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name not in ("data", "learner")})
    return out


def default_device() -> torch.device:
    """CUDA when present, CPU otherwise; chosen once, used for every tensor."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def rng(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one purpose (stream) of one seed; CPU so results match across devices."""
    return torch.Generator().manual_seed(seed * 7919 + stream)


STREAM_DATA, STREAM_MEMBERS, STREAM_STUDENTS, STREAM_AVERAGE, STREAM_NTK_STUDENTS = range(5)


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
    return Data(train.to(device), sample(cfg.data, cfg.n_test, V, g, "multi").to(device),
                sample(cfg.data, cfg.n_test, V, g, "single").to(device))


@dataclass
class Trained:
    """K trained members of one learner: weights (K, k, m, d), their init and history."""

    model: object
    W0: torch.Tensor
    W: torch.Tensor
    history: History

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        return self.model.logits(self.W, X)

    def select(self, members: slice) -> "Trained":
        h = History(self.history.step, *(v[:, members] if v.numel() else v for v in
                                         (self.history.loss, self.history.train_acc, self.history.Phi)))
        return Trained(self.model.select(members), self.W0[members], self.W[members], h)


def scores(F_train, F_multi, F_single, data: Data, mu: float) -> dict[str, torch.Tensor]:
    """Per-member accuracies: train, multi-view test, single-view test, overall on D."""
    mv, sv = accuracy(F_multi, data.test_multi.y), accuracy(F_single, data.test_single.y)
    return {"train": accuracy(F_train, data.train.y), "multi_view": mv, "single_view": sv,
            "overall": overall(mv, sv, mu)}


def evaluate(trained: Trained, data: Data, mu: float, ensemble: bool = False) -> dict[str, torch.Tensor]:
    """Accuracies of each member (K,), or of their output average G = (1/K) sum F (eq. 4.1)."""
    Fs = [trained.logits(d.X) for d in (data.train, data.test_multi, data.test_single)]
    if ensemble:
        Fs = [F.mean(0, keepdim=True) for F in Fs]
    return scores(*Fs, data, mu)


def _train(cfg, model, W0, data, loss, eta, steps, progress):
    W, hist = gradient_descent(model, W0, data.train.X, data.train.y, loss, eta, steps, V=data.V,
                               record_every=cfg.record_every, progress=progress)
    return Trained(model, W0, W, hist)


def _init(cfg: ExperimentConfig, K: int, seed: int, stream: int, device):
    return init_weights(cfg.learner, K, cfg.data.k, cfg.data.d, rng(seed, stream), device)


def train_ensemble(cfg: ExperimentConfig, data: Data, seed: int, K: int | None = None,
                   progress: Callable | None = None) -> Trained:
    """K independently initialised single models trained by GD on cross-entropy (Theorem 1);
    their output average is the ensemble (eq. 4.1, Theorem 2)."""
    K = K or cfg.K
    W0 = _init(cfg, K, seed, STREAM_MEMBERS, data.train.X.device)
    return _train(cfg, Network(cfg.learner, cfg.chunk), W0, data, losses.cross_entropy(data.train.y),
                  cfg.eta, cfg.steps, progress)


def train_average(cfg: ExperimentConfig, data: Data, seed: int, K: int | None = None,
                  progress: Callable | None = None, linearised: bool = False) -> Trained:
    """One model F = (1/K) sum_l f_l trained jointly from scratch (Message 4). The step is K * eta
    so each member moves as fast as a single model at the same loss gradient."""
    K = K or cfg.K
    W0 = _init(cfg, K, seed, STREAM_AVERAGE, data.train.X.device)
    model, eta, steps = _learner(cfg, W0, data, linearised)
    return _train(cfg, model, W0, data, losses.averaged(losses.cross_entropy(data.train.y), K),
                  K * eta, steps, progress)


def _learner(cfg, W0, data, linearised):
    """(model, per-member step size, steps) of the network or its NTK linearisation at W0."""
    if not linearised:
        return Network(cfg.learner, cfg.chunk), cfg.eta, cfg.steps
    model = Linearised(cfg.learner, W0, data.train.X, cfg.chunk)
    return model, cfg.eta_ntk / model.kernel_scale(), cfg.ntk_steps


def train_linearised(cfg: ExperimentConfig, data: Data, W0: torch.Tensor,
                     progress: Callable | None = None) -> Trained:
    """The NTK model around W0 (the networks' own initialisation) trained by the same GD."""
    model, eta, steps = _learner(cfg, W0, data, True)
    return _train(cfg, model, W0, data, losses.cross_entropy(data.train.y), eta, steps, progress)


def distillation_loss(cfg: ExperimentConfig, y: torch.Tensor, G: torch.Tensor, kd: str | None = None):
    """The distillation objective towards teacher logits G: eq. (4.3) or Hinton's form."""
    if (kd or cfg.kd) == "eq43":
        return losses.distill_eq43(y, G, cfg.tau, cfg.eta_ratio)
    return losses.distill_hinton(y, G, cfg.T, cfg.kd_weight)


def train_students(cfg: ExperimentConfig, data: Data, teachers: dict[str, torch.Tensor], seed: int,
                   kd: str | None = None, linearised: bool = False,
                   progress: Callable | None = None) -> dict[str, Trained]:
    """cfg.students fresh students per teacher (logits on the training set, (N, k)), all trained
    in one batch. Students of different teachers share their initialisations, so a teacher and
    its control are compared on the same students (paired)."""
    S, names = cfg.students, list(teachers)
    device = data.train.X.device
    W0 = _init(cfg, S, seed, STREAM_NTK_STUDENTS if linearised else STREAM_STUDENTS, device).repeat(len(names), 1, 1, 1)
    G = torch.cat([teachers[n].expand(S, -1, -1) for n in names])
    model, eta, steps = _learner(cfg, W0, data, linearised)
    trained = _train(cfg, model, W0, data, distillation_loss(cfg, data.train.y, G, kd), eta, steps, progress)
    return {n: trained.select(slice(j * S, (j + 1) * S)) for j, n in enumerate(names)}


def with_control(teachers: dict[str, torch.Tensor], y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each teacher beside its flat control (``NAME_control``: no dark knowledge)."""
    out = {}
    for name, G in teachers.items():
        out[name], out[f"{name}_control"] = G, losses.flat_teacher(G, y)
    return out


def reproduce(cfg: ExperimentConfig, seed: int, device=None, progress: Callable | None = None) -> dict:
    """Every method of the headline table on data seed ``seed``:
    ``{method: {"train", "multi_view", "single_view", "overall"}}`` (floats; members averaged)."""
    data = make_data(cfg, seed, device)
    mu = cfg.data.mu
    res = {}
    members = train_ensemble(cfg, data, seed, progress=progress)
    res["single"], res["ensemble"] = evaluate(members, data, mu), evaluate(members, data, mu, ensemble=True)
    X = data.train.X
    teachers = with_control({"distill": members.logits(X).mean(0), "self_distill": members.logits(X)[0]},
                            data.train.y)
    for name, st in train_students(cfg, data, teachers, seed, progress=progress).items():
        res[name] = evaluate(st, data, mu)
    res["train_average"] = evaluate(train_average(cfg, data, seed, progress=progress), data, mu, ensemble=True)

    ntk = train_linearised(cfg, data, members.W0, progress)
    res["ntk_single"], res["ntk_ensemble"] = evaluate(ntk, data, mu), evaluate(ntk, data, mu, ensemble=True)
    res["ntk_train_average"] = evaluate(train_average(cfg, data, seed, progress=progress, linearised=True),
                                        data, mu, ensemble=True)
    ntk_students = train_students(cfg, data, {"ntk_distill": ntk.logits(X).mean(0)}, seed, linearised=True,
                                  progress=progress)
    res["ntk_distill"] = evaluate(ntk_students["ntk_distill"], data, mu)
    return {m: {key: float(v.mean()) for key, v in res[m].items()} for m in METHODS}


def progress_total(cfg: ExperimentConfig) -> int:
    """GD steps ``reproduce`` runs (for a progress bar)."""
    return 3 * cfg.steps + 3 * cfg.ntk_steps
