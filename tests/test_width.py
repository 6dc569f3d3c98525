"""Message 4's width experiment: sums trained in groups (one batch, one model per group), the
single models of several widths, the comparison rows and the width curve."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _mvhelpers import assert_close, tiny_data_config

from mvlib import experiments as E
from mvlib import losses
from mvlib.metrics import accuracy
from mvlib.model import LearnerConfig, Network
from mvlib.stats import mean_ci
from mvlib.train import gradient_descent

KEYS = {
    "seed",
    "model",
    "width",
    "draw",
    "train",
    "multi_view",
    "single_view",
    "overall",
    "both_views",
}


def tiny(**kw) -> E.ExperimentConfig:
    base = dict(
        data=tiny_data_config(),
        learner=LearnerConfig(m=2, q=4, varrho=1.0, sigma0=0.5),
        N=60,
        n_test=40,
        K=3,
        eta=10.0,
        steps=40,
        record_every=20,
    )
    base.update(kw)
    return E.ExperimentConfig(**base)


@pytest.fixture(autouse=True)
def no_cache(monkeypatch):
    monkeypatch.setenv("MVLIB_CACHE", "off")


def test_grouped_sum_gives_each_group_the_gradient_of_its_own_sum():
    g = torch.Generator().manual_seed(0)
    F, y = torch.randn(6, 5, 4, generator=g), torch.randint(0, 4, (5,), generator=g)
    s = slice(0, 5)
    value, grad = E.grouped_sum(losses.cross_entropy(y), (1, 3, 2))(F, s)
    for a, b in ((0, 1), (1, 4), (4, 6)):
        v, d = losses.summed(losses.cross_entropy(y), b - a)(F[a:b], s)
        assert_close(value[a:b], v)
        assert_close(grad[a:b], d)


def test_models_of_one_batch_train_as_if_alone():
    """Each width's model is train_sum's model from the same initialisation: the groups of one
    batch do not interact."""
    cfg = tiny(steps=8)
    data = E.make_data(cfg, 0, "cpu")
    batch = E.train_widths(cfg, data, 0, (2, 6, 4))
    assert [t.W.shape[0] for t in batch] == [1, 3, 2]
    for t in batch:
        K = t.W.shape[0]
        W, _ = gradient_descent(
            Network(cfg.learner),
            t.W0,
            data.train.X,
            data.train.y,
            losses.summed(losses.cross_entropy(data.train.y), K),
            cfg.eta,
            cfg.steps,
        )
        assert_close(t.W, W, atol=1e-5)
    assert not torch.equal(batch[0].W0, batch[2].W0[:1]), "every model is a fresh draw"


@pytest.mark.parametrize("widths", [(), (3,), (4, 5), (0,), (2.0,)])
def test_widths_must_be_positive_multiples_of_m(widths):
    with pytest.raises(ValueError, match="width"):
        E.width_sizes(tiny(), widths)


def test_the_cache_key_ignores_K_but_not_training():
    cfg = tiny()
    assert E.width_key(cfg) == E.width_key(replace(cfg, K=7))
    assert E.width_key(cfg) != E.width_key(replace(cfg, steps=41))


def test_message4_rows_hold_every_model_once_per_draw():
    cfg = tiny()
    rows = E.message4_rows(cfg, 0, (4, 4, 6))
    assert all(set(r) == KEYS for r in rows)
    count = {}
    for r in rows:
        count[r["model"], r["width"]] = count.get((r["model"], r["width"]), 0) + 1
    m, K = cfg.learner.m, cfg.K
    assert count == {
        ("single model", m): K,
        ("single model", 4): 2,
        ("single model", 6): 1,
        ("ensemble", K * m): 1,
        ("trained sum", K * m): 1,
        ("trained average", K * m): 1,
    }
    wide = [r for r in rows if r["model"] == "single model" and r["width"] == 4]
    assert [r["draw"] for r in wide] == [0, 1]
    assert all(0 <= r[key] <= 1 for r in rows for key in KEYS - {"seed", "model", "width", "draw"})


def test_width_rows_evaluate_the_sum_of_the_members():
    cfg = tiny()
    data = E.make_data(cfg, 0)
    rows = E.message4_rows(cfg, 0, (6,), data)
    (row,) = [r for r in rows if r["model"] == "single model" and r["width"] == 6]
    (t,) = E.wide_models(cfg, 0, (6,), data)
    F = t.logits(data.test_single.X).sum(0, keepdim=True)
    assert row["single_view"] == pytest.approx(float(accuracy(F, data.test_single.y)[0]))


def _rows(values: dict[int, list[float]]) -> list[dict]:
    return [
        {"model": "single model", "width": M, "single_view": v}
        for M, vs in values.items()
        for v in vs
    ]


def test_width_curve_says_where_the_sum_stays_within_the_single_models():
    rows = _rows({3: [0.6, 0.7, 0.65], 6: [0.66, 0.7], 30: [0.8, 0.9]})
    rows.append({"model": "trained sum", "width": 30, "single_view": 0.1})  # not a single model
    curve = E.width_curve(rows, 3)
    assert [c["width"] for c in curve] == [3, 6, 30]
    assert [c["holds"] for c in curve] == [True, True, False]
    assert curve[2]["n"] == 2 and curve[2]["mean"] == pytest.approx(0.85)
    assert curve[0]["interval"] == mean_ci([0.6, 0.7, 0.65])
    assert (curve[1]["min"], curve[1]["max"]) == (0.66, 0.7)


def test_width_curve_needs_the_width_m_reference():
    with pytest.raises(ValueError, match="width m = 3"):
        E.width_curve(_rows({6: [0.5]}), 3)
