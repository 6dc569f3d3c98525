"""Where a distillation gain comes from: the real teacher beside its three controls
(:mod:`mvlib.teachers`), students paired on their initialisations.

Steps of the decomposition, each a paired difference of single-view test accuracy:

- label smoothing: one-hot at the teacher's margin - the single model (cross-entropy alone);
- per-sample confidence: flat - one-hot;
- off-class spread: permuted - flat;
- class relations (dark knowledge): real - permuted.
"""

from __future__ import annotations

import pandas as pd
import torch

from mvlib.stats import mean_ci

STEPS = (
    ("label smoothing", "_onehot", None),
    ("confidence", "_control", "_onehot"),
    ("off-class spread", "_permuted", "_control"),
    ("class relations", "", "_permuted"),
)
LABELS = {"": "real teacher", "_control": "flat", "_onehot": "one-hot", "_permuted": "permuted"}


def long_table(results: dict[int, dict[str, dict[str, torch.Tensor]]]) -> pd.DataFrame:
    """{seed: {method: per-model scores (from experiments.evaluate)}} -> one row per (seed,
    method, model) with every score as a column. Students of the same seed share their index."""
    rows = []
    for seed, by_method in results.items():
        for method, res in by_method.items():
            for i in range(len(next(iter(res.values())))):
                rows.append(
                    {
                        "seed": seed,
                        "method": method,
                        "model": i,
                        **{key: float(v[i]) for key, v in res.items()},
                    }
                )
    return pd.DataFrame(rows)


def _values(df, method, metric):
    return df[df.method == method].set_index(["seed", "model"])[metric]


def steps(
    df: pd.DataFrame,
    prefix: str,
    baseline: str = "single",
    paired_baseline: bool = False,
    metric: str = "single_view",
) -> pd.DataFrame:
    """The decomposition of ``prefix``'s gain over ``baseline``: one row per step with the mean
    paired difference and its 95% interval over (seed, student) pairs. The first step compares
    seed means, unless ``paired_baseline`` (the baseline's models are the students' twins, as
    the continuation is for self-distillation)."""
    rows = []
    for name, a, b in STEPS:
        x = _values(df, prefix + a, metric)
        if b is None and not paired_baseline:
            base = df[df.method == baseline].groupby("seed")[metric].mean()
            diff = x.groupby(level="seed").mean() - base
        else:
            diff = x - _values(df, baseline if b is None else prefix + b, metric)
        ci = mean_ci(diff.dropna().to_numpy())
        rows.append(
            {
                "step": name,
                "from": LABELS.get(b, baseline) if b is not None else baseline,
                "to": LABELS[a],
                "mean": ci.mean,
                "lo": ci.lo,
                "hi": ci.hi,
                "n": ci.n,
            }
        )
    return pd.DataFrame(rows)
