"""Named configurations. Every parameter is named here; any can be overridden.

- ``ci``: each experiment in seconds on a 2-core CPU (what CI executes).
- ``book``: the headline experiment in under two minutes on a 2-core CPU (the rendered book).
- ``paper``: larger k, for a GPU.

A notebook reads its preset from the environment variable ``MVLIB_PRESET`` (default ``book``).
"""

from __future__ import annotations

import os

from mvlib.data import MultiViewConfig
from mvlib.experiments import ExperimentConfig, with_overrides
from mvlib.model import LearnerConfig

# A regime where one model learns one view per class and the lottery shows (k = 10, d = 200,
# P = 16, N = 600, m = 3, sigma0 = 0.04; the setup chapter gives the reasons for each departure
# from the paper's asymptotics). eta = 6 for 600 steps is stable and every member fits its
# training set. Off-class coefficients of multi-view data in [0.2, 0.8], beyond Def. 3.1's 0.4:
# the ensemble's dark knowledge is carried by its off-class logits, and with [0.2, 0.4] its gain
# over the permuted and flat teachers fades by k = 12 (the Regimes chapter's maps, 5 seeds a point).
# Distillation: Hinton's form at T = 8 for the ensemble; Theorem 4's two-phase self-distillation
# with eq. (4.3), the teacher scaled by 3 so that eq. (4.2)'s truncation acts on it (its
# true-class logits of 9-14 exceed 1/tau^2 = 28 only when scaled) and eta' = eta, because
# eta' = 10 eta overshoots: the one-sided term never pulls a logit back. Phase two lasts
# T' = 2T: Theorem 4's T' = poly(k)/eta grows with k, and at T' = T the student falls short of
# 3/4 single-view accuracy from k = 12 on, at T' = 2T only from k = 14 (the Regimes chapter).
_REGIME = dict(
    data=MultiViewConfig(
        k=10,
        d=200,
        P=16,
        C_p=1,
        s=2.0,
        mu=0.1,
        rho=0.05,
        Gamma=0.2,
        gamma=0.01,
        sigma_p=0.14,
        sigma_f=0.02,
        view_low=1.0,
        view_high=2.0,
        off_low=0.2,
        off_high=0.8,
    ),
    learner=LearnerConfig(m=3, q=4, varrho=1.0, sigma0=0.04),
    N=600,
    eta=6.0,
    steps=600,
    kd="hinton",
    T=8.0,
    kd_weight=1.0,
    tau=0.19,
    eta_ratio=1.0,
    teacher_scale=3.0,
    sd_kd="eq43",
    sd_steps=1200,
    eta_ntk=32.0,
    ntk_steps=500,
    record_every=25,
    chunk=0,
)

PRESETS: dict[str, ExperimentConfig] = {
    # Same experiment as book on fewer test samples and one data seed per chapter. Fewer members
    # do not do: with K = 5 the ensemble misses views and its dark knowledge no longer beats the
    # flat control (measured: 0.83 against 0.86 single-view).
    # Two students per teacher: the controls are paired on the same initialisations.
    "ci": ExperimentConfig(**_REGIME, n_test=1000, K=10, students=2, seeds=1),
    "book": ExperimentConfig(**_REGIME, n_test=2000, K=10, students=2, seeds=3),
    # Larger k for a GPU: the book's experiment with what grows with k changed. Run on an H200
    # (chapter 8, mvlib/sweeps/gpu_paper*.csv): Theorems 2 and 3 hold with their controls;
    # self-distillation stays below 3/4, also at T' = 4000 and 8000.
    "paper": with_overrides(
        ExperimentConfig(**_REGIME, n_test=5000, K=10, students=2, seeds=3),
        {
            "k": 30,
            "d": 400,
            "P": 24,
            "sigma_p": 0.1,
            "m": 4,
            "N": 3000,
            "steps": 1000,
            "tau": 0.09,
            "sd_steps": 2000,
            "ntk_steps": 1000,
            "record_every": 50,
        },
    ),
}


def get_preset(name: str | None = None, **overrides) -> ExperimentConfig:
    """The named preset (default: $MVLIB_PRESET, else ``book``) with overrides by parameter name."""
    name = name or os.environ.get("MVLIB_PRESET", "book")
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return with_overrides(PRESETS[name], overrides)
