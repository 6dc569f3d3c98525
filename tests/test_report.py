"""The chapters' analyses (mvlib.report): each checked on a case whose answer is known."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest
import torch
from _mvhelpers import gen, tiny_data_config

from mvlib import report
from mvlib.data import MultiViewData, features, sample


@pytest.fixture(scope="module")
def cfg():
    # sigma_p large enough that the two noise levels separate cleanly at d = 64
    return tiny_data_config(d=64, P=8, sigma_p=0.3, sigma_f=0.01, gamma=0.01)


@pytest.fixture(scope="module")
def drawn(cfg):
    g = gen(3)
    V = features(cfg, g)
    return sample(cfg, 600, V, g)


def test_noise_level_and_feature_patches_recover_the_generator(cfg, drawn):
    carrying = cfg.C_p * (drawn.Z > 0).sum((1, 2))  # feature patches per sample
    fp = report.feature_patches(drawn.X, drawn.V, cfg.sigma_f, cfg.sigma_p)
    assert torch.equal(fp.sum(1), carrying)
    level = report.noise_level(drawn.X, drawn.V)
    assert abs(float(level[fp].median()) / cfg.sigma_f - 1) < 0.1
    assert abs(float(level[~fp].median()) / cfg.sigma_p - 1) < 0.1


def test_measured_coefficients_are_Z_plus_feature_noise(cfg, drawn):
    """Zhat = Z + sum over the sample's feature patches of alpha ~ U[0, gamma] + N(0, sigma_f^2)."""
    Zhat = report.measured_coefficients(drawn.X, drawn.V, cfg.sigma_f, cfg.sigma_p)
    n_fp = report.feature_patches(drawn.X, drawn.V, cfg.sigma_f, cfg.sigma_p).sum(1)
    err = Zhat - drawn.Z - (n_fp * cfg.gamma / 2)[:, None, None]
    sd = torch.sqrt(n_fp * (cfg.gamma**2 / 12 + cfg.sigma_f**2)).max()
    assert float(err.abs().max()) < 6 * float(sd)
    assert abs(float(err.mean())) < 4 * float(sd) / math.sqrt(err.numel())


def test_generator_checks_pass_on_the_generator_and_fail_on_broken_data(cfg, drawn):
    ok = report.generator_checks(drawn, [drawn], cfg)
    assert ok.ok.all(), ok[~ok.ok]
    assert len(ok) == 2 + 5 * 2 + 2
    # two features on one patch: the disjointness row fails
    X = drawn.X.clone()
    X[:, 0] += drawn.V[0, 0] + drawn.V[1, 1]
    bad = report.generator_checks(replace(drawn, X=X), [replace(drawn, X=X)], cfg)
    assert not bad.set_index("statistic").loc["one feature per patch: 2nd largest projection", "ok"]
    # non-orthonormal features
    V = drawn.V.clone()
    V[0, 0] = V[0, 0] + 0.01 * V[0, 1]
    assert not report.generator_checks(replace(drawn, V=V), [replace(drawn, V=V)], cfg).ok[0]
    # own views drawn from the wrong range: the mean row of the multi-view views fails
    wrong = replace(cfg, view_low=1.5, view_high=2.5)
    rows = report.generator_checks(drawn, [drawn], wrong).set_index("statistic")
    assert not rows.loc["multi-view, label's views: mean - n_fp gamma/2", "ok"]
    # a single-view fraction far from mu
    assert not report.generator_checks(drawn, [drawn], replace(cfg, mu=0.5)).ok.iloc[-2]


def test_wilson_interval():
    lo, hi = report.wilson(50, 100, z=1.96)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = report.wilson(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and 0 < hi < 0.6


def _data(y, single, strong, k=3, d=6):
    N = len(y)
    V = torch.eye(d)[: 2 * k].view(k, 2, d)
    return MultiViewData(
        torch.zeros(N, 2, d),
        torch.tensor(y),
        torch.tensor(single),
        torch.tensor(strong),
        torch.zeros(N, k, 2),
        V,
    )


def _logits(pred, k=3):
    """One member per row of predicted classes: (K, N, k) with a margin of 1."""
    return torch.nn.functional.one_hot(torch.tensor(pred), k).float()


def test_unfitted_samples_lists_each_miss():
    data = _data([0, 1, 2, 1], [False, True, True, False], [-1, 0, 1, -1])
    F = _logits([[0, 1, 0, 1], [0, 0, 2, 1]])  # member 0 misses sample 2, member 1 sample 1
    learned = torch.zeros(2, 3, 2, dtype=torch.bool)
    learned[1, 1, 0] = True
    df = report.unfitted_samples(F, data, learned)
    assert df[["member", "sample", "label"]].values.tolist() == [[0, 2, 2], [1, 1, 1]]
    assert df["single-view"].tolist() == [True, True]
    assert df["strong view learned"].tolist() == [False, True]
    assert report.unfitted_samples(_logits([[0, 1, 2, 1]]), data, learned[:1]).empty


def test_lottery_prediction_one_view_per_class():
    """A member right exactly on the samples of view 0: c = 1/2 and it is measured as 1/2."""
    k, reps = 3, 4
    y = [i for i in range(k) for _ in range(4 * reps)]
    strong = [l for _ in range(k) for _ in range(reps) for l in (0, 0, 1, 1)]  # both halves
    data = _data(y, [True] * len(y), strong)
    pred = [c if l == 0 else (c + 1) % k for c, l in zip(y, strong)]
    both = list(y)  # a second member learned both views
    df = report.lottery_prediction(_logits([pred, both]), data)
    assert df["predicted (c)"].tolist() == [0.5, 1.0]
    assert df["both views (b)"].tolist() == [0.0, 1.0]
    assert df["measured"].tolist() == [0.5, 1.0]
    assert df["on learned"].tolist() == [1.0, 1.0] and df["on unlearned"].tolist()[0] == 0.0


def test_split_halves_alternate():
    data = _data([0, 1, 2, 0, 1], [True] * 5, [0, 1, 0, 1, 0])
    a, b = report.split_halves(data)
    assert a.y.tolist() == [0, 2, 1] and b.y.tolist() == [1, 0]
    assert torch.equal(a.V, data.V)


def test_off_class_table_ratio_and_categories():
    """Two samples, k = 3; sample 0 (y=0) carries class 1's view 0, which the reference learned."""
    data = _data([0, 1], [False, False], [-1, -1])
    data.Z[0, 1, 0] = 0.3
    data.Z[1, 2, 1] = 0.3
    learned = torch.tensor([[True, False], [True, False], [True, False]])
    G = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]))
    df = report.off_class_table({"t": G}, data, learned, T=1.0).set_index(["n", "j"])
    assert df.loc[(0, 1), "ratio"] == pytest.approx(0.3 / 0.25)
    assert df.loc[(0, 2), "ratio"] == pytest.approx(0.2 / 0.25)
    assert df.loc[(0, 1), "feature of class j"] == "present, learned"
    assert df.loc[(0, 2), "feature of class j"] == "absent"
    assert df.loc[(1, 2), "feature of class j"] == "present, missed"
    assert len(df) == 4  # wrong classes only


def test_view_response_reads_the_diagonal():
    """A fake learner whose F_i is 10 i + <x_0, v_{i,0}> + 2 <x_0, v_{i,1}>: class i's response
    to view l is 10 i + (1, 2)[l], whatever the other classes do."""
    k, P, d = 3, 4, 6
    V = torch.eye(d).view(k, 2, d)

    def logits(X):
        proj = torch.einsum("npd,jld->njl", X, V)  # patch-summed projections
        F = 10 * torch.arange(k).float() + proj[..., 0] + 2 * proj[..., 1]
        return torch.stack([F, -F])  # K = 2 members

    R = report.view_response(logits, V, P)
    assert R.shape == (2, k, 2)
    expected = torch.tensor([[10.0 * i + 1, 10.0 * i + 2] for i in range(k)])
    assert torch.equal(R[0], expected) and torch.equal(R[1], -expected)
    probes = report.view_probes(V, P)
    assert probes.shape == (2 * k, P, d) and float(probes[:, 1:].abs().sum()) == 0.0


def test_weight_growth_is_last_over_first_largest_norm():
    from types import SimpleNamespace

    norms = torch.tensor([[1.0, 2.0], [3.0, 1.0], [5.0, 8.0]])  # (records, members)
    assert report.weight_growth(SimpleNamespace(weight_norm=norms)) == pytest.approx(4.0)


def test_interval_tables_and_signs():
    from mvlib.stats import Interval

    t = report.interval_table(
        {"up": Interval(0.1, 0.05, 0.2, 4), "flat": Interval(0, -0.1, 0.1, 4)}, 100
    )
    assert list(t.label) == ["up", "flat"] and t["mean"].tolist() == [10.0, 0.0]
    assert t.interval[0] == "+10.000 [+5.000, +20.000]"
    assert t.sign.tolist() == ["above 0", "holds 0"]
    assert report.interval_table({"up": Interval(0.1, 0.05, 0.2, 4)}, 100, 2).interval[0] == (
        "+10.00 [+5.00, +20.00]"
    )
    assert report.sign_of(-0.3, -0.1) == "below 0"
    one = report.interval_table({"seed 0": Interval(0.2, 0.2, 0.2, 1)})
    assert one.sign[0] == "one value"  # a single value is no interval


def test_step_table_labels_each_step_from_its_controls():
    steps = pd.DataFrame(
        [
            {
                "step": "confidence",
                "from": "one-hot",
                "to": "flat",
                "mean": 0.01,
                "lo": -0.01,
                "hi": 0.03,
                "n": 5,
            }
        ]
    )
    t = report.step_table(steps, 100)
    assert t.label[0] == "confidence: flat − one-hot" and t["hi"][0] == 3.0


def test_figure8_reads_a_reversed_figure_as_reversed():
    from mvlib.stats import Interval

    paper = report.figure8(Interval(3, 2, 4, 5), Interval(0.5, 0, 1, 5))
    assert paper["reading"] == "as the paper" and paper["resolved"]
    flipped = report.figure8(Interval(2.02, 1, 3, 5), Interval(3.51, 2.5, 4.5, 5))
    assert flipped["reading"] == "reversed" and not flipped["resolved"]


def test_regime_sweeps_name_shipped_sweeps_with_their_grids_and_claims():
    from mvlib import regimes as rg

    sweeps = report.regime_sweeps()
    assert set(sweeps) <= set(rg.GRIDS)
    for name, (grid, claims) in sweeps.items():
        frame = rg.shipped(name)
        assert set(grid) <= set(frame.columns), (name, grid)
        table = rg.claim_table(frame, claims, grid)
        assert len(table) == len(claims) * frame.groupby(grid).ngroups, name


def test_views_after_counts_the_union_kept_and_what_lies_beyond_it():
    own = torch.tensor([[[True, False], [False, False]]])  # (S=1, k=2, 2): views (0, 0)
    teacher = torch.tensor([[[False, False], [True, False]]])  # view (1, 0)
    later = torch.tensor([[[True, False], [False, True]]])  # kept (0, 0), lost (1, 0), new (1, 1)
    maps = {0: {"students before (own)": own, "teacher (member 0)": teacher, "sd": later}}
    row = report.views_after(maps, ("sd",)).iloc[0]
    assert (row.own, row.teacher, row["own or teacher"]) == (0.25, 0.25, 0.5)
    assert row["learned after"] == 0.5 and row["union kept"] == 0.5
    assert row["beyond union"] == 0.25 and row.after == "sd" and row.student == 0


def test_per_view_accuracy_one_row_per_model_member_class_and_view():
    y = torch.tensor([0, 0, 1, 1, 1])
    strong = torch.tensor([0, 1, 0, 0, 1])
    data = type("D", (), {"y": y, "strong": strong})()
    right = torch.nn.functional.one_hot(y, 2).float()[None]  # one model, all correct
    wrong = right.clone()
    wrong[0, 2] = torch.tensor([1.0, 0.0])  # misses one of class 1's two view-1 samples
    f = report.per_view_accuracy({"a": right, "b": torch.cat([right, wrong])}, data)
    assert len(f) == 2 * 2 + 2 * 2 * 2 and set(f.columns) >= {"model", "member", "class", "view"}
    b1 = f[(f.model == "b") & (f.member == 1)].set_index(["class", "view"]).accuracy
    assert b1[(1, 1)] == 0.5 and b1[(1, 2)] == 1.0 and b1[(0, 1)] == 1.0
    assert (f[f.model == "a"].accuracy == 1.0).all()


def test_panel_groups_split_by_tag_and_size():
    from mvlib.claims import Claim

    names = ["a", "KD: x", "SD: y", "Message 4: s", *[f"KD: {i}" for i in range(6)]]
    groups = report.panel_groups([Claim(n, "p", "q") for n in names], most=5)
    assert [[c.name for c in g] for g in groups] == [
        ["a", "Message 4: s"],
        ["KD: x", "KD: 0", "KD: 1", "KD: 2", "KD: 3"],
        ["KD: 4", "KD: 5"],
        ["SD: y"],
    ]
