"""mvlib.plots: the figures the chapters draw, checked on tables whose drawing is known."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from mvlib import evidence, plots  # noqa: E402


def test_forest_draws_one_interval_per_row_top_down_with_zero_marked():
    rows = pd.DataFrame(
        {
            "label": ["a", "b", "c"],
            "mean": [0.1, -0.02, -0.3],
            "lo": [0.05, -0.1, -0.4],
            "hi": [0.15, 0.06, -0.2],
        }
    )
    ax = evidence.forest(rows)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert list(ax.get_yticks()) == [2, 1, 0]  # the first row on top
    bars = [ln for ln in ax.lines if len(ln.get_xdata()) == 2 and ln.get_linestyle() == "-"]
    assert sorted(tuple(b.get_xdata()) for b in bars) == [(-0.4, -0.2), (-0.1, 0.06), (0.05, 0.15)]
    zero = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    assert len(zero) == 1 and tuple(zero[0].get_xdata()) == (0, 0)
    # resolved intervals in black, the one holding zero in grey
    colours = {tuple(b.get_xdata()): matplotlib.colors.to_hex(b.get_color()) for b in bars}
    assert colours[(-0.1, 0.06)] != colours[(0.05, 0.15)] == colours[(-0.4, -0.2)]
    plt.close("all")
    # a single value (n = 1) is drawn as unresolved, whatever its sign
    ax = evidence.forest(rows.assign(n=[1, 5, 5]))
    first = next(b for b in ax.lines if tuple(b.get_xdata()) == (0.05, 0.15))
    assert matplotlib.colors.to_hex(first.get_color()) == colours[(-0.1, 0.06)]
    plt.close("all")


def test_width_curve_draws_the_band_the_curve_and_each_joint_model_at_Km():
    curve = pd.DataFrame(
        {
            "width": [3, 6, 30],
            "mean": [0.6, 0.62, 0.8],
            "min": [0.55, 0.6, 0.7],
            "max": [0.65, 0.66, 0.9],
        }
    )
    singles = pd.DataFrame({"width": [3, 3, 6, 30], "single_view": [0.55, 0.65, 0.62, 0.8]})
    ax = evidence.width_curve(curve, singles, {"sum": [0.8], "ensemble": [0.95, 0.96]}, 3, 10, 10)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"sum", "ensemble", "M = k"} <= set(labels)
    ens = next(ln for ln in ax.lines if ln.get_label() == "ensemble")
    assert list(ens.get_ydata()) == [0.95, 0.96] and all(25 < x < 35 for x in ens.get_xdata())
    assert ax.get_xscale() == "log"
    plt.close("all")


def test_kscaling_marks_theorem1_and_the_longer_runs_apart():
    def table(offset):
        return pd.DataFrame(
            {
                "k": [10, 20, 20],
                "steps": [600, 600, 1200],
                "single_view": [0.7 + offset, 0.6 + offset, 0.65 + offset],
                "single_view_lo": [0.65 + offset, 0.55 + offset, 0.6 + offset],
                "single_view_hi": [0.75 + offset, 0.65 + offset, 0.7 + offset],
                "train": [1.0, 0.98, 1.0],
                "train_lo": [1.0, 0.97, 1.0],
                "train_hi": [1.0, 0.99, 1.0],
            }
        )

    left, right = evidence.kscaling(table(0), table(0.1), base=600)
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert "single model" in labels and "single model, 1200 steps" in labels
    assert "Theorem 1: 1/2" in labels
    assert [t for t in right.get_xticks()] == [10, 20]
    plt.close("all")


def test_occlusion_grid_puts_each_image_beside_each_models_map():
    import torch

    X = torch.rand(4, 1, 8, 8)
    maps = {"member 1": torch.rand(4, 16), "student": torch.rand(4, 16)}
    axes = plots.occlusion_grid(X, maps, picks=[0, 3], patch=2)
    assert axes.shape == (2, 3)
    assert [axes[0, c].get_title() for c in range(3)] == ["image", "member 1", "student"]
    shown = axes[1, 2].get_images()[0].get_array()
    assert shown.shape == (4, 4) and torch.allclose(
        torch.tensor(shown.data), maps["student"][3].reshape(4, 4)
    )
    plt.close("all")
