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
from mvlib.metrics import learned_views
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
    V = data.V.reshape(-1, data.V.shape[-1])  # (2k, d)
    M = _np((data.X[index] @ V.T).abs())  # (P, 2k)
    k = data.V.shape[0]
    y = int(data.y[index])
    labels = [f"{j}.{l + 1}" for j in range(k) for l in range(2)]
    sns.heatmap(
        M,
        ax=ax,
        cmap="viridis",
        vmin=0,
        vmax=vmax,
        xticklabels=labels,
        cbar_kws={"label": r"$|\langle x_p, v_{j,\ell}\rangle|$"},
    )
    ax.add_patch(Rectangle((2 * y, 0), 2, M.shape[0], fill=False, edgecolor="red", lw=2.5))
    kind = "single-view" if bool(data.single[index]) else "multi-view"
    extra = f", strong view {int(data.strong[index]) + 1}" if bool(data.single[index]) else ""
    ax.set(
        title=f"sample {index}: {kind}, label y = {y}{extra} (red box: the label's views)",
        xlabel=r"feature $v_{j,\ell}$ (class j . view $\ell$)",
        ylabel="patch p",
    )
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
    ax.set(
        title="Gaussian noise level of each training patch",
        xlabel=r"$\|\xi_p\| / \sqrt{d - 2k}$",
        ylabel="patches",
    )
    return ax


def smoothed_relu_plot(q: int, varrho: float, ax=None, lo: float = -0.5, hi: float = 2.5):
    """The smoothed ReLU of Def. 3.4 and its derivative, beside the plain ReLU."""
    ax = _ax(ax, (6, 3.5))
    z = torch.linspace(lo * varrho, hi * varrho, 400)
    ax.plot(z, z.clamp(min=0), color="grey", ls=":", label="ReLU(z)")
    ax.plot(z, smoothed_relu(z, q, varrho), lw=2, label=r"$\widetilde{\mathrm{ReLU}}(z)$")
    ax.plot(
        z, smoothed_relu_grad(z, q, varrho), lw=2, ls="--", label=r"$\widetilde{\mathrm{ReLU}}'(z)$"
    )
    ax.axvline(varrho, color="k", lw=0.8, alpha=0.5)
    ax.text(varrho, ax.get_ylim()[1] * 0.92, r" $z=\varrho$", va="top")
    ax.set(title=rf"smoothed ReLU, q = {q}, $\varrho$ = {varrho:g}", xlabel="z")
    ax.legend(loc="upper left")
    return ax


def training_curves(history, axes=None, label: str = "member"):
    """Loss and training accuracy over GD steps for every member
    (History: loss, train_acc (T, K))."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    step = _np(history.step)
    for key, ax, name in (
        ("loss", axes[0], "training loss"),
        ("train_acc", axes[1], "training accuracy"),
    ):
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
    Phi = _np(history.Phi[:, member])  # (T, k, 2)
    step = _np(history.step)
    classes = range(Phi.shape[1]) if classes is None else classes
    palette = sns.color_palette("tab10", Phi.shape[1])
    for i in classes:
        for l, ls in enumerate(("-", "--")):
            ax.plot(
                step,
                Phi[:, i, l],
                ls=ls,
                color=palette[i % len(palette)],
                label=f"class {i}" if l == 0 else None,
            )
    ax.set(
        title=rf"$\Phi_{{i,\ell}}(t)$ of member {member} (solid: view 1, dashed: view 2)",
        xlabel="GD step",
        ylabel=r"$\Phi_{i,\ell}$",
    )
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    return ax


def learned_view_map(learned, ax=None, title: str = "which view each member learned"):
    """The learned-view map (Theorem 1's set M): members (rows) x classes (columns), coloured by
    which views Phi says the member learned (metrics.learned_views): view 1, view 2 or both."""
    ax = _ax(ax, (8, 3.5))
    L = _np(learned).astype(int)  # (K, k, 2)
    code = L[..., 0] * 1 + L[..., 1] * 2 - 1  # 0: view 1, 1: view 2, 2: both
    cmap = sns.color_palette([VIEW_COLORS[0], VIEW_COLORS[1], "tab:green"])
    sns.heatmap(
        code,
        ax=ax,
        cmap=cmap,
        vmin=-0.5,
        vmax=2.5,
        linewidths=0.5,
        linecolor="white",
        cbar_kws={"ticks": [0, 1, 2]},
    )
    ax.collections[0].colorbar.set_ticklabels(["view 1", "view 2", "both"])
    ax.set(title=title, xlabel="class i", ylabel="member")
    return ax


def accuracy_vs_K(single_view, multi_view, coverage=None, ax=None):
    """Ensemble of the first K members (eq. 4.1) against K: single- and multi-view test accuracy
    (arrays (seeds, K)), and optionally the fraction of (class, view) pairs learned by at least
    one of the first K members. Lines are means over seeds, bands their min..max."""
    ax = _ax(ax, (7, 4))
    series = [
        ("single-view test", single_view, "tab:red"),
        ("multi-view test", multi_view, "tab:blue"),
    ]
    if coverage is not None:
        series.append(("views covered (union of learned)", coverage, "tab:green"))
    for name, vals, color in series:
        v = _np(vals)
        K = np.arange(1, v.shape[1] + 1)
        ax.plot(K, v.mean(0), marker="o", color=color, label=name)
        ax.fill_between(K, v.min(0), v.max(0), color=color, alpha=0.2)
    ax.set(
        title="ensemble of the first K members",
        xlabel="K (members averaged)",
        ylabel="accuracy / fraction",
        ylim=(0, 1.02),
    )
    ax.legend(loc="lower right")
    return ax


def accuracy_bars(
    df,
    ax=None,
    x: str = "method",
    y: str = "accuracy",
    hue: str = "test set",
    title: str = "accuracy by test set",
):
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
    Pm, Pa = members.Phi, average.Phi.sum(1)  # (T, K, k, 2), (T, k, 2)
    bal_m = (Pm.amin(-1) / Pm.amax(-1).clamp(min=1e-12)).mean((1, 2))
    bal_a = (Pa.amin(-1) / Pa.amax(-1).clamp(min=1e-12)).mean(1)
    axes[1].plot(step_m, _np(bal_m), label="independent members (mean)")
    axes[1].plot(step_a, _np(bal_a), label="trained average")
    axes[1].set(
        title=r"view balance $\min_\ell \Phi_{i,\ell} / \max_\ell \Phi_{i,\ell}$"
        " (mean over classes)",
        xlabel="GD step",
        ylabel="balance",
        ylim=(0, 1.02),
    )
    for ax in axes:
        ax.legend(fontsize=8)
    return axes


# --- chapters 4-6: distillation, self-distillation, NTK ------------------------------------------


def _plain_log_ticks(axis):
    """Plain numbers (0.1, 0.5, 2) instead of powers of ten on a log-scaled axis; minor ticks are
    labelled only when the axis spans less than a decade (else they would crowd)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:.3g}")
    lo, hi = axis.get_view_interval()
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(fmt if lo > 0 and hi / lo < 10 else NullFormatter())


def soft_labels(
    probs: dict, y: int, feature_class: int | None = None, ax=None, title: str = "soft labels"
):
    """Grouped bars of soft labels over the k classes, one group per teacher ({name: probs (k,)}).
    The label y is marked and the class of an off-class feature present in the sample is shaded."""
    ax = _ax(ax, (8, 3.5))
    names = list(probs)
    k = len(_np(probs[names[0]]))
    width = 0.8 / len(names)
    for n, name in enumerate(names):
        ax.bar(
            np.arange(k) + (n - (len(names) - 1) / 2) * width, _np(probs[name]), width, label=name
        )
    if feature_class is not None:
        ax.axvspan(
            feature_class - 0.45,
            feature_class + 0.45,
            color="gold",
            alpha=0.25,
            lw=0,
            label=f"class {feature_class}: its feature is in X",
        )
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis)
    ax.set_xticks(range(k), [f"{i}\n(label)" if i == y else str(i) for i in range(k)])
    ax.set(title=title, xlabel="class i", ylabel="softmax$_i$(F / T)  (log scale)")
    ax.legend(fontsize=8, loc="upper right")
    return ax


def off_class_plot(df, ax=None, title: str = "dark knowledge: soft label of a wrong class j"):
    """Box plot of ``mvlib.report.off_class_table``: soft label of wrong class j relative to the
    mean wrong class (log scale; 1 = no dark knowledge), by teacher and by whether class j's
    feature is in the sample."""
    ax = _ax(ax, (8, 4))
    order = ["absent", "present, learned", "present, missed"]
    sns.boxplot(
        df,
        x="teacher",
        y="ratio",
        hue="feature of class j",
        hue_order=order,
        ax=ax,
        showfliers=False,
        palette=["lightgrey", "tab:green", "tab:red"],
    )
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis)
    ax.set(title=title, ylabel=r"softmax$_j$(G/T) / mean over wrong classes")
    ax.legend(fontsize=8, title="feature of class j in X", title_fontsize=8, loc="upper left")
    return ax


def phi_scatter(phis: dict, axes=None, threshold: float = 0.5):
    """Phi_{i,1} against Phi_{i,2} for every (model, class), one panel per group
    ({name: Phi (K, k, 2)}). Points near an axis learned one view; points between the dashed lines
    (ratio >= threshold, the rule of metrics.learned_views) learned both. The title gives the
    fraction of both-view classes."""
    if axes is None:
        _, axes = plt.subplots(
            1, len(phis), figsize=(3.2 * len(phis), 3.4), sharex=True, sharey=True
        )
    axes = np.atleast_1d(axes)
    top = max(float(_np(P).max()) for P in phis.values()) * 1.05
    for ax, (name, Phi) in zip(axes, phis.items()):
        P = _np(Phi).reshape(-1, 2)
        both = float(learned_views(torch.as_tensor(Phi), threshold).all(-1).float().mean())
        ax.scatter(P[:, 0], P[:, 1], s=14, alpha=0.6, color="tab:green")
        for slope in (threshold, 1 / threshold):
            ax.plot([0, top], [0, top * slope], "k--", lw=0.7)
        ax.set(
            xlim=(0, top),
            ylim=(0, top),
            title=f"{name}\nboth views: {both:.0%} of classes",
            xlabel=r"$\Phi_{i,1}$",
        )
    axes[0].set_ylabel(r"$\Phi_{i,2}$")
    return axes


def per_view_plot(frame, level: float = 0.5, ax=None):
    """The distribution of per-(class, view) single-view accuracy of each model of
    :func:`mvlib.report.per_view_accuracy`'s frame, with the level at which a view counts as
    learned: a count of learned views is read off this histogram, not instead of it."""
    ax = _ax(ax, (7, 3.6))
    sns.histplot(frame, x="accuracy", hue="model", element="step", stat="probability",
                 common_norm=False, bins=np.linspace(0, 1, 21), ax=ax)  # fmt: skip
    ax.axvline(level, color="k", ls=":", lw=1)
    ax.set(xlabel="accuracy on the single-view samples of one (class, view)",
           ylabel="share of (class, view) cells",
           title=f"per-view accuracy; a view counts as learned at {level:g} (dotted)")  # fmt: skip
    return ax


def generations_plot(df, baseline: float, bound: float = 0.75, ax=None, y: str = "single_view"):
    """Single-view test accuracy by distillation generation (born-again chain), real teacher beside
    its flat control; ``df`` long (generation, teacher, seed, single_view). Horizontal lines: the
    single model's mean (``baseline``) and Theorem 4's bound."""
    ax = _ax(ax, (7, 4))
    sns.pointplot(
        df, x="generation", y=y, hue="teacher", ax=ax, errorbar=("pi", 100), dodge=0.25, capsize=0.1
    )
    ax.axhline(baseline, color="grey", ls="--", lw=1, label=f"single model ({baseline:.2f})")
    ax.axhline(bound, color="tab:red", ls=":", lw=1, label=f"Theorem 4: {bound:.2f}")
    ax.set(
        title="self-distillation, generation by generation",
        ylabel="single-view test accuracy",
        ylim=(0, 1.02),
    )
    ax.legend(fontsize=8, loc="lower right")
    return ax


def phi_growth(histories: dict, ax=None):
    """Mean over (member, class) of the stronger and the weaker view's Phi over training, for
    several trained models ({name: History}); the lottery shows as the two lines separating."""
    ax = _ax(ax, (7, 4))
    palette = sns.color_palette("tab10", len(histories))
    for color, (name, h) in zip(palette, histories.items()):
        Phi, step = _np(h.Phi), _np(h.step)  # (T, K, k, 2)
        ax.plot(step, Phi.max(-1).mean((1, 2)), color=color, lw=2, label=f"{name}: stronger view")
        ax.plot(
            step, Phi.min(-1).mean((1, 2)), color=color, lw=2, ls="--", label=f"{name}: weaker view"
        )
    ax.set(
        title=r"$\Phi$ over training: max and min over the two views",
        xlabel="GD step",
        ylabel=r"mean $\Phi_{i,\ell}$",
    )
    ax.legend(fontsize=8)
    return ax


def view_response_plot(responses: dict, ax=None):
    """How strongly class i's output responds to its own views: F_i of a probe input whose only
    non-zero patch is v_{i,l}, for every (member, class), stronger and weaker view
    ({name: responses (K, k, 2)}), on a symmetric log scale."""
    import pandas as pd

    ax = _ax(ax, (6, 4))
    frames = []
    for name, R in responses.items():
        R = _np(R)
        for view, vals in (("stronger view", R.max(-1)), ("weaker view", R.min(-1))):
            frames.append(pd.DataFrame({"model": name, "view": view, "response": vals.ravel()}))
    df = pd.concat(frames, ignore_index=True)
    sns.stripplot(
        df, x="model", y="response", hue="view", dodge=True, ax=ax, size=4, alpha=0.6, jitter=0.25
    )
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.axhline(0, color="k", lw=0.6)
    ax.set(
        title=r"response of $F_i$ to a patch carrying $v_{i,\ell}$",
        ylabel=r"$F_i$(probe)  (symlog)",
    )
    ax.legend(fontsize=8, loc="upper right")
    return ax


def occlusion_grid(X, maps: dict, picks, patch: int):
    """Occlusion maps beside their images (chapter 9): one row per test image index in
    ``picks`` (X: (n, C, H, W)), its image first, then each model's map of ``maps``
    ({name: (n, P)} drops of the true class's log-probability per patch, P = (H/patch)^2),
    bright where occluding the patch hurts the prediction most."""
    side = X.shape[-1] // patch
    ncol = len(maps) + 1
    fig, axes = plt.subplots(
        len(picks), ncol, figsize=(1.6 * ncol, 1.7 * len(picks)), squeeze=False
    )
    for r, n in enumerate(picks):
        img = X[n].cpu().permute(1, 2, 0).squeeze(-1)
        img = (img - img.min()) / (img.max() - img.min())
        axes[r, 0].imshow(_np(img), cmap="gray_r" if img.dim() == 2 else None)
        for c, M in enumerate(maps.values(), 1):
            axes[r, c].imshow(_np(M[n].reshape(side, side)), cmap="magma")
    for c, name in enumerate(["image", *maps]):
        axes[0, c].set_title(name, fontsize=8)
    for a in axes.flat:
        a.set(xticks=[], yticks=[])
    fig.suptitle("occlusion maps: bright = the patch the prediction relies on", fontsize=9)
    return axes
