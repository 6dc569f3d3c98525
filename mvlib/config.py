"""The experiment's configuration, its named presets' lookup, the device and the random streams.

Every parameter of a run is a field of :class:`ExperimentConfig` (its ``data`` and ``learner``
follow the paper's definitions); every random draw comes from :func:`rng` with an explicit seed.
The Gaussian and real-image chapters use the same device, streams and preset lookup.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

import torch

from mvlib._validate import check_range
from mvlib.data import MultiViewConfig
from mvlib.model import LearnerConfig
from mvlib.teachers import CONTROLS

KD_FORMS = ("hinton", "eq43", "eq43_capped")


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
    # How the controls match the teacher (mvlib.teachers): "probability", in what the loss reads
    # (a derangement per sample for the permuted one), or "logit", the earlier instrument, kept
    # for comparison: matched in logits, flat and one-hot targets push harder than the teacher.
    controls: str = "probability"
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
        if self.controls not in CONTROLS:
            raise ValueError(f"controls must be one of {CONTROLS}, got {self.controls!r}")
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
    STREAM_WIDTH,
) = range(8)


def lookup(presets: dict, name: str | None = None):
    """The preset ``name`` of ``presets`` (default: $MVLIB_PRESET, else ``book``): one
    environment variable picks the preset of every chapter, synthetic or real."""
    name = name or os.environ.get("MVLIB_PRESET", "book")
    if name not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {name!r}")
    return presets[name]
