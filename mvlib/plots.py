"""Figures the chapters share (seaborn / matplotlib). Each function draws on a given ``ax`` (or
a new figure) and returns the axes, so a notebook cell stays one call plus ``plt.show()``.

Needs the ``book`` extra (matplotlib, seaborn); the rest of mvlib does not import this module.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.patches import Rectangle

from mvlib.data import MultiViewData
from mvlib.model import smoothed_relu, smoothed_relu_grad

VIEW_COLORS = ("tab:blue", "tab:orange")


def _ax(ax, figsize=(6, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def feature_heatmap(data: MultiViewData, index: int, ax=None, vmax: float | None = None):
    """Which patch carries which feature (Def. 3.1): |<x_p, v_{j,l}>| for one sample, patches
    (rows) x features (columns ``j.l``), with the two views of the label y boxed in red."""
    ax = _ax(ax, (9, 4))
    V = data.V.reshape(-1, data.V.shape[-1])                       # (2k, d)
    M = _np((data.X[index] @ V.T).abs())                           # (P, 2k)
    k = data.V.shape[0]
    y = int(data.y[index])
    labels = [f"{j}.{l + 1}" for j in range(k) for l in range(2)]
    sns.heatmap(M, ax=ax, cmap="viridis", vmin=0, vmax=vmax, xticklabels=labels,
                cbar_kws={"label": r"$|\langle x_p, v_{j,\ell}\rangle|$"})
    ax.add_patch(Rectangle((2 * y, 0), 2, M.shape[0], fill=False, edgecolor="red", lw=2.5))
    kind = "single-view" if bool(data.single[index]) else "multi-view"
    extra = f", strong view {int(data.strong[index]) + 1}" if bool(data.single[index]) else ""
    ax.set(title=f"sample {index}: {kind}, label y = {y}{extra} (red box: the label's views)",
           xlabel=r"feature $v_{j,\ell}$ (class j . view $\ell$)", ylabel="patch p")
    ax.tick_params(axis="x", labelsize=7, rotation=90)
    ax.tick_params(axis="y", labelsize=8, rotation=0)
    return ax


def noise_levels(sigma_hat, sigma_f: float, sigma_p: float, ax=None):
    """Histogram of each patch's estimated Gaussian noise level ``sigma_hat`` (log scale) with the
    two levels of the generator marked: sigma_f on feature patches, sigma_p on pure-noise patches
    (the departure from Def. 3.1 documented in mvlib.data)."""
    ax = _ax(ax, (7, 3.5))
    sns.histplot(_np(sigma_hat), bins=80, log_scale=True, ax=ax)
    for level, name in ((sigma_f, r"$\sigma_f$"), (sigma_p, r"$\sigma_p$")):
        ax.axvline(level, color="red", ls="--")
        ax.text(level, ax.get_ylim()[1] * 0.9, " " + name, color="red")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set(title="Gaussian noise level of each training patch", xlabel=r"$\|\xi_p\| / \sqrt{d - 2k}$",
           ylabel="patches")
    return ax


def smoothed_relu_plot(q: int, varrho: float, ax=None, lo: float = -0.5, hi: float = 2.5):
    """The smoothed ReLU of Def. 3.4 and its derivative, beside the plain ReLU."""
    ax = _ax(ax, (6, 3.5))
    z = torch.linspace(lo * varrho, hi * varrho, 400)
    ax.plot(z, z.clamp(min=0), color="grey", ls=":", label="ReLU(z)")
    ax.plot(z, smoothed_relu(z, q, varrho), lw=2, label=r"$\widetilde{\mathrm{ReLU}}(z)$")
    ax.plot(z, smoothed_relu_grad(z, q, varrho), lw=2, ls="--", label=r"$\widetilde{\mathrm{ReLU}}'(z)$")
    ax.axvline(varrho, color="k", lw=0.8, alpha=0.5)
    ax.text(varrho, ax.get_ylim()[1] * 0.92, r" $z=\varrho$", va="top")
    ax.set(title=fr"smoothed ReLU, q = {q}, $\varrho$ = {varrho:g}", xlabel="z")
    ax.legend(loc="upper left")
    return ax


def training_curves(history, axes=None, label: str = "member"):
    """Loss and training accuracy over GD steps for every member (History: loss, train_acc (T, K))."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    step = _np(history.step)
    for key, ax, name in (("loss", axes[0], "training loss"), ("train_acc", axes[1], "training accuracy")):
        vals = _np(getattr(history, key))
        for i in range(vals.shape[1]):
            ax.plot(step, vals[:, i], lw=1, alpha=0.7)
        ax.set(title=f"{name} ({vals.shape[1]} {label}s)", xlabel="GD step", ylabel=name)
    axes[0].set_yscale("log")
    return axes


def phi_curves(history, member: int = 0, classes=None, ax=None):
    """Phi_{i,l}(t) = sum_r [<w_{i,r}, v_{i,l}>]^+ over training (Section 2.3) for one member:
    solid = view 1, dashed = view 2, one colour per class."""
    ax = _ax(ax, (7, 4))
    Phi = _np(history.Phi[:, member])                              # (T, k, 2)
    step = _np(history.step)
    classes = range(Phi.shape[1]) if classes is None else classes
    palette = sns.color_palette("tab10", Phi.shape[1])
    for i in classes:
        for l, ls in enumerate(("-", "--")):
            ax.plot(step, Phi[:, i, l], ls=ls, color=palette[i % len(palette)],
                    label=f"class {i}" if l == 0 else None)
    ax.set(title=rf"$\Phi_{{i,\ell}}(t)$ of member {member} (solid: view 1, dashed: view 2)",
           xlabel="GD step", ylabel=r"$\Phi_{i,\ell}$")
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    return ax


def learned_view_map(learned, ax=None, title: str = "which view each member learned"):
    """The learned-view map (Theorem 1's set M): members (rows) x classes (columns), coloured by
    which views Phi says the member learned (metrics.learned_views): view 1, view 2 or both."""
    ax = _ax(ax, (8, 3.5))
    L = _np(learned).astype(int)                                   # (K, k, 2)
    code = L[..., 0] * 1 + L[..., 1] * 2 - 1                       # 0: view 1, 1: view 2, 2: both
    cmap = sns.color_palette([VIEW_COLORS[0], VIEW_COLORS[1], "tab:green"])
    sns.heatmap(code, ax=ax, cmap=cmap, vmin=-0.5, vmax=2.5, linewidths=0.5, linecolor="white",
                cbar_kws={"ticks": [0, 1, 2]})
    ax.collections[0].colorbar.set_ticklabels(["view 1", "view 2", "both"])
    ax.set(title=title, xlabel="class i", ylabel="member")
    return ax


def accuracy_vs_K(single_view, multi_view, coverage=None, ax=None):
    """Ensemble of the first K members (eq. 4.1) against K: single- and multi-view test accuracy
    (arrays (seeds, K)), and optionally the fraction of (class, view) pairs learned by at least
    one of the first K members. Lines are means over seeds, bands their min..max."""
    ax = _ax(ax, (7, 4))
    series = [("single-view test", single_view, "tab:red"), ("multi-view test", multi_view, "tab:blue")]
    if coverage is not None:
        series.append(("views covered (union of learned)", coverage, "tab:green"))
    for name, vals, color in series:
        v = _np(vals)
        K = np.arange(1, v.shape[1] + 1)
        ax.plot(K, v.mean(0), marker="o", color=color, label=name)
        ax.fill_between(K, v.min(0), v.max(0), color=color, alpha=0.2)
    ax.set(title="ensemble of the first K members", xlabel="K (members averaged)", ylabel="accuracy / fraction",
           ylim=(0, 1.02))
    ax.legend(loc="lower right")
    return ax


def accuracy_bars(df, ax=None, x: str = "method", y: str = "accuracy", hue: str = "test set",
                  title: str = "accuracy by test set"):
    """Bar chart of a long table (one row per seed x method x test set), mean with per-seed dots."""
    ax = _ax(ax, (8, 4))
    sns.barplot(df, x=x, y=y, hue=hue, ax=ax, errorbar=None, alpha=0.8)
    sns.stripplot(df, x=x, y=y, hue=hue, ax=ax, dodge=True, palette="dark:k", size=4, legend=False)
    ax.set(title=title, ylim=(0, 1.05))
    ax.legend(loc="lower right", fontsize=8, title=hue, title_fontsize=8)
    return ax


def average_vs_members(members, average, axes=None):
    """Training the average (Message 4) against independent members, over GD steps: left, the
    training loss (members: mean over the K members; average: the joint model F = (1/K) sum f_l);
    right, the balance of the two views, min_l Phi_{i,l} / max_l Phi_{i,l} averaged over classes
    (members: each member's own Phi; average: Phi summed over all its K*m neurons of class i).
    A balance near 0 means one view per class (the lottery); near 1, both views learned."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    step_m, step_a = _np(members.step), _np(average.step)
    axes[0].plot(step_m, _np(members.loss).mean(1), label="independent members (mean)")
    axes[0].plot(step_a, _np(average.loss)[:, 0], label="trained average")
    axes[0].set(title="training loss", xlabel="GD step", ylabel="loss", yscale="log")
    Pm, Pa = members.Phi, average.Phi.sum(1)                       # (T, K, k, 2), (T, k, 2)
    bal_m = (Pm.amin(-1) / Pm.amax(-1).clamp(min=1e-12)).mean((1, 2))
    bal_a = (Pa.amin(-1) / Pa.amax(-1).clamp(min=1e-12)).mean(1)
    axes[1].plot(step_m, _np(bal_m), label="independent members (mean)")
    axes[1].plot(step_a, _np(bal_a), label="trained average")
    axes[1].set(title=r"view balance $\min_\ell \Phi_{i,\ell} / \max_\ell \Phi_{i,\ell}$ (mean over classes)",
                xlabel="GD step", ylabel="balance", ylim=(0, 1.02))
    for ax in axes:
        ax.legend(fontsize=8)
    return axes
