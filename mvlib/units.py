"""The table of units: each trained result of the headline table, declared once.

A unit is one batch of training, cached on disk per (config, seed): the K members, the students
of the ensemble and of its controls, two-phase self-distillation, and so on. :func:`unit`
declares one on its trainer, as timm's ``register_model`` declares a model: the config fields
its result depends on, the field that counts its GD steps, and the methods it yields.
:data:`METHODS`, :func:`method_unit`, :func:`depends_on`, :func:`progress_total` and
:func:`reproduce` are read from :data:`UNITS`, so a new method is one entry and its trainer.

A trainer that needs another unit's result calls that unit's trainer by name (``members`` calls
``_members_unit``): the cache key follows names (:func:`mvlib.cache.code_hash`), not the table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch

from mvlib import teachers
from mvlib.cache import cached
from mvlib.config import STREAM_MEMBERS, STREAM_PERMUTE, ExperimentConfig, rng
from mvlib.metrics import accuracy_by_view, theorem4_bounds, union_rates
from mvlib.model import Linearised, Network
from mvlib.train import History, feature_magnitude
from mvlib.trainers import (
    Data,
    Trained,
    continue_students,
    evaluate,
    initial,
    make_data,
    teacher_link,
    train_average,
    train_ensemble,
    train_linearised,
    train_students,
    train_sum,
)

# What a network trainer reads: n_test too, since its history records single-view test accuracy.
TRAIN = ("data", "learner", "N", "n_test", "eta", "steps", "record_every", "chunk", "K")
NTK = ("data", "learner", "N", "n_test", "K", "eta_ntk", "ntk_steps", "record_every", "chunk")
KD = ("kd", "T", "kd_weight", "tau", "eta_ratio", "teacher_scale", "students")
# The runs toward a teacher and its controls, in the order of mvlib.teachers.targets.
DISTILL = ("distill", "distill_control", "distill_onehot", "distill_permuted")
NTK_DISTILL = ("ntk_distill", "ntk_distill_control", "ntk_distill_onehot", "ntk_distill_permuted")
# Phase two of self-distillation: toward member 0, its controls, and the continuation on
# cross-entropy alone (which separates more training from distillation).
SD_TARGETS = (
    "self_distill",
    "self_distill_control",
    "self_distill_onehot",
    "self_distill_permuted",
    "self_distill_continue",
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


@dataclass(frozen=True)
class Unit:
    """One unit of training. ``fields``: the config fields its result depends on. ``steps``: the
    field counting its GD steps. ``methods``: what it yields, in the headline table's order;
    those in ``averaged`` are scored as their members' output average (eq. 4.1), the others
    member by member. ``train(cfg, seed)``: the cached trainer, a Run shared by every method or
    ``{method: Run}``. ``linearised``: its runs are NTK models. ``extra(cfg, seed, data, runs)``:
    metrics beyond :func:`mvlib.trainers.evaluate`'s, ``{method: {metric: (members,)}}``."""

    name: str
    fields: tuple[str, ...]
    steps: str
    methods: tuple[str, ...]
    train: Callable
    averaged: tuple[str, ...] = ()
    linearised: bool = False
    extra: Callable | None = None

    def runs(self, cfg: ExperimentConfig, seed: int, data: Data) -> dict[str, Trained]:
        """The unit's trained models of ``seed`` by method, on the data's device (cached)."""
        rebuild = as_linearised if self.linearised else as_network
        out = self.train(cfg, seed)
        if isinstance(out, Run):  # one model set, rebuilt once for all of its methods
            return dict.fromkeys(self.methods, rebuild(cfg, out, data))
        return {m: rebuild(cfg, run, data) for m, run in out.items()}


UNITS: dict[str, Unit] = {}


def unit_key(cfg: ExperimentConfig, name: str) -> ExperimentConfig:
    """cfg with every field that unit ``name`` does not depend on reset to its default: every
    temperature of a sweep then reuses one trained ensemble."""
    keep, default = UNITS[name].fields, ExperimentConfig()
    return replace(
        cfg, **{f.name: getattr(default, f.name) for f in fields(cfg) if f.name not in keep}
    )


def unit(
    name: str, fields: tuple, steps: str, methods: tuple, averaged=(), linearised=False, extra=None
):
    """The decorator that declares its trainer ``fn(cfg, seed, ...)`` the unit ``name`` of
    :data:`UNITS` and returns it cached on disk under :func:`unit_key`, taking any config."""

    def register(fn):
        stored = cached(fn)

        @functools.wraps(fn)
        def train(cfg, seed, *args):
            return stored(unit_key(cfg, name), seed, *args)

        UNITS[name] = Unit(
            name, tuple(fields), steps, tuple(methods), train, averaged, linearised, extra
        )
        return train

    return register


def as_network(cfg, run: Run, data: Data) -> Trained:
    """The network of a cached Run, on the data's device."""
    dev = data.train.X.device
    return Trained(Network(cfg.learner, cfg.chunk), run.W0.to(dev), run.W.to(dev), run.history)


def as_linearised(cfg, run: Run, data: Data) -> Trained:
    """The NTK model of a cached Run, linearised at its W0, on the data's device."""
    dev = data.train.X.device
    W0 = run.W0.to(dev)
    return Trained(
        Linearised(cfg.learner, W0, data.train.X, cfg.chunk), W0, run.W.to(dev), run.history
    )


def _runs(trained: dict[str, Trained]) -> dict[str, Run]:
    return {n: Run.of(t) for n, t in trained.items()}


def _controls(
    cfg: ExperimentConfig, names: tuple[str, ...], G: torch.Tensor, y: torch.Tensor, seed: int, kd
) -> dict:
    """The real teacher G (N, k) and its three controls (:func:`mvlib.teachers.targets`), matched
    as ``cfg.controls`` says for the distillation form ``kd``, named by ``names``."""
    link = teacher_link(cfg, kd)
    return dict(zip(names, teachers.targets(G, y, rng(seed, STREAM_PERMUTE), link=link).values()))


def _check_self_distill(cfg):
    if cfg.K < cfg.students + 1:
        raise ValueError(
            f"K must be >= students + 1 = {cfg.students + 1} for self-distillation "
            f"(member 0 teaches, members 1..students learn), got K={cfg.K}"
        )


def _theorem4(cfg, seed, data: Data, runs: dict[str, Trained]) -> dict[str, dict]:
    """Theorem 4's conclusions beyond accuracy, per phase-two run (full version): its training
    margin and Phi against stated levels (:func:`mvlib.metrics.theorem4_bounds`) and the union,
    cell by cell, against member 0 (the teacher) and the students before phase two (members
    1..students; :func:`mvlib.metrics.union_rates`)."""
    team, single = members(cfg, seed, data), data.test_single
    teacher, before = (
        accuracy_by_view(t.logits(single.X), single)
        for t in (team.select(slice(0, 1)), team.select(slice(1, cfg.students + 1)))
    )
    out = {}
    for m, t in runs.items():
        Phi = feature_magnitude(t.W, data.V)
        union = union_rates(teacher, before, accuracy_by_view(t.logits(single.X), single))
        out[m] = {
            **theorem4_bounds(t.logits(data.train.X), data.train.y, Phi, cfg.tau),
            "union_teacher_only": union["teacher_only"],
            "union_neither": union["neither"],
        }
    return out


# ----------------------------------------------------------------------------- the table


@unit("members", TRAIN, "steps", ("single", "ensemble"), averaged=("ensemble",))
def _members_unit(cfg, seed):
    return Run.of(train_ensemble(cfg, make_data(cfg, seed), seed))


@unit("distill", TRAIN + KD + ("controls",), "steps", DISTILL)
def _distill_unit(cfg, seed):
    data = make_data(cfg, seed)
    G = members(cfg, seed, data).logits(data.train.X).mean(0)
    return _runs(
        train_students(cfg, data, _controls(cfg, DISTILL, G, data.train.y, seed, cfg.kd), seed)
    )


@unit(
    "self_distill",
    TRAIN + KD + ("controls", "sd_kd", "sd_steps"),
    "sd_steps",
    SD_TARGETS,
    extra=_theorem4,
)
def _self_distill_unit(cfg, seed, targets=SD_TARGETS):
    _check_self_distill(cfg)
    data = make_data(cfg, seed)
    team = members(cfg, seed, data)
    G = team.logits(data.train.X)[0]
    every = {
        **_controls(cfg, SD_TARGETS[:4], G, data.train.y, seed, cfg.sd_kd),
        "self_distill_continue": None,
    }
    students = team.W[1 : cfg.students + 1]
    return _runs(continue_students(cfg, data, students, {n: every[n] for n in targets}))


@unit("scratch", TRAIN + KD + ("sd_kd",), "steps", ("self_distill_scratch",))
def _scratch_unit(cfg, seed):
    _check_self_distill(cfg)
    data = make_data(cfg, seed)
    G = members(cfg, seed, data).logits(data.train.X)[0]
    (student,) = train_students(cfg, data, {"": G}, seed, kd=cfg.sd_kd).values()
    return Run.of(student)


@unit("average", TRAIN, "steps", ("train_average",), averaged=("train_average",))
def _average_unit(cfg, seed):
    return Run.of(train_average(cfg, make_data(cfg, seed), seed))


@unit("sum", TRAIN, "steps", ("train_sum",), averaged=("train_sum",))
def _sum_unit(cfg, seed):
    return Run.of(train_sum(cfg, make_data(cfg, seed), seed))


@unit(
    "ntk",
    NTK,
    "ntk_steps",
    ("ntk_single", "ntk_ensemble"),
    averaged=("ntk_ensemble",),
    linearised=True,
)
def _ntk_unit(cfg, seed):
    data = make_data(cfg, seed)
    return Run.of(
        train_linearised(cfg, data, initial(cfg, cfg.K, seed, STREAM_MEMBERS, data.train.X.device))
    )


@unit(
    "ntk_average",
    NTK,
    "ntk_steps",
    ("ntk_train_average",),
    averaged=("ntk_train_average",),
    linearised=True,
)
def _ntk_average_unit(cfg, seed):
    return Run.of(train_average(cfg, make_data(cfg, seed), seed, linearised=True))


@unit("ntk_distill", NTK + KD + ("controls",), "ntk_steps", NTK_DISTILL, linearised=True)
def _ntk_distill_unit(cfg, seed):
    data = make_data(cfg, seed)
    G = ntk_members(cfg, seed, data).logits(data.train.X).mean(0)
    targets = _controls(cfg, NTK_DISTILL, G, data.train.y, seed, cfg.kd)
    return _runs(train_students(cfg, data, targets, seed, linearised=True))


@unit("ntk_scratch", NTK + KD, "ntk_steps", ("ntk_self_distill",), linearised=True)
def _ntk_scratch_unit(cfg, seed):
    # Figure 6's kernel self-distillation (Message 3): fresh linearised students, on the NTK
    # students' initialisations, distilled from linearised member 0 with the ensemble's form
    data = make_data(cfg, seed)
    G = ntk_members(cfg, seed, data).logits(data.train.X)[0]
    (student,) = train_students(cfg, data, {"": G}, seed, linearised=True).values()
    return Run.of(student)


METHODS = tuple(m for u in UNITS.values() for m in u.methods)


# ----------------------------------------------------------------------------- the chapters' access


def members(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> Trained:
    """The K trained members of seed (cached): the single models and the ensemble's members."""
    return as_network(cfg, _members_unit(cfg, seed), data or make_data(cfg, seed))


def distill_students(
    cfg: ExperimentConfig, seed: int, data: Data | None = None
) -> dict[str, Trained]:
    """cfg.students students of the ensemble per target (cached): ``distill`` (the real teacher),
    ``distill_control`` (flat), ``distill_onehot``, ``distill_permuted``; paired inits."""
    data = data or make_data(cfg, seed)
    return {n: as_network(cfg, r, data) for n, r in _distill_unit(cfg, seed).items()}


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
    only those runs. They train in one batch, so a subset's students can differ from the full
    batch's in the last bits of their floating-point sums."""
    unknown = set(targets) - set(SD_TARGETS)
    if not targets or unknown:
        raise ValueError(f"targets must be a non-empty subset of {SD_TARGETS}, got {targets}")
    data = data or make_data(cfg, seed)
    batch = tuple(n for n in SD_TARGETS if n in targets)  # one order: one key, one batch
    return {n: as_network(cfg, r, data) for n, r in _self_distill_unit(cfg, seed, batch).items()}


def scratch_students(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> Trained:
    """Born-again students (cached): fresh models distilled from member 0 with cfg.sd_kd."""
    return as_network(cfg, _scratch_unit(cfg, seed), data or make_data(cfg, seed))


def trained_average(
    cfg: ExperimentConfig, seed: int, data: Data | None = None, linearised: bool = False
) -> Trained:
    """:func:`mvlib.trainers.train_average`, cached (network or NTK)."""
    data = data or make_data(cfg, seed)
    if linearised:
        return as_linearised(cfg, _ntk_average_unit(cfg, seed), data)
    return as_network(cfg, _average_unit(cfg, seed), data)


def trained_sum(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> Trained:
    """:func:`mvlib.trainers.train_sum`, cached."""
    return as_network(cfg, _sum_unit(cfg, seed), data or make_data(cfg, seed))


def ntk_members(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> Trained:
    """The K members linearised at their own initialisation and trained (cached)."""
    return as_linearised(cfg, _ntk_unit(cfg, seed), data or make_data(cfg, seed))


def ntk_students(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> dict[str, Trained]:
    """Linearised students of the NTK ensemble per target (cached), as distill_students."""
    data = data or make_data(cfg, seed)
    return {n: as_linearised(cfg, r, data) for n, r in _ntk_distill_unit(cfg, seed).items()}


def ntk_scratch_students(cfg: ExperimentConfig, seed: int, data: Data | None = None) -> Trained:
    """Linearised born-again students (cached): fresh NTK models distilled from NTK member 0."""
    return as_linearised(cfg, _ntk_scratch_unit(cfg, seed), data or make_data(cfg, seed))


# ----------------------------------------------------------------------------- the headline


def method_unit(method: str) -> str:
    """The name of the unit that trains ``method``."""
    for u in UNITS.values():
        if method in u.methods:
            return u.name
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def depends_on(methods) -> set[str]:
    """The parameters (flat names, as :func:`mvlib.config.as_dict`) the results of ``methods``
    depend on: the fields of their units (``sd_steps`` for ``self_distill``, not ``distill``)."""
    cfg, names = ExperimentConfig(), set()
    for name in {method_unit(m) for m in methods}:
        for f in UNITS[name].fields:
            part = getattr(cfg, f)
            names |= {p.name for p in fields(part)} if f in ("data", "learner") else {f}
    return names


def progress_total(cfg: ExperimentConfig, methods=METHODS) -> int:
    """The GD steps ``reproduce`` runs for these methods (for a progress bar)."""
    return sum(getattr(cfg, UNITS[u].steps) for u in {method_unit(m) for m in methods})


def reproduce(
    cfg: ExperimentConfig, seed: int, device=None, progress: Callable | None = None, methods=None
) -> dict:
    """The methods of the headline table (default: all of METHODS) on data seed ``seed``:
    ``{method: {"train", "multi_view", "single_view", "overall", "both_views"}}`` (floats;
    members averaged). Trains only the units those methods need, each cached on disk."""
    methods = tuple(METHODS if methods is None else methods)
    needed = {method_unit(m) for m in methods}  # raises on an unknown method
    data = make_data(cfg, seed, device)
    res = {}
    for u in UNITS.values():
        if u.name not in needed:
            continue
        runs = u.runs(cfg, seed, data)
        for m, trained in runs.items():
            res[m] = evaluate(trained, data, cfg.data.mu, ensemble=m in u.averaged)
        for m, extra in (u.extra(cfg, seed, data, runs) if u.extra else {}).items():
            res[m].update(extra)
        if progress is not None:
            progress(getattr(cfg, u.steps))
    return {m: {key: _mean(key, v) for key, v in res[m].items()} for m in methods}


def by_method(runs: list[dict]) -> dict[str, dict[str, list[float]]]:
    """:func:`reproduce`'s results of several seeds as ``{method: {metric: [one per seed]}}``."""
    return {m: {c: [run[m][c] for run in runs] for c in runs[0][m]} for m in runs[0]}


def _mean(key: str, v: torch.Tensor) -> float:
    """The members' mean; a union rate is NaN for a student with no cell in its set, and then the
    others' mean stands (NaN in any other metric stays NaN)."""
    return float(v.nanmean() if key.startswith("union_") and v.isnan().any() else v.mean())
