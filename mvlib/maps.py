"""The regime maps: where each claim holds, from a sweep's tidy CSV (:mod:`mvlib.sweep`).

- :func:`claim_map` / :func:`claim_heatmaps`: one claim of a :func:`mvlib.claims.claim_table`
  as a heatmap-ready (rows x cols) grid, and the heatmaps; :func:`explorable_maps`: every map in
  one figure a static page explores without a kernel (a dropdown over claims).
- :func:`shipped`, :func:`at`, :func:`prediction`: a shipped sweep, its rows at one grid
  point, and where one new seed falls there; :func:`live_slice`: a fresh run of one grid point
  against those prediction intervals; :func:`regime_mismatch`: whether a config is the sweep's;
  :func:`sensitivity`, :func:`moved`: each method at two settings of one parameter (a
  sensitivity panel), and how one method moved, in words.
- :func:`kscaling`: Theorem 1's single-view accuracy per number of classes k.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mvlib.claims import METRIC, THEOREM1_SINGLE_VIEW, Claim, as_frame, draws
from mvlib.config import as_dict
from mvlib.stats import FRACTION, Interval, mean_ci, paired, prediction_interval
from mvlib.units import depends_on

if TYPE_CHECKING:
    import pandas as pd

# The grid of each shipped sweep (scripts/regimes.sh): its rows and columns in the maps.
GRIDS = {
    "regimes_data": ("k", "mu"),  # Def. 3.1's off-class range [0.2, 0.4]: the headline
    "regimes_data_off08": ("k", "mu"),  # the same at [0.2, 0.8]: a sensitivity panel
    "regimes_kd": ("kd", "k"),  # Theorem 3's eq. 4.3 beside Hinton's form
    "regimes_kd_T": ("T", "mu"),
    "regimes_sd": ("sd_kd", "view_high"),  # view_high 1.02: Assumption 4.1
}


@dataclass(frozen=True)
class ClaimMap:
    """One claim over two grid columns: ``mean``, ``lo``, ``hi`` (float), ``holds`` (bool) and
    ``verdict`` (text), each a DataFrame indexed by ``rows`` x ``cols`` values; a grid point not
    yet in the sweep has NaN and does not hold."""

    claim: str
    rows: str
    cols: str
    mean: pd.DataFrame
    lo: pd.DataFrame
    hi: pd.DataFrame
    holds: pd.DataFrame
    verdict: pd.DataFrame  # the claim's verdict at each point ("" where missing)

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
        grid("verdict").fillna(""),
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
    scale = plt.cm.ScalarMappable(cmap="RdBu_r", norm=plt.Normalize(-vmax, vmax))
    fig.colorbar(scale, ax=axes.ravel().tolist(), shrink=0.8, pad=0.02, label="mean difference")
    return fig


def explorable_maps(tables: dict, fmt: str = ".3f"):
    """Every map in one figure that a browser explores without a kernel (plotly): a dropdown
    over (sweep, claim). ``tables``: ``{sweep: (claim_table, claims, rows, cols)}``. A cell is
    coloured by its mean difference (red > 0 > blue, one scale per claim) and reads "mean
    [lo, hi]" and the claim's verdict there, in bold where it holds. Returns the Figure."""
    import plotly.graph_objects as go

    def shown(axis, v):
        return f"{axis} = {v:g}" if isinstance(v, float) else f"{axis} = {v}"

    traces, menu = [], []
    for sweep, (table, claims, rows, cols) in tables.items():
        for claim in claims:
            name = claim.name if isinstance(claim, Claim) else claim
            m = claim_map(table, name, rows, cols)
            verdict = m.verdict.where(~m.holds, "<b>holds</b>")
            text = np.vectorize(lambda t, v: f"{t}<br>{v}".replace("\n", "<br>"), otypes=[object])(
                m.labels(fmt).to_numpy(), verdict.to_numpy()
            )
            vmax = float(np.nanmax(np.abs(m.mean.to_numpy()), initial=0.0)) or 1.0
            traces.append(go.Heatmap(
                z=m.mean.to_numpy(), x=[shown(cols, v) for v in m.mean.columns],
                y=[shown(rows, v) for v in m.mean.index], text=text,
                texttemplate="%{text}", hovertemplate="%{y}, %{x}<br>%{text}<extra></extra>",
                zmid=0.0, zmin=-vmax, zmax=vmax, colorscale="RdBu_r", visible=not traces,
                colorbar={"title": {"text": "mean<br>difference"}},
            ))  # fmt: skip
            menu.append((f"{sweep}: {name}", rows, cols))
    buttons = [
        {
            "label": label,
            "method": "update",
            "args": [
                {"visible": [t == n for t in range(len(traces))]},
                {"xaxis.title.text": cols, "yaxis.title.text": rows},
            ],
        }  # fmt: skip
        for n, (label, rows, cols) in enumerate(menu)
    ]
    fig = go.Figure(traces)
    fig.update_layout(
        updatemenus=[{"buttons": buttons, "x": 0.0, "y": 1.18, "xanchor": "left"}],
        xaxis_title=menu[0][2], yaxis_title=menu[0][1], height=520, margin={"t": 110},
        title={"text": "mean difference [95% interval] over seeds", "font": {"size": 13},
               "x": 0.01, "y": 0.98},
    )  # fmt: skip
    return fig


def at(df, **point):
    """The rows of df (a sweep's frame or a :func:`claim_table`) at one grid point, given as
    ``column=value`` (numbers compared as floats, so ``T=8`` finds ``8.0``; a column of names,
    e.g. ``kd``, by name)."""
    mask = np.ones(len(df), dtype=bool)
    for col, value in point.items():
        if col not in df.columns:
            raise KeyError(f"no column {col!r} (columns: {', '.join(map(str, df.columns))})")
        if df[col].dtype.kind in "biuf":
            mask &= np.isclose(df[col].astype(float), float(value))
        else:  # a form, e.g. kd="eq43"
            mask &= (df[col] == value).to_numpy()
    return df[mask]


def prediction(df, a: str, b: str | None = None, **point) -> Interval:
    """Where one new seed's single-view accuracy of ``a`` (or its paired difference ``a - b``)
    falls with 95% probability, from a sweep's seeds at ``point`` (:func:`at`;
    :func:`mvlib.stats.prediction_interval`)."""
    rows = at(df, **point)
    if rows.empty:
        raise ValueError(f"the sweep has no rows at {point}")
    return prediction_interval(draws(rows, Claim("", a, b)))


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

    here = as_frame(live)
    for m in methods:
        add(m, live[m][METRIC], draws(shipped, Claim("", m)))
    for c in claims:
        add(c.name, float(draws(here, c)[0]), draws(shipped, c))
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


def sensitivity(a, b, methods, grid: list[str], metric: str = METRIC) -> pd.DataFrame:
    """Each method's ``metric`` at the grid points two sweeps share, ``a`` (the headline) beside
    ``b`` (one parameter moved, e.g. off-class coefficients [0.2, 0.4] -> [0.2, 0.8]): columns
    ``a``, ``b`` (means over seeds) and ``change`` (the paired 95% interval of b - a over seeds;
    a data seed draws the same samples, views and initialisations in both, only the moved
    parameter differs), so a reader sees which of the teacher and its controls moved."""
    import pandas as pd

    rows = []
    for key, part_a in a[a.method.isin(methods)].groupby(grid + ["method"]):
        part_b = at(b, **dict(zip(grid, key[:-1])))
        part_b = part_b[part_b.method == key[-1]]
        seeds = sorted(set(part_a.seed) & set(part_b.seed))
        if len(seeds) < 2:
            continue
        va = part_a.set_index("seed")[metric].loc[seeds].to_numpy()
        vb = part_b.set_index("seed")[metric].loc[seeds].to_numpy()
        row = dict(zip(grid + ["method"], key))
        row.update(a=float(va.mean()), b=float(vb.mean()), change=paired(vb, va), seeds=len(seeds))
        rows.append(row)
    return pd.DataFrame(rows)


def moved(table, method: str) -> str:
    """How one method moved in a :func:`sensitivity` table, in words: the range of its mean
    change over the grid points and at how many the paired interval is above or below zero."""
    ch = table[table.method == method].change
    up, down = sum(c.lo > 0 for c in ch), sum(c.hi < 0 for c in ch)
    span = f"{min(c.mean for c in ch):+.3f} to {max(c.mean for c in ch):+.3f}"
    return f"{span} (significantly up at {up}, down at {down} of {len(ch)} points)"


def regime_mismatch(shipped, cfg, ignore=("n_test", "seeds"), methods=None) -> dict:
    """The parameters (``{name: (shipped, cfg)}``) where the config differs from the sweep's
    rows at one grid point, outside ``ignore`` (what does not change the training regime) and,
    given ``methods``, outside what their results depend on (:func:`depends_on`: a KD sweep run
    at another ``sd_steps`` still holds this config's KD results)."""
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
