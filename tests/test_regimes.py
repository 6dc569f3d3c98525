"""mvlib.regimes on hand-made sweep frames: claim intervals, holds, maps, live slice, k-scaling,
provenance."""

import json
import math
import platform
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from mvlib import maps
from mvlib import regimes as rg
from mvlib.stats import t975

matplotlib.use("Agg")
DK = rg.Claim("dark", "distill", "distill_permuted")
LEVEL = rg.Claim("sd >= 3/4", "self_distill", level=0.75)


def frame(points: dict, grid=("T", "off_high"), other=None) -> pd.DataFrame:
    """A sweep's tidy frame: ``{grid values: {method: [single_view per seed]}}``."""
    rows = []
    for values, methods in points.items():
        for method, accs in methods.items():
            for seed, acc in enumerate(accs):
                rows.append(
                    {
                        "preset": "ci",
                        "k": 10,
                        **dict(zip(grid, values)),
                        **(other or {}),
                        "seed": seed,
                        "method": method,
                        "train": 1.0,
                        "multi_view": 0.99,
                        "single_view": acc,
                        "overall": 0.9,
                        "both_views": 0.1,
                    }
                )
    return pd.DataFrame(rows)


SWEEP = frame(
    {
        (4, 0.4): {"distill": [0.8, 0.9, 0.85], "distill_permuted": [0.7, 0.79, 0.76]},  # holds
        (4, 0.8): {"distill": [0.8, 0.7, 0.9], "distill_permuted": [0.7, 0.8, 0.8]},  # straddles 0
        (8, 0.4): {"distill": [0.6, 0.6, 0.6], "distill_permuted": [0.7, 0.7, 0.7]},  # negative
    }
)


def test_claim_table_paired_interval_and_holds():
    t = rg.claim_table(SWEEP, [DK])
    assert list(t.columns[:2]) == ["T", "off_high"] and len(t) == 3
    row = t[(t["T"] == 4) & (t.off_high == 0.4)].iloc[0]
    diffs = [0.1, 0.11, 0.09]
    half = t975(2) * pd.Series(diffs).std() / math.sqrt(3)
    assert row["mean"] == pytest.approx(0.1) and row.seeds == 3
    assert row.lo == pytest.approx(0.1 - half) and row.hi == pytest.approx(0.1 + half)
    assert list(t.holds) == [True, False, False]


def test_holds_needs_two_seeds():
    one = frame(
        {
            (4, 0.4): {"distill": [0.9], "distill_permuted": [0.1]},
            (8, 0.4): {"distill": [0.9, 0.9], "distill_permuted": [0.1, 0.2]},
        }
    )
    t = rg.claim_table(one, [DK])
    assert list(t.seeds) == [1, 2] and list(t.holds) == [False, True]


def test_level_claim_and_missing_method_skipped():
    df = frame(
        {
            (4, 0.4): {"self_distill": [0.8, 0.82, 0.81]},
            (8, 0.4): {"self_distill": [0.74, 0.76, 0.75]},
        }
    )
    t = rg.claim_table(df, [LEVEL, DK])  # DK's methods are absent: no rows
    assert list(t.claim) == [LEVEL.name] * 2
    assert t["mean"].tolist() == pytest.approx([0.81 - 0.75, 0.0], abs=1e-12)
    assert list(t.holds) == [True, False]


def test_explicit_grid_for_a_partial_sweep():
    part = SWEEP[SWEEP["T"] == 4]
    part = part[part.off_high == 0.4]  # nothing varies yet
    assert rg.grid_columns(part) == []
    t = rg.claim_table(part, [DK], grid=["T", "off_high"])
    assert t[["T", "off_high"]].values.tolist() == [[4, 0.4]] and bool(t.holds.iloc[0])


def test_claim_map_pivot_and_missing_points():
    t = rg.claim_table(SWEEP, [DK])
    m = rg.claim_map(t, "dark", "T", "off_high", values={"T": [4, 8, 16]})
    assert m.mean.shape == (3, 2) and list(m.mean.index) == [4, 8, 16]
    assert m.mean.loc[4, 0.4] == pytest.approx(0.1) and m.mean.loc[8, 0.4] == pytest.approx(-0.1)
    assert math.isnan(m.mean.loc[8, 0.8]) and math.isnan(m.mean.loc[16, 0.4])
    assert m.holds.to_numpy().sum() == 1 and bool(m.holds.loc[4, 0.4])
    assert m.holds.dtypes.eq(bool).all()
    lab = m.labels(".2f")
    assert lab.loc[8, 0.4] == "-0.10\n[-0.10, -0.10]" and lab.loc[16, 0.8] == ""


def test_claim_map_refuses_unknown_claim_and_a_third_grid_column():
    t = rg.claim_table(SWEEP, [DK])
    with pytest.raises(ValueError, match="not in the table"):
        rg.claim_map(t, "nope", "T", "off_high")
    three = pd.concat([SWEEP, SWEEP.assign(k=12)])
    with pytest.raises(ValueError, match="another grid column"):
        rg.claim_map(rg.claim_table(three, [DK]), "dark", "T", "off_high")


def test_holds_where_lists_points_where_every_claim_holds():
    rev = rg.Claim("rev", "distill_permuted", "distill")
    t = rg.claim_table(SWEEP, [DK, rev])
    assert rg.holds_where(t, "dark", ["T", "off_high"]) == [{"T": 4, "off_high": 0.4}]
    assert rg.holds_where(t, ["rev"], ["T", "off_high"]) == [{"T": 8, "off_high": 0.4}]
    assert rg.holds_where(t, ["dark", "rev"], ["T", "off_high"]) == []
    assert rg.holds_where(t, "other", ["T"]) == []


def test_describe_says_where_and_nowhere():
    t = rg.claim_table(SWEEP, [DK, rg.Claim("none", "distill", "distill")])
    dark, none = rg.describe(t, ["T", "off_high"])
    assert dark == (
        "dark: holds at 1 of 3 grid points (T=4, off_high=0.4); mean from -0.100 to +0.100"
    )
    assert none.startswith("none: holds nowhere in the 3 grid points tried, equivalent to zero")


def test_heatmaps_frame_the_points_where_a_claim_holds():
    t = rg.claim_table(SWEEP, [DK, rg.Claim("rev", "distill_permuted", "distill")])
    fig = rg.claim_heatmaps(t, ["dark", "rev"], "T", "off_high", ncols=3)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in axes] == ["dark", "rev"]
    assert [ax.get_label() for ax in fig.axes].count("<colorbar>") == 1, "one shared scale"
    frames = [[p for p in ax.patches if not p.get_fill()] for ax in axes]
    assert [len(f) for f in frames] == [1, 1]  # rev holds at (8, 0.4), dark at (4, 0.4)
    texts = [x.get_text() for x in axes[0].texts]
    assert "0.10\n[0.08, 0.12]" in texts


def test_explorable_maps_one_heatmap_per_claim_and_a_dropdown_showing_one():
    t = rg.claim_table(SWEEP, [DK, rg.Claim("rev", "distill_permuted", "distill")])
    one = {"distill": [0.8, 0.9], "distill_permuted": [0.7, 0.7]}
    other = rg.claim_table(frame({(4, 0.1): one}, ("T", "mu")), [DK], ["T", "mu"])
    fig = maps.explorable_maps(
        {"a": (t, [DK, "rev"], "T", "off_high"), "b": (other, [DK], "T", "mu")}
    )
    assert [d.type for d in fig.data] == ["heatmap"] * 3
    (menu,) = fig.layout.updatemenus
    assert [b.label for b in menu.buttons] == ["a: dark", "a: rev", "b: dark"]
    for n, b in enumerate(menu.buttons):
        assert b.args[0]["visible"] == [i == n for i in range(3)]
    assert [d.visible for d in fig.data] == [True, False, False]
    dark = fig.data[0]
    assert list(dark.x) == ["off_high = 0.4", "off_high = 0.8"] and list(dark.y) == [
        "T = 4",
        "T = 8",
    ]
    assert dark.text[0][0] == "0.100<br>[0.075, 0.125]<br><b>holds</b>"
    assert dark.text[0][1].endswith("not resolved") and dark.text[1][0].endswith("fails")
    assert dark.zmid == 0 and dark.zmax == -dark.zmin == pytest.approx(0.1)


def test_at_compares_as_floats_and_names_a_missing_column():
    assert set(rg.at(SWEEP, T=4.0, off_high="0.4").method) == {"distill", "distill_permuted"}
    assert len(rg.at(SWEEP, T=4, off_high=0.4)) == 6
    assert len(rg.at(rg.claim_table(SWEEP, [DK]), T=8)) == 1
    with pytest.raises(KeyError, match="no column 'mu'"):
        rg.at(SWEEP, mu=0.1)


def test_prediction_of_one_method_and_of_a_paired_difference():
    one = rg.prediction(SWEEP, "distill", T=4, off_high=0.4)
    sd = pd.Series([0.8, 0.9, 0.85]).std()
    assert one.mean == pytest.approx(0.85) and one.n == 3
    assert one.hi == pytest.approx(0.85 + t975(2) * sd * math.sqrt(4 / 3))
    two = rg.prediction(SWEEP, "distill", "distill_permuted", T=4, off_high=0.4)
    sd = pd.Series([0.1, 0.11, 0.09]).std()
    assert two.mean == pytest.approx(0.1) and two.lo == pytest.approx(
        0.1 - t975(2) * sd * math.sqrt(4 / 3)
    )
    with pytest.raises(ValueError, match="no rows"):
        rg.prediction(SWEEP, "distill", T=32, off_high=0.4)


def test_shipped_sweeps_are_package_data():
    assert rg.data_dir() == Path(rg.__file__).parent / "sweeps"
    assert (rg.data_dir() / "regimes_data.csv").exists()


def test_shipped_reads_the_data_dir(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    SWEEP.to_csv(tmp_path / "data" / "regimes_x.csv", index=False)
    monkeypatch.setattr(maps, "data_dir", lambda: tmp_path / "data")
    pd.testing.assert_frame_equal(rg.shipped("regimes_x"), SWEEP)
    with pytest.raises(FileNotFoundError, match="regimes.sh"):
        rg.shipped("regimes_y")


def test_shipped_map_carries_its_grid_for_a_partial_sweep(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    one = rg.at(SWEEP, T=4, off_high=0.4)  # the first grid point only: nothing varies
    one.to_csv(tmp_path / "data" / "regimes_kd_T.csv", index=False)
    monkeypatch.setattr(maps, "data_dir", lambda: tmp_path / "data")
    monkeypatch.setitem(maps.GRIDS, "regimes_kd_T", ("T", "off_high"))
    df = rg.shipped("regimes_kd_T")
    assert df.attrs["grid"] == ["T", "off_high"]
    t = rg.claim_table(df, [DK])
    assert list(t.columns[:2]) == ["T", "off_high"] and bool(rg.at(t, T=4).holds.iloc[0])


def test_live_slice_inside_and_outside_prediction_interval():
    shipped = rg.at(SWEEP, T=4, off_high=0.4)
    live = {"distill": {"single_view": 0.86}, "distill_permuted": {"single_view": 0.2}}
    s = rg.live_slice(shipped, live, [DK], ["distill", "distill_permuted"]).set_index("quantity")
    assert s.loc["distill", "inside"] and not s.loc["distill_permuted", "inside"]
    assert s.loc["dark", "live"] == pytest.approx(0.66) and not s.loc["dark", "inside"]
    sd = pd.Series([0.8, 0.9, 0.85]).std()
    assert s.loc["distill", "hi"] == pytest.approx(0.85 + t975(2) * sd * math.sqrt(4 / 3))
    lv = frame({(4, 0.4): {"self_distill": [0.8, 0.82, 0.81]}})
    s = rg.live_slice(lv, {"self_distill": {"single_view": 0.81}}, [LEVEL], [])
    assert s.quantity.tolist() == [LEVEL.name] and s.live.iloc[0] == pytest.approx(0.06)
    assert bool(s.inside.iloc[0])


def test_with_live_replaces_one_seed_and_can_overturn_a_claim():
    shipped = rg.at(SWEEP, T=4, off_high=0.4)
    live = {"distill": {"single_view": 0.5}}
    redrawn = rg.with_live(shipped, live, seed=0)
    assert redrawn[(redrawn.method == "distill")].single_view.tolist() == [0.5, 0.9, 0.85]
    assert shipped[(shipped.method == "distill")].single_view.tolist() == [0.8, 0.9, 0.85]
    grid = ["T", "off_high"]
    assert rg.claim_table(shipped, [DK], grid).holds.all()
    assert not rg.claim_table(redrawn, [DK], grid).holds.any()


def test_regime_mismatch_names_parameters_outside_ignore():
    from mvlib.experiments import as_dict
    from mvlib.presets import get_preset

    cfg = get_preset("ci")
    shipped = pd.DataFrame([{**as_dict(cfg), "seed": 0, "method": "single"}])
    assert rg.regime_mismatch(shipped, cfg) == {}
    assert rg.regime_mismatch(shipped, get_preset("book")) == {}  # n_test and seeds only
    assert rg.regime_mismatch(shipped, get_preset("ci", T=4)) == {"T": (8.0, 4.0)}
    assert set(rg.regime_mismatch(shipped, get_preset("paper"))) >= {"k", "N", "d"}
    # only what the methods' results depend on: sd_steps is not a KD parameter
    longer = get_preset("ci", sd_steps=2 * cfg.sd_steps)
    other = {"sd_steps": (cfg.sd_steps, 2 * cfg.sd_steps)}
    assert rg.regime_mismatch(shipped, longer) == other
    assert rg.regime_mismatch(shipped, longer, methods=["distill", "single"]) == {}
    assert rg.regime_mismatch(shipped, longer, methods=["self_distill"]) == other


def test_held_methods_and_their_claims():
    from mvlib.experiments import as_dict
    from mvlib.presets import get_preset

    cfg = get_preset("ci")
    rows = pd.DataFrame(
        [{**as_dict(cfg), "seed": 0, "method": m} for m in ("single", "distill", "self_distill")]
    )
    longer = get_preset("ci", sd_steps=2 * cfg.sd_steps)
    methods = ["single", "distill", "distill_permuted", "self_distill"]
    assert rg.held_methods(rows, cfg, methods) == ["single", "distill", "self_distill"]
    assert rg.held_methods(rows, longer, methods) == ["single", "distill"]
    names = [c.name for c in rg.claims_on(rg.KD_CLAIMS + rg.SD_CLAIMS, ["single", "distill"])]
    assert names == ["distillation - single"]


def test_depends_on_reads_the_cached_units():
    assert {"k", "mu", "m", "eta", "steps", "K"} <= rg.depends_on(["single"])
    assert "T" not in rg.depends_on(["single"]) and "T" in rg.depends_on(["distill"])
    assert "sd_steps" in rg.depends_on(["self_distill_continue"])
    assert "sd_steps" not in rg.depends_on(["distill_permuted", "ensemble"])
    assert "eta_ntk" in rg.depends_on(["ntk_single"]) and "eta" not in rg.depends_on(["ntk_single"])


def test_kscaling_per_k():
    df = pd.concat(
        [
            frame(
                {(k,): {"single": [0.5, 0.6, 0.55], "ensemble": [0.9] * 3}},
                grid=("k",),
                other={"N": 60 * k, "steps": 600},
            )
            for k in (20, 10)
        ]
    )
    longer = frame({(20,): {"single": [0.5] * 2}}, grid=("k",), other={"N": 1, "steps": 1200})
    ks = rg.kscaling(pd.concat([df, longer]))
    assert ks.k.tolist() == [10, 20, 20] and ks.N.tolist() == [600, 1200, 1]
    assert ks.steps.tolist() == [600, 600, 1200] and ks.seeds.tolist() == [3, 3, 2]
    ks = rg.kscaling(df)
    assert ks.single_view.tolist() == pytest.approx([0.55, 0.55]) and (ks.seeds == 3).all()
    assert (ks.single_view_lo < 0.55).all() and (ks.train == 1.0).all()
    assert ks.both_views.tolist() == pytest.approx([0.1, 0.1])
    assert rg.kscaling(df, "ensemble").single_view.tolist() == pytest.approx([0.9, 0.9])


def test_provenance_round_trip(tmp_path):
    import mvlib
    from mvlib.provenance import source_hash

    csv = tmp_path / "sweep.csv"
    assert rg.read_provenance(csv) is None
    with pytest.raises(FileNotFoundError, match="run the sweep first"):
        rg.write_provenance(csv, "bash x.sh")
    SWEEP.to_csv(csv, index=False)
    path = rg.write_provenance(csv, "bash scripts/regimes.sh")
    assert path == tmp_path / "sweep.csv.provenance.json"
    rec = rg.read_provenance(csv)
    assert rec == json.loads(path.read_text())
    assert rec["command"] == "bash scripts/regimes.sh" and rec["csv"] == "sweep.csv"
    assert rec["mvlib_version"] == mvlib.__version__ and rec["source_hash"] == source_hash()
    assert rec["machine"]["cpu_count"] >= 1 and rec["machine"]["torch"]
    assert rec["machine"]["python"] == platform.python_version()
    assert rec["date"][:2] == "20"
    assert rg.provenance_line(csv).endswith("computed by this code")
    rec["source_hash"], rec["machine"]["gpu"] = "another", "NVIDIA H200"
    path.write_text(json.dumps(rec))
    assert rg.provenance_line(csv).endswith("on an NVIDIA H200, computed by OTHER code")
    assert rg.provenance_line(tmp_path / "none.csv") == "none.csv: no provenance record"


def test_beside_joins_a_run_and_its_extension_on_the_extensions_methods():
    base = pd.DataFrame(
        {"method": ["single", "distill", "single"], "k": [30, 30, 30], "seed": [0, 0, 1]}
    )
    extra = pd.DataFrame({"method": ["single"], "k": [60], "seed": [0]})
    both = rg.beside(extra, base)
    assert list(zip(both.method, both.k, both.seed)) == [
        ("single", 30, 0),
        ("single", 30, 1),
        ("single", 60, 0),
    ]
    assert list(both.index) == [0, 1, 2]


def test_tagged_claims_share_one_table():
    both = rg.tagged((DK,), "KD") + rg.tagged((rg.Claim("dark", "self_distill", "distill"),), "SD")
    assert [c.name for c in both] == ["KD: dark", "SD: dark"] and both[0].a == "distill"
    df = frame(
        {
            (4, 0.4): {
                "distill": [0.8, 0.9],
                "distill_permuted": [0.7, 0.8],
                "self_distill": [0.9, 0.95],
            }
        }
    )
    t = rg.claim_table(df, both, grid=["T", "off_high"])
    assert t.claim.tolist() == ["KD: dark", "SD: dark"]
    assert set(rg.DARK_KNOWLEDGE) <= {c.name for c in rg.KD_CLAIMS}
    assert set(rg.THEOREM4) <= {c.name for c in rg.SD_CLAIMS}


def test_theorem1_regime_needs_the_fit_and_the_band():
    t = pd.DataFrame(
        {
            "train": [1.0, 0.95, 1.0, 1.0],
            "single_view_lo": [0.47, 0.47, 0.44, 0.5],
            "single_view_hi": [0.53, 0.53, 0.53, 0.56],
        }
    )
    assert rg.theorem1_regime(t).tolist() == [True, False, False, False]
    assert rg.theorem1_regime(t, fit=0.9, band=0.1).tolist() == [True] * 4


def test_at_reads_a_column_of_names():
    forms = frame({("eq43", 10): {"distill": [0.8, 0.9]}, ("hinton", 10): {"distill": [0.7, 0.7]}},
                  grid=("kd", "k"))  # fmt: skip
    assert rg.at(forms, kd="eq43", k=10).single_view.tolist() == [0.8, 0.9]


def test_sensitivity_pairs_seeds_and_shows_which_method_moved():
    a = frame({(10, 0.1): {"distill": [0.80, 0.82, 0.81], "distill_permuted": [0.70, 0.72, 0.71]}},
              grid=("k", "mu"))  # fmt: skip
    b = frame({(10, 0.1): {"distill": [0.80, 0.83, 0.81], "distill_permuted": [0.60, 0.63, 0.60]}},
              grid=("k", "mu"))  # fmt: skip
    moved = rg.sensitivity(a, b, ["distill", "distill_permuted"], ["k", "mu"]).set_index("method")
    assert moved.loc["distill_permuted", "change"].hi < 0  # the control moved
    assert moved.loc["distill", "change"].lo <= 0 <= moved.loc["distill", "change"].hi
    assert moved.loc["distill", "b"] == pytest.approx(0.8133333, abs=1e-6)
    assert (moved.seeds == 3).all()


def test_moved_says_how_far_and_where_a_method_moved():
    a = frame({(10, 0.1): {"distill_permuted": [0.70, 0.72, 0.71]},
               (12, 0.1): {"distill_permuted": [0.70, 0.71, 0.72]}}, grid=("k", "mu"))  # fmt: skip
    b = frame({(10, 0.1): {"distill_permuted": [0.60, 0.63, 0.60]},
               (12, 0.1): {"distill_permuted": [0.70, 0.72, 0.71]}}, grid=("k", "mu"))  # fmt: skip
    table = rg.sensitivity(a, b, ["distill_permuted"], ["k", "mu"])
    assert rg.moved(table, "distill_permuted") == (
        "-0.100 to +0.000 (significantly up at 0, down at 1 of 2 points)"
    )
