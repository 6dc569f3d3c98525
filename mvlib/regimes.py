"""The regime map: where each claim holds, from a sweep's tidy CSV (:mod:`mvlib.sweep`).

A claim is a paired comparison of two methods' single-view accuracy on the same seeds (their
students share initialisations), or a level one method must reach; it holds at a grid point when
the 95% interval over at least two seeds clears zero (or the level).

- :func:`claim_table` / :func:`claim_map`: each claim's interval per grid point, and one claim
  as a heatmap-ready (rows x cols) grid; :func:`claim_heatmaps` draws them.
- :func:`shipped`, :func:`at`, :func:`prediction`: a shipped sweep, its rows at one grid
  point, and where one new seed falls there; :func:`live_slice`: a fresh run of one grid point
  against those prediction intervals.
- :func:`kscaling`: Theorem 1's single-view accuracy per number of classes k.
- :func:`write_provenance` / :func:`read_provenance`: how a shipped CSV was made.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mvlib.stats import FRACTION, Interval, mean_ci, prediction_interval

if TYPE_CHECKING:
    import pandas as pd

METRIC = "single_view"


@dataclass(frozen=True)
class Claim:
    """``a - b > 0`` on METRIC (b None: ``a - level > 0``), with a name for tables."""

    name: str
    a: str
    b: str | None = None
    level: float = 0.0


# Theorem 3 and its controls (knowledge distillation from the ensemble).
KD_CLAIMS = (
    Claim("dark knowledge: real - permuted", "distill", "distill_permuted"),
    Claim("real - flat", "distill", "distill_control"),
    Claim("confidence: flat - one-hot", "distill_control", "distill_onehot"),
    Claim("distillation - single", "distill", "single"),
)
# Theorem 4 (two-phase self-distillation) and its controls.
SD_CLAIMS = (
    Claim("self-distillation >= 3/4", "self_distill", level=0.75),
    Claim("distillation - continuation", "self_distill", "self_distill_continue"),
    Claim("teacher: real - one-hot", "self_distill", "self_distill_onehot"),
    Claim("dark knowledge: real - permuted", "self_distill", "self_distill_permuted"),
)


# Theorem 2: the ensemble of K independently trained models against one of them.
ENSEMBLE_CLAIMS = (Claim("ensemble - single", "ensemble", "single"),)
# The two questions a regime map answers: (a) the ensemble's dark knowledge beats both the flat
# and the permuted teacher; (b) Theorem 4: two-phase self-distillation reaches 3/4 single-view
# accuracy and beats its continuation baseline.
DARK_KNOWLEDGE = ("dark knowledge: real - permuted", "real - flat")
THEOREM4 = ("self-distillation >= 3/4", "distillation - continuation")


# The grid of each shipped sweep (scripts/regimes.sh): its rows and columns in the maps.
GRIDS = {
    "regimes_kd": ("T", "off_high"),
    "regimes_sd": ("sd_steps", "teacher_scale"),
    "regimes_sd_k": ("k", "sd_steps"),
    "regimes_data": ("k", "mu"),
    "regimes_data_off04": ("k", "mu"),  # the same at Def. 3.1's off-class range [0.2, 0.4]
}


def tagged(claims, tag: str) -> tuple[Claim, ...]:
    """The claims renamed ``"TAG: name"``, so KD's and SD's claims share one table."""
    return tuple(replace(c, name=f"{tag}: {c.name}") for c in claims)


# Theorem 1: a single model learns one view of each class, so it is right on half of the
# single-view data.
THEOREM1_SINGLE_VIEW = 0.5


def grid_columns(df) -> list[str]:
    """The parameters that vary in a sweep's frame (its grid)."""
    fixed = {
        "seed",
        "method",
        "preset",
        "train",
        "multi_view",
        "single_view",
        "overall",
        "both_views",
    }
    return [c for c in df.columns if c not in fixed and df[c].nunique(dropna=False) > 1]


def _per_seed(df, method: str):
    return df[df.method == method].set_index("seed")[METRIC]


def interval(df, claim: Claim) -> Interval:
    """The claim's 95% interval over the seeds of one grid point (rows of df)."""
    a = _per_seed(df, claim.a)
    if claim.b is None:
        return mean_ci(a.to_numpy() - claim.level)
    b = _per_seed(df, claim.b)
    seeds = a.index.intersection(b.index)
    return mean_ci((a[seeds] - b[seeds]).to_numpy())


def claim_table(df, claims, grid: list[str] | None = None) -> pd.DataFrame:
    """One row per (grid point, claim): mean, lo, hi, seeds and ``holds`` (lo > 0 over >= 2
    seeds: one seed has no interval). ``grid``: the grid columns (default: ``df.attrs["grid"]``,
    which :func:`shipped` sets, else the columns that vary in df; a partial sweep may not vary
    yet in every grid column)."""
    import pandas as pd

    grid = list(grid or df.attrs.get("grid") or grid_columns(df))
    rows = []
    groups = df.groupby(grid, sort=False) if grid else [((), df)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        for c in claims:
            if c.a not in set(part.method) or (c.b and c.b not in set(part.method)):
                continue
            ci = interval(part, c)
            rows.append(
                {
                    **dict(zip(grid, key)),
                    "claim": c.name,
                    "mean": ci.mean,
                    "lo": ci.lo,
                    "hi": ci.hi,
                    "seeds": ci.n,
                    "holds": ci.n >= 2 and ci.lo > 0,
                }
            )
    return pd.DataFrame(rows)


def holds_where(table, claims, grid: list[str]) -> list[dict]:
    """The grid points (``{column: value}``) of a :func:`claim_table` where every one of
    ``claims`` (a name or several) holds."""
    names = [claims] if isinstance(claims, str) else list(claims)
    part = table[table.claim.isin(names)]
    if part.empty:
        return []
    every = part.groupby(grid, sort=False).holds.agg(["all", "size"])
    every = every[every["all"] & (every["size"] == len(names))]
    return [dict(zip(grid, key if isinstance(key, tuple) else (key,))) for key in every.index]


def describe(table, grid: list[str], fmt: str = ".3f") -> list[str]:
    """One sentence per claim of a :func:`claim_table`: where it holds (or that it holds nowhere
    in the range tried) and the range of its mean over the grid points."""
    out = []
    for claim, part in table.groupby("claim", sort=False):
        where = holds_where(part, claim, grid)
        points = "; ".join(", ".join(f"{k}={v:g}" for k, v in p.items()) for p in where)
        verdict = (
            f"holds at {len(where)} of {len(part)} grid points ({points})"
            if where
            else f"holds nowhere in the {len(part)} grid points tried"
        )
        out.append(
            f"{claim}: {verdict}; mean from {part['mean'].min():+{fmt}} to "
            f"{part['mean'].max():+{fmt}}"
        )
    return out


@dataclass(frozen=True)
class ClaimMap:
    """One claim over two grid columns: ``mean``, ``lo``, ``hi`` (float) and ``holds`` (bool),
    each a DataFrame indexed by ``rows`` x ``cols`` values; a grid point not yet in the sweep
    has NaN and does not hold."""

    claim: str
    rows: str
    cols: str
    mean: pd.DataFrame
    lo: pd.DataFrame
    hi: pd.DataFrame
    holds: pd.DataFrame

    def labels(self, fmt: str = ".2f"):
        """Cell text ``"mean\\n[lo, hi]"`` ("" where missing)."""
        import pandas as pd

        text = np.vectorize(
            lambda m, lo, hi: "" if np.isnan(m) else f"{m:{fmt}}\n[{lo:{fmt}}, {hi:{fmt}}]",
            otypes=[object],
        )
        return pd.DataFrame(
            text(self.mean, self.lo, self.hi), index=self.mean.index, columns=self.mean.columns
        )


def claim_map(table, claim: str, rows: str, cols: str, values: dict | None = None) -> ClaimMap:
    """``claim``'s rows of a :func:`claim_table` as a ``rows`` x ``cols`` grid. ``values``
    (``{column: [values]}``) fixes the axes, so points the sweep has not reached show as
    missing; by default the axes are the values present."""
    part = table[table.claim == claim]
    if part.empty:
        raise ValueError(
            f"claim {claim!r} is not in the table (claims: {', '.join(table.claim.unique())})"
        )
    dup = part.duplicated([rows, cols])
    if dup.any():
        raise ValueError(
            f"{rows} x {cols} does not identify the grid points of {claim!r}: "
            f"another grid column varies too"
        )
    values = values or {}
    index = values.get(rows, sorted(part[rows].unique()))
    columns = values.get(cols, sorted(part[cols].unique()))

    def grid(col):
        return part.pivot(index=rows, columns=cols, values=col).reindex(
            index=index, columns=columns
        )

    holds = grid("holds").fillna(False).astype(bool)
    return ClaimMap(
        claim,
        rows,
        cols,
        grid("mean").astype(float),
        grid("lo").astype(float),
        grid("hi").astype(float),
        holds,
    )


def claim_heatmaps(
    table,
    claims,
    rows: str,
    cols: str,
    values: dict | None = None,
    title: str = "",
    ncols: int = 3,
    fmt: str = ".2f",
):
    """One heatmap per claim (``Claim`` or name) of a :func:`claim_table`: colour the mean
    single-view difference (red > 0 > blue, one scale for all), each cell "mean [lo, hi]",
    a thick black frame where the claim holds. Returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Rectangle

    names = [c.name if isinstance(c, Claim) else c for c in claims]
    maps = [claim_map(table, n, rows, cols, values) for n in names]
    vmax = max(float(np.nanmax(np.abs(m.mean.to_numpy()), initial=0.0)) for m in maps) or 1.0
    nrows = -(-len(maps) // ncols)
    fig, axes = plt.subplots(
        nrows,
        min(ncols, len(maps)),
        squeeze=False,
        figsize=(4.2 * min(ncols, len(maps)), 3.4 * nrows),
    )
    for ax, m in zip(axes.flat, maps):
        sns.heatmap(
            m.mean,
            annot=m.labels(fmt),
            fmt="",
            cmap="RdBu_r",
            vmin=-vmax,
            vmax=vmax,
            cbar=False,
            ax=ax,
            annot_kws={"fontsize": 8},
            linewidths=0.5,
        )
        for i, j in zip(*np.nonzero(m.holds.to_numpy())):
            # inset, so neighbouring frames and the panel's edge do not hide one another
            box = Rectangle((j + 0.04, i + 0.04), 0.92, 0.92, fill=False, ec="black", lw=2.5)
            ax.add_patch(box)
        ax.set_title(m.claim, fontsize=10)
        ax.invert_yaxis()
    for ax in axes.flat[len(maps) :]:
        ax.set_visible(False)
    fig.suptitle(
        title + ("\n" if title else "") + "single-view difference, mean [95% interval]"
        " over seeds; framed: the claim holds (interval above 0)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def at(df, **point):
    """The rows of df (a sweep's frame or a :func:`claim_table`) at one grid point, given as
    ``column=value`` (numbers compared as floats, so ``T=8`` finds ``8.0``)."""
    mask = np.ones(len(df), dtype=bool)
    for col, value in point.items():
        if col not in df.columns:
            raise KeyError(f"no column {col!r} (columns: {', '.join(map(str, df.columns))})")
        mask &= np.isclose(df[col].astype(float), float(value))
    return df[mask]


def _draws(shipped, a: str, b: str | None, level: float = 0.0) -> np.ndarray:
    """Per-seed METRIC of ``a`` minus ``b``'s on the same seed (b None: minus ``level``)."""
    x = _per_seed(shipped, a)
    if b is None:
        return x.to_numpy() - level
    y = _per_seed(shipped, b)
    seeds = x.index.intersection(y.index)
    return (x[seeds] - y[seeds]).to_numpy()


def prediction(df, a: str, b: str | None = None, **point) -> Interval:
    """Where one new seed's single-view accuracy of ``a`` (or its paired difference ``a - b``)
    falls with 95% probability, from a sweep's seeds at ``point`` (:func:`at`;
    :func:`mvlib.stats.prediction_interval`)."""
    rows = at(df, **point)
    if rows.empty:
        raise ValueError(f"the sweep has no rows at {point}")
    return prediction_interval(_draws(rows, a, b))


def live_slice(shipped, live: dict, claims, methods) -> pd.DataFrame:
    """A fresh run of one grid point against the shipped sweep's seeds at that point.

    shipped: rows of a sweep's frame at one grid point (:func:`at`), >= 2 seeds; live:
    ``reproduce``'s output ``{method: {metric: float}}`` for one seed. One row per method
    (its single-view accuracy) and per claim (its difference): ``live``, the prediction
    interval of one new seed from the shipped ones (``mean``, ``lo``, ``hi``, ``seeds``) and
    ``inside`` (lo <= live <= hi).
    """
    import pandas as pd

    rows = []

    def add(quantity, value, draws):
        pi = prediction_interval(draws)
        rows.append(
            {
                "quantity": quantity,
                "live": value,
                "mean": pi.mean,
                "lo": pi.lo,
                "hi": pi.hi,
                "seeds": pi.n,
                "inside": pi.lo <= value <= pi.hi,
            }
        )

    for m in methods:
        add(m, live[m][METRIC], _draws(shipped, m, None))
    for c in claims:
        b = live[c.b][METRIC] if c.b else c.level
        add(c.name, live[c.a][METRIC] - b, _draws(shipped, c.a, c.b, c.level))
    return pd.DataFrame(rows)


def with_live(shipped, live: dict, seed: int = 0):
    """The shipped rows of one grid point with seed ``seed``'s METRIC replaced by the live run's
    (``{method: {metric: float}}``): the map at that point as this run would draw it."""
    out = shipped.copy()
    for method, metrics in live.items():
        out.loc[(out.method == method) & (out.seed == seed), METRIC] = metrics[METRIC]
    return out


def beside(extra, base):
    """``extra``'s rows with ``base``'s rows of the same methods, e.g. a sweep that extends a
    run along one parameter (longer second phase, larger k) together with that run."""
    import pandas as pd

    return pd.concat([base[base.method.isin(set(extra.method))], extra], ignore_index=True)


def depends_on(methods) -> set[str]:
    """The parameters (flat names, as :func:`mvlib.experiments.as_dict`) the results of
    ``methods`` depend on: the fields of their cached units (``sd_steps`` for ``self_distill``,
    not for ``distill``)."""
    from dataclasses import fields

    from mvlib.experiments import _UNIT_FIELDS, ExperimentConfig, method_unit

    cfg = ExperimentConfig()
    names = set()
    for unit in {method_unit(m) for m in methods}:
        for name in _UNIT_FIELDS[unit]:
            part = getattr(cfg, name)
            names |= {f.name for f in fields(part)} if name in ("data", "learner") else {name}
    return names


def regime_mismatch(shipped, cfg, ignore=("n_test", "seeds"), methods=None) -> dict:
    """The parameters (``{name: (shipped, cfg)}``) where the config differs from the sweep's
    rows at one grid point, outside ``ignore`` (what does not change the training regime) and,
    given ``methods``, outside what their results depend on (:func:`depends_on`: a KD sweep run
    at another ``sd_steps`` still holds this config's KD results)."""
    from mvlib.experiments import as_dict

    row = shipped.iloc[0]
    relevant = None if methods is None else depends_on(methods)
    out = {}
    for name, value in as_dict(cfg).items():
        if name in ignore or name not in row or (relevant is not None and name not in relevant):
            continue
        same = (
            np.isclose(float(row[name]), float(value))
            if isinstance(value, (int, float))
            else str(row[name]) == str(value)
        )
        if not same:
            shipped_value = row[name].item() if hasattr(row[name], "item") else row[name]
            out[name] = (shipped_value, value)  # plain numbers, not numpy scalars, for printing
    return out


def held_methods(rows, cfg, methods) -> list[str]:
    """Those of ``methods`` whose results a sweep's ``rows`` at one grid point hold for ``cfg``:
    present there and run with every parameter they depend on equal to cfg's."""
    return [
        m for m in methods if m in set(rows.method) and not regime_mismatch(rows, cfg, methods=[m])
    ]


def claims_on(claims, methods) -> list[Claim]:
    """The claims that compare ``methods`` only."""
    return [c for c in claims if {c.a, c.b} - {None} <= set(methods)]


def kscaling(df, method: str = "single") -> pd.DataFrame:
    """Theorem 1's scaling: per number of classes k and training length ``steps``, ``method``'s
    mean and 95% interval over seeds of train, multi_view, single_view and both_views (columns
    M, M_lo, M_hi), ``N`` and ``seeds``; df: sweeps' rows at several k (concatenated CSVs)."""
    import pandas as pd

    out = []
    for (k, steps), part in df[df.method == method].groupby(["k", "steps"]):
        row = {
            "k": int(k),
            "steps": int(steps),
            "N": int(part.N.iloc[0]),
            "seeds": part.seed.nunique(),
        }
        for metric in ("train", "multi_view", "single_view", "both_views"):
            ci = mean_ci(part[metric].to_numpy(), FRACTION)
            row.update({metric: ci.mean, f"{metric}_lo": ci.lo, f"{metric}_hi": ci.hi})
        out.append(row)
    return pd.DataFrame(out)


def theorem1_regime(table, fit: float = 0.99, band: float = 0.05):
    """Per row of :func:`kscaling`: is the single model in Theorem 1's regime? It fits at least
    ``fit`` of its training set ("training is perfect") and its single-view interval lies within
    ``band`` of :data:`THEOREM1_SINGLE_VIEW` (test error in [0.49 mu, 0.51 mu]). Returns a
    boolean Series."""
    return (
        (table.train >= fit)
        & (table.single_view_lo >= THEOREM1_SINGLE_VIEW - band)
        & (table.single_view_hi <= THEOREM1_SINGLE_VIEW + band)
    )


def data_dir() -> Path:
    """The shipped sweeps' folder, ``mvlib/sweeps``: package data, so an installed mvlib (Colab
    included) carries the maps its chapters read."""
    return Path(__file__).resolve().parent / "sweeps"


def shipped(name: str):
    """A shipped sweep's CSV (``mvlib/sweeps/NAME.csv``, e.g. ``"regimes_kd"``) as a DataFrame;
    ``attrs["grid"]`` holds its grid columns (:data:`GRIDS`) when it is one of the maps."""
    import pandas as pd

    path = data_dir() / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"no shipped sweep {path}: scripts/regimes.sh writes it")
    df = pd.read_csv(path)
    if name in GRIDS:
        df.attrs["grid"] = list(GRIDS[name])
    return df


def provenance_path(csv_path) -> Path:
    """Where the provenance of ``csv_path`` lives: ``CSV_PATH.provenance.json``."""
    return Path(str(csv_path) + ".provenance.json")


def write_provenance(csv_path, command: str) -> Path:
    """Record how ``csv_path`` was made beside it: the command, mvlib's version and source hash
    (:func:`mvlib.cache.source_hash`: the code that computed the results), the date and the
    machine (platform, Python, CPU count, torch version, the GPU if any). Returns the JSON file's
    path."""
    import torch

    import mvlib
    from mvlib.cache import source_hash

    if not Path(csv_path).exists():
        raise FileNotFoundError(f"no sweep CSV at {csv_path}: run the sweep first")
    record = {
        "csv": Path(csv_path).name,
        "command": command,
        "mvlib_version": mvlib.__version__,
        "source_hash": source_hash(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            **({"gpu": torch.cuda.get_device_name()} if torch.cuda.is_available() else {}),
        },
    }
    path = provenance_path(csv_path)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def read_provenance(csv_path) -> dict | None:
    """The record :func:`write_provenance` wrote for ``csv_path`` (None when there is none)."""
    path = provenance_path(csv_path)
    return json.loads(path.read_text()) if path.exists() else None


def provenance_line(csv_path) -> str:
    """How ``csv_path`` was made, in one line: the date, mvlib's version, the GPU where it ran on
    one, and whether this code computed it (the recorded source hash is this code's)."""
    from mvlib.cache import source_hash

    name, record = Path(csv_path).name, read_provenance(csv_path)
    if record is None:
        return f"{name}: no provenance record"
    gpu = record["machine"].get("gpu")
    same = "this code" if record["source_hash"] == source_hash() else "OTHER code"
    return (
        f"{name}: {record['date']}, mvlib {record['mvlib_version']}"
        + (f", on an {gpu}" if gpu else "")
        + f", computed by {same}"
    )
