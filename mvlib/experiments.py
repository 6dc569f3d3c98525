"""The paper's experiments, batched: config -> data -> train (K seeds at once) -> evaluate.

``reproduce`` runs every method of the headline table on one data seed; the chapters call the
pieces (``make_data``, ``train_ensemble``, ``train_students`` ...) to show each mechanism.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

import torch

from mvlib import losses, teachers
from mvlib._validate import check_range
from mvlib.cache import cached
from mvlib.data import MultiViewConfig, MultiViewData, features, sample
from mvlib.metrics import accuracy, learned_views_behaviour, overall
from mvlib.model import LearnerConfig, Linearised, Network, init_weights
from mvlib.stats import mean_ci
from mvlib.train import History, gradient_descent

METHODS = (
    "single",
    "ensemble",
    "distill",
    "distill_control",
    "distill_onehot",
    "distill_permuted",
    "self_distill",
    "self_distill_control",
    "self_distill_onehot",
    "self_distill_permuted",
    "self_distill_continue",
    "self_distill_scratch",
    "train_average",
    "train_sum",
    "ntk_single",
    "ntk_ensemble",
    "ntk_train_average",
    "ntk_distill",
    "ntk_distill_control",
    "ntk_distill_onehot",
    "ntk_distill_permuted",
)
KD_FORMS = ("hinton", "eq43", "eq43_capped")
# target suffix of mvlib.teachers -> method suffix
_TARGET_METHOD = {"": "", "_control": "_control", "_onehot": "_onehot", "_permuted": "_permuted"}


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one run needs. ``data`` and ``learner`` follow the paper's definitions; the
    rest sets training (eq. 3.1), distillation (eq. 4.3 or Hinton's form) and the NTK contrast."""

    data: MultiViewConfig = field(default_factory=MultiViewConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    N: int = 600  # training samples
    n_test: int = 2000  # test samples of each view type
    K: int = 10  # ensemble members
    eta: float = 3.0  # GD step size, eq. (3.1)
    steps: int = 1000  # GD steps, for every network trainer
    kd: str = "hinton"  # distillation form of the headline: "hinton" or "eq43"
    T: float = 8.0  # Hinton temperature
    kd_weight: float = 1.0  # weight of the T^2 KL term beside cross-entropy
    tau: float = 0.19  # eq. (4.2) truncation scale, 1/ln^2(k) at k = 10
    eta_ratio: float = 10.0  # eta'/eta of eq. (4.3)
    teacher_scale: float = 1.0  # eq. (4.1)'s Theta~(1) factor on the teacher of eq. (4.3)
    students: int = 2  # students per teacher (paired inits across teacher and controls)
    sd_kd: str = "eq43"  # self-distillation form (Theorem 4's: eq. 4.3; or eq43_capped, hinton)
    sd_steps: int = 600  # T': distillation steps after the student's own T = steps
    eta_ntk: float = 32.0  # NTK step, in units of 1 / (mean tangent-kernel diagonal)
    ntk_steps: int = 500
    record_every: int = 50
    chunk: int = 0  # samples per chunk in forward/backward (0: all at once)
    seeds: int = 2  # data seeds a chapter reports (mean and spread)

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
        check_range("teacher_scale", self.teacher_scale, 1e-3, None)
        check_range("students", self.students, 1, None, integer=True)
        if self.sd_kd not in KD_FORMS:
            raise ValueError(f"sd_kd must be one of {KD_FORMS}, got {self.sd_kd!r}")
        check_range("sd_steps", self.sd_steps, 0, None, integer=True)
        check_range("eta_ntk", self.eta_ntk, 1e-12, None)
        check_range("ntk_steps", self.ntk_steps, 0, None, integer=True)
        check_range("record_every", self.record_every, 0, None, integer=True)
        check_range("chunk", self.chunk, 0, None, integer=True)
        check_range("seeds", self.seeds, 1, None, integer=True)


def parameter_names(cfg: ExperimentConfig) -> list[str]:
    """Every overridable name: the fields of data, learner and the experiment itself."""
    return (
        [f.name for f in fields(cfg.data)]
        + [f.name for f in fields(cfg.learner)]
        + [f.name for f in fields(cfg) if f.name not in ("data", "learner")]
    )


def _parse(current, raw):
    if isinstance(raw, str) and not isinstance(current, str):
        try:
            return (
                type(current)(float(raw))
                if isinstance(current, int) and float(raw).is_integer()
                else type(current)(raw)
            )
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
            raise ValueError(
                f"unknown parameter {name!r}; known: {', '.join(parameter_names(cfg))}"
            )
    return replace(
        cfg,
        data=replace(cfg.data, **parts["data"]),
        learner=replace(cfg.learner, **parts["learner"]),
        **parts["top"],
    )


def as_dict(cfg: ExperimentConfig) -> dict:
    """Flat {name: value} of every parameter (the JSON's "config")."""
    out = {f.name: getattr(cfg.data, f.name) for f in fields(cfg.data)}
    out.update({f.name: getattr(cfg.learner, f.name) for f in fields(cfg.learner)})
    out.update(
        {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name not in ("data", "learner")}
    )
    return out


def default_device() -> torch.device:
    """CUDA when present, CPU otherwise; chosen once, used for every tensor."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def rng(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one purpose (stream) of one seed; CPU so results match across devices."""
    return torch.Generator().manual_seed(seed * 7919 + stream)


(
    STREAM_DATA,
    STREAM_MEMBERS,
    STREAM_STUDENTS,
    STREAM_AVERAGE,
    STREAM_NTK_STUDENTS,
    STREAM_SUM,
    STREAM_PERMUTE,
) = range(7)


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


# ----------------------------------------------------------------------------- trainers
# Each takes the data and returns a Trained; the cached units below compose them per (cfg, seed).


def _train(cfg, model, W0, data, loss, eta, steps, progress=None, hint=""):
    """GD with the single-view test accuracy recorded over iterations (Theorem 3 speaks of
    "at least 90% of the iterations")."""
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


def _init(cfg: ExperimentConfig, K: int, seed: int, stream: int, device, m: int | None = None):
    learner = cfg.learner if m is None else replace(cfg.learner, m=m)
    return init_weights(learner, K, cfg.data.k, cfg.data.d, rng(seed, stream), device)


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
    W0 = _init(cfg, K, seed, STREAM_MEMBERS, data.train.X.device)
    return _train(
        cfg,
        Network(cfg.learner, cfg.chunk),
        W0,
        data,
        losses.cross_entropy(data.train.y),
        cfg.eta,
        cfg.steps,
        progress,
    )


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
    W0 = _init(cfg, K, seed, STREAM_AVERAGE, data.train.X.device)
    model, eta, steps = _learner(cfg, W0, data, linearised)
    return _train(
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
    W0 = _init(cfg, K, seed, STREAM_SUM, data.train.X.device)
    return _train(
        cfg,
        Network(cfg.learner, cfg.chunk),
        W0,
        data,
        losses.summed(losses.cross_entropy(data.train.y), K),
        cfg.eta,
        cfg.steps,
        progress,
    )


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
    return _train(cfg, model, W0, data, losses.cross_entropy(data.train.y), eta, steps, progress)


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
    W0 = _init(cfg, S, seed, STREAM_NTK_STUDENTS if linearised else STREAM_STUDENTS, device)
    W0 = W0.repeat(len(names), 1, 1, 1)
    G = torch.cat([teachers[n].expand(S, -1, -1) for n in names])
    model, eta, steps = _learner(cfg, W0, data, linearised)
    trained = _train(
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
    trained = _train(
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


def distill_targets(
    G: torch.Tensor, y: torch.Tensor, prefix: str, seed: int
) -> dict[str, torch.Tensor]:
    """The real teacher G (N, k) and its three controls, named ``prefix + suffix``."""
    return {
        prefix + suffix: T
        for suffix, T in teachers.targets(G, y, rng(seed, STREAM_PERMUTE)).items()
    }


# ----------------------------------------------------------------------------- cached units
# One unit per trained artefact, cached on (the config fields it depends on, seed). Fields it does
# not depend on are reset to their defaults in the key, so e.g. every temperature of a sweep
# reuses the same trained ensemble. Each returns Runs on the CPU; the public functions rebuild
# the learner on the current device.

# n_test: the histories record single-view test accuracy over iterations.
_TRAIN_FIELDS = ("data", "learner", "N", "n_test", "eta", "steps", "record_every", "chunk")
_NTK_FIELDS = (
    "data",
    "learner",
    "N",
    "n_test",
    "K",
    "eta_ntk",
    "ntk_steps",
    "record_every",
    "chunk",
)
_KD_FIELDS = ("kd", "T", "kd_weight", "tau", "eta_ratio", "teacher_scale", "students")
_UNIT_FIELDS = {
    "members": _TRAIN_FIELDS + ("K",),
    "distill": _TRAIN_FIELDS + ("K",) + _KD_FIELDS,
    "self_distill": _TRAIN_FIELDS + ("K",) + _KD_FIELDS + ("sd_kd", "sd_steps"),
    "scratch": _TRAIN_FIELDS + ("K",) + _KD_FIELDS + ("sd_kd",),
    "average": _TRAIN_FIELDS + ("K",),
    "sum": _TRAIN_FIELDS + ("K",),
    "ntk": _NTK_FIELDS,
    "ntk_average": _NTK_FIELDS,
    "ntk_distill": _NTK_FIELDS + _KD_FIELDS,
}
_DEFAULT = None


def unit_key(cfg: ExperimentConfig, unit: str) -> ExperimentConfig:
    """cfg with every field that ``unit`` does not depend on reset to its default."""
    global _DEFAULT
    _DEFAULT = _DEFAULT or ExperimentConfig()
    keep = _UNIT_FIELDS[unit]
    return replace(
        cfg, **{f.name: getattr(_DEFAULT, f.name) for f in fields(cfg) if f.name not in keep}
    )


@dataclass
class Run:
    """What the cache stores of a Trained: weights and history on the CPU."""

    W0: torch.Tensor
    W: torch.Tensor
    history: History

    @staticmethod
    def of(t: Trained) -> Run:
        return Run(t.W0.cpu(), t.W.cpu(), t.history)


def _runs(d: dict[str, Trained]) -> dict[str, Run]:
    return {n: Run.of(t) for n, t in d.items()}


@cached
def _members_unit(cfg, seed):
    return Run.of(train_ensemble(cfg, make_data(cfg, seed), seed))


@cached
def _distill_unit(cfg, seed):
    data = make_data(cfg, seed)
    G = members(cfg, seed, data).logits(data.train.X).mean(0)
    return _runs(train_students(cfg, data, distill_targets(G, data.train.y, "distill", seed), seed))


def _check_self_distill(cfg):
    if cfg.K < cfg.students + 1:
        raise ValueError(
            f"K must be >= students + 1 = {cfg.students + 1} for self-distillation "
            f"(member 0 teaches, members 1..students learn), got K={cfg.K}"
        )


# Phase two's runs: toward member 0, its three controls, and the cross-entropy continuation.
SD_TARGETS = (
    "self_distill",
    "self_distill_control",
    "self_distill_onehot",
    "self_distill_permuted",
    "self_distill_continue",
)


@cached
def _self_distill_unit(cfg, seed, targets):
    _check_self_distill(cfg)
    data = make_data(cfg, seed)
    team = members(cfg, seed, data)
    G = team.logits(data.train.X)[0]
    every = {
        **distill_targets(G, data.train.y, "self_distill", seed),
        "self_distill_continue": None,
    }
    students = team.W[1 : cfg.students + 1]
    return _runs(continue_students(cfg, data, students, {n: every[n] for n in targets}))


@cached
def _scratch_unit(cfg, seed):
    _check_self_distill(cfg)
    data = make_data(cfg, seed)
    G = members(cfg, seed, data).logits(data.train.X)[0]
    return _runs(train_students(cfg, data, {"self_distill_scratch": G}, seed, kd=cfg.sd_kd))


@cached
def _average_unit(cfg, seed):
    return Run.of(train_average(cfg, make_data(cfg, seed), seed))


@cached
def _sum_unit(cfg, seed):
    return Run.of(train_sum(cfg, make_data(cfg, seed), seed))


@cached
def _ntk_unit(cfg, seed):
    data = make_data(cfg, seed)
    return Run.of(
        train_linearised(cfg, data, _init(cfg, cfg.K, seed, STREAM_MEMBERS, data.train.X.device))
    )


@cached
def _ntk_average_unit(cfg, seed):
    return Run.of(train_average(cfg, make_data(cfg, seed), seed, linearised=True))


@cached
def _ntk_distill_unit(cfg, seed):
    data = make_data(cfg, seed)
    G = _linearised(cfg, _ntk_unit(unit_key(cfg, "ntk"), seed), data).logits(data.train.X).mean(0)
    return _runs(
        train_students(
            cfg, data, distill_targets(G, data.train.y, "ntk_distill", seed), seed, linearised=True
        )
    )


def _network(cfg, run: Run, data: Data) -> Trained:
    dev = data.train.X.device
    return Trained(Network(cfg.learner, cfg.chunk), run.W0.to(dev), run.W.to(dev), run.history)


def _linearised(cfg, run: Run, data: Data) -> Trained:
    dev = data.train.X.device
    W0 = run.W0.to(dev)
    return Trained(
        Linearised(cfg.learner, W0, data.train.X, cfg.chunk), W0, run.W.to(dev), run.history
    )


def members(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> Trained:
    """The K trained members of seed (cached): the single models and the ensemble's members."""
    return _network(
        cfg, _members_unit(unit_key(cfg, "members"), seed), data or make_data(cfg, seed)
    )


def distill_students(
    cfg: ExperimentConfig, seed: int, data: Data | None = None
) -> dict[str, Trained]:
    """cfg.students students of the ensemble per target (cached): ``distill`` (the real teacher),
    ``distill_control`` (flat), ``distill_onehot``, ``distill_permuted``; paired inits."""
    data = data or make_data(cfg, seed)
    return {
        n: _network(cfg, r, data) for n, r in _distill_unit(unit_key(cfg, "distill"), seed).items()
    }


def self_distill_students(
    cfg: ExperimentConfig,
    seed: int,
    data: Data | None = None,
    targets: tuple[str, ...] = SD_TARGETS,
) -> dict[str, Trained]:
    """Two-phase self-distillation (Theorem 4, cached): members 1..students, each trained on its
    own for T = cfg.steps, continue cfg.sd_steps steps toward member 0 with cfg.sd_kd:
    ``self_distill`` (real teacher), ``_control``, ``_onehot``, ``_permuted``, and
    ``self_distill_continue`` (cross-entropy alone). ``targets`` (a subset of SD_TARGETS) trains
    only those runs; they train in one batch, so a subset's students can differ from the full
    batch's in the last bits of their floating-point sums."""
    unknown = set(targets) - set(SD_TARGETS)
    if not targets or unknown:
        raise ValueError(f"targets must be a non-empty subset of {SD_TARGETS}, got {targets}")
    data = data or make_data(cfg, seed)
    batch = tuple(n for n in SD_TARGETS if n in targets)  # one order: one key, one batch
    units = _self_distill_unit(unit_key(cfg, "self_distill"), seed, batch)
    return {n: _network(cfg, r, data) for n, r in units.items()}


def scratch_students(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> Trained:
    """Born-again students (cached): fresh models distilled from member 0 with cfg.sd_kd."""
    data = data or make_data(cfg, seed)
    run = _scratch_unit(unit_key(cfg, "scratch"), seed)["self_distill_scratch"]
    return _network(cfg, run, data)


def trained_average(
    cfg: ExperimentConfig, seed: int, data: Data | None = None, linearised: bool = False
) -> Trained:
    """:func:`train_average`, cached (network or NTK)."""
    data = data or make_data(cfg, seed)
    if linearised:
        return _linearised(cfg, _ntk_average_unit(unit_key(cfg, "ntk_average"), seed), data)
    return _network(cfg, _average_unit(unit_key(cfg, "average"), seed), data)


def trained_sum(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> Trained:
    """:func:`train_sum`, cached."""
    return _network(cfg, _sum_unit(unit_key(cfg, "sum"), seed), data or make_data(cfg, seed))


def ntk_members(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> Trained:
    """The K members linearised at their own initialisation and trained (cached)."""
    return _linearised(cfg, _ntk_unit(unit_key(cfg, "ntk"), seed), data or make_data(cfg, seed))


def ntk_students(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> dict[str, Trained]:
    """Linearised students of the NTK ensemble per target (cached), as distill_students."""
    data = data or make_data(cfg, seed)
    return {
        n: _linearised(cfg, r, data)
        for n, r in _ntk_distill_unit(unit_key(cfg, "ntk_distill"), seed).items()
    }


# ----------------------------------------------------------------------------- the headline

_METHOD_UNIT = {
    "single": "members",
    "ensemble": "members",
    "train_average": "average",
    "train_sum": "sum",
    "self_distill_scratch": "scratch",
    "ntk_single": "ntk",
    "ntk_ensemble": "ntk",
    "ntk_train_average": "ntk_average",
}


def method_unit(method: str) -> str:
    """The cached unit that trains ``method``."""
    if method in _METHOD_UNIT:
        return _METHOD_UNIT[method]
    for prefix in ("ntk_distill", "self_distill", "distill"):
        if method.startswith(prefix):
            return prefix
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def _unit_steps(cfg: ExperimentConfig, unit: str) -> int:
    return {
        "self_distill": cfg.sd_steps,
        "ntk": cfg.ntk_steps,
        "ntk_average": cfg.ntk_steps,
        "ntk_distill": cfg.ntk_steps,
    }.get(unit, cfg.steps)


def progress_total(cfg: ExperimentConfig, methods=METHODS) -> int:
    """GD steps ``reproduce`` runs for these methods (for a progress bar)."""
    return sum(_unit_steps(cfg, u) for u in {method_unit(m) for m in methods})


def reproduce(
    cfg: ExperimentConfig, seed: int, device=None, progress: Callable | None = None, methods=None
) -> dict:
    """The methods of the headline table (default: all of METHODS) on data seed ``seed``:
    ``{method: {"train", "multi_view", "single_view", "overall", "both_views"}}`` (floats;
    members averaged). Trains only the units those methods need, each cached on disk."""
    methods = tuple(METHODS if methods is None else methods)
    units = {method_unit(m) for m in methods}  # raises on an unknown method
    data = make_data(cfg, seed, device)
    mu, res = cfg.data.mu, {}
    for unit in [u for u in _UNIT_FIELDS if u in units]:
        if unit == "members":
            m = members(cfg, seed, data)
            res["single"], res["ensemble"] = (
                evaluate(m, data, mu),
                evaluate(m, data, mu, ensemble=True),
            )
        elif unit == "ntk":
            m = ntk_members(cfg, seed, data)
            res["ntk_single"], res["ntk_ensemble"] = (
                evaluate(m, data, mu),
                evaluate(m, data, mu, ensemble=True),
            )
        elif unit in ("average", "ntk_average"):
            res[f"{'ntk_' if unit == 'ntk_average' else ''}train_average"] = evaluate(
                trained_average(cfg, seed, data, linearised=unit == "ntk_average"),
                data,
                mu,
                ensemble=True,
            )
        elif unit == "sum":
            res["train_sum"] = evaluate(trained_sum(cfg, seed, data), data, mu, ensemble=True)
        elif unit == "scratch":
            res["self_distill_scratch"] = evaluate(scratch_students(cfg, seed, data), data, mu)
        else:
            fn = {
                "distill": distill_students,
                "self_distill": self_distill_students,
                "ntk_distill": ntk_students,
            }[unit]
            res.update({n: evaluate(t, data, mu) for n, t in fn(cfg, seed, data).items()})
        if progress is not None:
            progress(_unit_steps(cfg, unit))
    return {m: {key: float(v.mean()) for key, v in res[m].items()} for m in methods}


# ----- Message 4: the sum, the average and the width
# Def. 3.4 sums over neurons, so the sum of K members of width m is one model of width M = K * m
# (its K * m neurons drawn at sigma0 member by member). Models of several widths therefore train
# in one batch, as groups of members, each group trained as one sum (as train_sum).

STREAM_WIDTH = STREAM_PERMUTE + 1


def grouped_sum(loss: Callable, sizes: tuple[int, ...]) -> Callable:
    """Several sums in one batch: the members form consecutive groups of ``sizes`` (G groups);
    group g is one model F_g = sum of its members and each member receives dL/dF_g of its group
    (:func:`mvlib.losses.summed`, once per group). ``loss`` sees the groups' logits (G, n, k)."""
    group = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))

    def wrapped(F, s):
        g = group.to(F.device)
        value, grad = loss(F.new_zeros(len(sizes), *F.shape[1:]).index_add_(0, g, F), s)
        return value[g], grad[g]

    return wrapped


def width_sizes(cfg: ExperimentConfig, widths) -> tuple[int, ...]:
    """Members per model: M / m for each width M (neurons per class, a multiple of m)."""
    m = cfg.learner.m
    if len(widths) == 0:
        raise ValueError("widths must name at least one width")
    for M in widths:
        check_range("width", M, m, None, integer=True, why="neurons per class, a multiple of m")
        if M % m:
            raise ValueError(f"width must be a multiple of m = {m}, got {M}")
    return tuple(M // m for M in widths)


def train_widths(
    cfg: ExperimentConfig,
    data: Data,
    seed: int,
    widths: tuple[int, ...],
    progress: Callable | None = None,
) -> list[Trained]:
    """Single models of widths M (neurons per class; repeat a width for independent draws),
    trained by GD on cross-entropy with step eta (eq. 3.1), all in one batch. Model j is the sum
    of M_j / m members, exactly :func:`train_sum` with K = M_j / m. Returns one Trained per
    width, W (M_j / m, k, m, d); evaluate it with ``ensemble=True`` (the mean ranks as the sum)."""
    sizes = width_sizes(cfg, widths)
    W0 = _init(cfg, sum(sizes), seed, STREAM_WIDTH, data.train.X.device)
    trained = _train(
        cfg,
        Network(cfg.learner, cfg.chunk),
        W0,
        data,
        grouped_sum(losses.cross_entropy(data.train.y), sizes),
        cfg.eta,
        cfg.steps,
        progress,
    )
    ends = torch.tensor(sizes).cumsum(0).tolist()
    return [trained.select(slice(end - K, end)) for K, end in zip(sizes, ends)]


def width_key(cfg: ExperimentConfig) -> ExperimentConfig:
    """The cache key of :func:`wide_models`: the members' fields with K at its default (the
    widths, not K, set the models)."""
    return replace(unit_key(cfg, "members"), K=ExperimentConfig.K)


@cached
def _widths_unit(cfg, seed, widths):
    return [Run.of(t) for t in train_widths(cfg, make_data(cfg, seed), seed, widths)]


def wide_models(
    cfg: ExperimentConfig, seed: int, widths: tuple[int, ...], data: Data | None = None
) -> list[Trained]:
    """:func:`train_widths`, cached."""
    data = data or make_data(cfg, seed)
    return [_network(cfg, r, data) for r in _widths_unit(width_key(cfg), seed, tuple(widths))]


def message4_rows(
    cfg: ExperimentConfig, seed: int, widths: tuple[int, ...] = (), data: Data | None = None
) -> list[dict]:
    """Every model of Message 4's comparison on data seed ``seed``, one row per trained model:
    ``{"seed", "model", "width", "draw", "train", "multi_view", "single_view", "overall",
    "both_views"}``, ``width`` in neurons per class. Models: "single model" (each of the K
    members at width m, then :func:`wide_models` at ``widths``), "ensemble" (eq. 4.1),
    "trained sum" and "trained average" (K members jointly, K * m neurons per class)."""
    data = data or make_data(cfg, seed)
    mu, m, K = cfg.data.mu, cfg.learner.m, cfg.K
    team = members(cfg, seed, data)
    models = [
        ("single model", m, evaluate(team, data, mu)),
        ("ensemble", K * m, evaluate(team, data, mu, ensemble=True)),
        ("trained sum", K * m, evaluate(trained_sum(cfg, seed, data), data, mu, True)),
        ("trained average", K * m, evaluate(trained_average(cfg, seed, data), data, mu, True)),
    ]
    if widths:
        models += [
            ("single model", M, evaluate(t, data, mu, ensemble=True))
            for M, t in zip(widths, wide_models(cfg, seed, widths, data))
        ]
    rows, draws = [], {}
    for name, width, res in models:
        for j in range(len(res["single_view"])):
            draw = draws[name, width] = draws.get((name, width), -1) + 1
            rows.append(
                {
                    "seed": seed,
                    "model": name,
                    "width": width,
                    "draw": draw,
                    **{key: float(v[j]) for key, v in res.items()},
                }
            )
    return rows


def width_curve(rows: list[dict], m: int, metric: str = "single_view") -> list[dict]:
    """The single models of each width M (rows of :func:`message4_rows`), ascending:
    ``{"width", "n", "mean", "interval", "min", "max", "holds"}``, the interval a 95% t-interval
    over draws (:func:`mvlib.stats.mean_ci`). ``holds`` is Message 4 at width M: the mean lies
    within [min, max] of the single models of width m, so a sum of M / m members is no better
    than one member."""
    by_width = {}
    for r in rows:
        if r["model"] == "single model":
            by_width.setdefault(r["width"], []).append(r[metric])
    if m not in by_width:
        raise ValueError(f"rows hold no single model of width m = {m}")
    lo, hi = min(by_width[m]), max(by_width[m])
    out = []
    for M in sorted(by_width):
        v, ci = by_width[M], mean_ci(by_width[M])
        out.append(
            {
                "width": M,
                "n": len(v),
                "mean": ci.mean,
                "interval": ci,
                "min": min(v),
                "max": max(v),
                "holds": lo <= ci.mean <= hi,
            }
        )
    return out
