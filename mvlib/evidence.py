"""Figures of the evidence: paired intervals as forest plots, Message 4's width curve and
Theorem 1's k-scaling, each with its intervals over seeds. Like :mod:`mvlib.plots`, each
function draws on a given ``ax`` (or a new figure) and returns the axes; needs the ``book``
extra.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from mvlib.plots import _ax


def forest(rows, ax=None, title: str = "", xlabel: str = "paired difference", label: str = "label"):
    """Forest plot of a decomposition: one line per row of ``rows`` (columns ``label``, ``mean``,
    ``lo``, ``hi``; e.g. ``report.step_table``), top to bottom in table order, the mean as a dot
    and the paired 95% interval as a bar, zero as a vertical line. An interval that excludes
    zero is drawn black, one that holds it (or a single value, ``n`` = 1) grey, so the reader
    sees which steps the run resolved."""
    ax = _ax(ax, (7, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    for yi, (_, r) in zip(y, rows.iterrows()):
        # one value (n = 1) has no interval: it resolves nothing
        resolved = (r["lo"] > 0 or r["hi"] < 0) and r.get("n", 2) > 1
        color = "k" if resolved else "0.6"
        ax.plot([r["lo"], r["hi"]], [yi, yi], color=color, lw=2, solid_capstyle="butt")
        ax.plot(r["mean"], yi, "o", color=color, ms=6)
    ax.axvline(0, color="tab:red", lw=1, ls="--", label="zero")
    ax.set_yticks(y, list(rows[label]))
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set(xlabel=xlabel, title=title)
    ax.grid(axis="y", visible=False)
    return ax


def width_curve(curve, singles, joint: dict, m: int, k: int, K: int, ax=None):
    """Single-view accuracy of single models against their width M (neurons per class), for
    Message 4 read as a width effect (chapter 3): ``curve`` from ``experiments.width_curve``
    (its first row is the members' width m; line: mean per width), ``singles`` one row per
    single model (columns ``width``, ``single_view``; dots), the grey band the members' range;
    ``joint`` {name: single-view accuracies} of the models of K members (trained sum, trained
    average, ensemble), drawn at their K*m neurons per class; the dotted line is M = k."""
    ax = _ax(ax, (8, 4.5))
    band = curve.iloc[0]
    ax.axhspan(
        band["min"], band["max"], color="grey", alpha=0.25, label=f"members (m = {m}): range"
    )
    ax.plot(singles["width"], singles["single_view"], "k.", ms=7, ls="")
    ax.plot(curve["width"], curve["mean"], "o-", color="tab:red", label="width M: mean")
    markers = ("s", "^", "*", "D")
    for j, (name, values) in enumerate(joint.items()):
        dx = 0.94 + 0.06 * j  # side by side at K*m on the log axis
        v = np.asarray(values, dtype=float)
        ax.plot([K * m * dx] * len(v), v, markers[j % 4], ms=9, ls="", label=name)
    ax.axvline(k, ls=":", color="k", label="M = k")
    ax.set(
        xscale="log",
        xlabel="width M (neurons per class)",
        ylabel="single-view test accuracy",
        title=f"k = {k}: single models by width; models of K = {K} members at K·m",
    )
    ax.minorticks_off()
    ax.set_xticks(list(curve["width"]), [str(w) for w in curve["width"]])
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.15), ncol=3)
    return ax


def kscaling(single, ensemble, base: int, theorem1: float = 0.5, axes=None):
    """Theorem 1's scaling in k (chapter 8): single-view accuracy (left) and training accuracy
    (right) against k, mean and 95% interval, for the single model and the ensemble
    (``regimes.kscaling`` tables: columns k, steps, single_view(_lo, _hi), train(_lo, _hi)).
    Runs at ``base`` steps are joined by lines; longer runs are open squares; the dashed line
    is Theorem 1's single-view accuracy."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    left, right = axes
    for label, t in (("single model", single), ("ensemble", ensemble)):
        for steps, part in t.groupby("steps"):
            at_base = steps == base
            style = dict(marker="o") if at_base else dict(marker="s", ls="none", mfc="none")
            name = label if at_base else f"{label}, {steps} steps"
            for ax, m in ((left, "single_view"), (right, "train")):
                # arrays: matplotlib 3.10 warns on a one-row Series (pandas 2.2, Colab's)
                err = [
                    (part[m] - part[f"{m}_lo"]).to_numpy(),
                    (part[f"{m}_hi"] - part[m]).to_numpy(),
                ]
                ax.errorbar(part.k, part[m], yerr=err, label=name, capsize=4, **style)
    left.axhline(theorem1, color="k", ls="--", label="Theorem 1: 1/2")
    left.set(xlabel="classes k", ylabel="single-view test accuracy", ylim=(0.45, 1.0))
    left.set_title("single-view accuracy, mean and 95% interval")
    right.set(xlabel="classes k", ylabel="training accuracy")
    right.set_title(f"fit of the training set ({base} steps unless marked)")
    for ax in axes:
        ax.set_xticks(sorted(single.k.unique()))
        ax.legend(fontsize=8)
    return axes
