"""The composed experiments: cached units, the decomposition's students, training the sum,
two-phase self-distillation, and reproduce's method selection."""

from __future__ import annotations

import math
import os
from dataclasses import fields, replace

import pytest
import torch
from _mvhelpers import assert_close, tiny_experiment

from mvlib import experiments as E
from mvlib import losses
from mvlib.metrics import MAGNITUDES
from mvlib.model import Network
from mvlib.train import gradient_descent

# A valid alternative value for every top-level field, to show a unit ignores what it should.
_OTHER = dict(
    n_test=31,
    K=4,
    eta=9.0,
    steps=120,
    kd="eq43",
    T=4.0,
    kd_weight=0.5,
    tau=0.3,
    eta_ratio=3.0,
    teacher_scale=2.0,
    students=3,
    controls="probability",
    sd_kd="hinton",
    sd_steps=40,
    eta_ntk=2.0,
    ntk_steps=15,
    record_every=40,
    chunk=7,
    seeds=3,
    N=90,
)


def tiny(**kw) -> E.ExperimentConfig:
    """The shared tiny experiment, with a short and gentle self-distillation phase."""
    return tiny_experiment(**{"sd_steps": 30, "eta_ratio": 1.0, **kw})


# The run's own cache setting, read before the fixtures below replace it.
_RUN_CACHE = os.environ.get("MVLIB_CACHE")


@pytest.fixture(autouse=True)
def no_cache(monkeypatch):
    monkeypatch.setenv("MVLIB_CACHE", "off")


@pytest.fixture
def chapters_cache(monkeypatch):
    """The cache the chapters use in this run (MVLIB_CACHE as the run set it), so the tests of
    the ci preset's results read what the book build trained."""
    if _RUN_CACHE is None:
        monkeypatch.delenv("MVLIB_CACHE")
    else:
        monkeypatch.setenv("MVLIB_CACHE", _RUN_CACHE)


@pytest.mark.parametrize(
    "unit", ["members", "distill", "self_distill", "sum", "ntk", "ntk_scratch"]
)
def test_unit_ignores_exactly_the_fields_outside_its_key(unit):
    """Changing every field a unit's key resets leaves its result unchanged (so sharing a cached
    result across those fields is correct), and the key keeps what it needs."""
    cfg = tiny()
    keep = E.UNITS[unit].fields
    other = replace(cfg, **{f: v for f, v in _OTHER.items() if f not in keep})
    assert E.unit_key(cfg, unit) == E.unit_key(other, unit)
    run = {
        "members": E.members,
        "distill": E.distill_students,
        "self_distill": E.self_distill_students,
        "sum": E.trained_sum,
        "ntk": E.ntk_members,
        "ntk_scratch": E.ntk_scratch_students,
    }[unit]
    a, b = run(cfg, 0), run(other, 0)
    a, b = (a, b) if isinstance(a, dict) else ({"": a}, {"": b})
    for name in a:
        assert torch.equal(a[name].W, b[name].W), name
    changed = replace(cfg, **{f: _OTHER[f] for f in keep if f in _OTHER})
    assert E.unit_key(changed, unit) != E.unit_key(cfg, unit)


def test_every_field_is_known_to_the_keys():
    names = {f.name for f in fields(E.ExperimentConfig)}
    assert set(_OTHER) | {"data", "learner"} == names


def test_train_sum_is_one_network_of_width_K_m():
    cfg = tiny(steps=5)
    data = E.make_data(cfg, 0, "cpu")
    t = E.train_sum(cfg, data, 0)
    K, k, m, d = t.W.shape
    wide = Network(replace(cfg.learner, m=K * m))
    Ww = t.W.permute(1, 0, 2, 3).reshape(1, k, K * m, d)
    assert_close(
        t.logits(data.train.X).sum(0, keepdim=True), wide.logits(Ww, data.train.X), atol=1e-4
    )


def test_distill_students_are_paired_and_see_their_targets():
    cfg = tiny()
    st = E.distill_students(cfg, 0)
    assert set(st) == {"distill", "distill_control", "distill_onehot", "distill_permuted"}
    W0 = st["distill"].W0
    for t in st.values():
        assert torch.equal(t.W0, W0) and t.W.shape[0] == cfg.students
    assert not torch.equal(st["distill"].W, st["distill_permuted"].W)


def test_self_distill_continues_the_members_and_continue_is_plain_ce():
    cfg = tiny()
    data = E.make_data(cfg, 0)
    m = E.members(cfg, 0, data)
    st = E.self_distill_students(cfg, 0, data)
    assert set(st) == {
        "self_distill",
        "self_distill_control",
        "self_distill_onehot",
        "self_distill_permuted",
        "self_distill_continue",
    }
    for t in st.values():
        assert torch.equal(t.W0, m.W[1 : cfg.students + 1])  # phase two starts at phase one
    ce, _ = gradient_descent(
        Network(cfg.learner),
        m.W[1 : cfg.students + 1],
        data.train.X,
        data.train.y,
        losses.cross_entropy(data.train.y),
        cfg.eta,
        cfg.sd_steps,
    )
    assert_close(st["self_distill_continue"].W, ce, atol=1e-5)


def test_self_distill_trains_the_targets_asked_for():
    """A subset of phase two's runs trains only those, starting where the full batch starts and
    ending within float rounding of it (a smaller batch sums in another order); any order of
    the same subset is one cached result."""
    cfg = tiny()
    data = E.make_data(cfg, 0)
    full = E.self_distill_students(cfg, 0, data)
    part = E.self_distill_students(cfg, 0, data, ("self_distill_continue", "self_distill"))
    assert list(part) == ["self_distill", "self_distill_continue"]
    for name, t in part.items():
        assert torch.equal(t.W0, full[name].W0)
        assert_close(t.W, full[name].W, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="targets must be a non-empty subset"):
        E.self_distill_students(cfg, 0, data, ("self_distill_flat",))
    with pytest.raises(ValueError, match="targets must be a non-empty subset"):
        E.self_distill_students(cfg, 0, data, ())


def test_self_distill_needs_enough_members():
    with pytest.raises(ValueError, match="K must be >= students"):
        E.self_distill_students(tiny(K=2, students=2), 0)


def test_reproduce_selects_methods_and_reports_both_views():
    cfg = tiny()
    calls = []
    out = E.reproduce(cfg, 0, "cpu", progress=calls.append, methods=["single", "train_sum"])
    assert list(out) == ["single", "train_sum"]
    assert set(out["single"]) == {"train", "multi_view", "single_view", "overall", "both_views"}
    assert sum(calls) == E.progress_total(cfg, ["single", "train_sum"]) == 2 * cfg.steps
    with pytest.raises(ValueError, match="unknown method"):
        E.reproduce(cfg, 0, methods=["bogus"])


def test_reproduce_all_methods_deterministic():
    cfg = tiny()
    a, b = E.reproduce(cfg, 1, "cpu"), E.reproduce(cfg, 1, "cpu")
    assert list(a) == list(E.METHODS)
    # equal value for value; a union rate with no cell in its set is NaN in both
    assert {m: {c: repr(v) for c, v in r.items()} for m, r in a.items()} == {
        m: {c: repr(v) for c, v in r.items()} for m, r in b.items()
    }
    for row in a.values():
        fractions = [v for c, v in row.items() if c not in MAGNITUDES and not math.isnan(v)]
        assert all(0.0 <= v <= 1.0 for v in fractions)


def test_eq43_teacher_scale_switches_the_truncation_on():
    G = torch.tensor([[10.0, 1.0, 0.0]])
    assert losses.truncation_fraction(G, 0.19) == 0.0
    assert losses.truncation_fraction(G, 0.19, scale=3.0) == pytest.approx(1 / 3)


def test_learned_views_predict_single_view_accuracy(chapters_cache):
    """The fraction of (class, view) pairs a model learned, judged by behaviour on one half of
    the single-view test set, predicts single-view accuracy on the other half within a few points
    (mean over the models of a kind) for single models, the ensemble and the students of the real
    and the flat teacher; where it does not (students of the weaker targets), the views counted
    learned are learned partly (ci preset, seed 0: the results the chapters read from the cache)."""
    from mvlib.presets import get_preset
    from mvlib.report import lottery_prediction

    cfg = get_preset("ci")
    data = E.make_data(cfg, 0)
    m = E.members(cfg, 0, data)
    st = E.distill_students(cfg, 0, data)
    X = data.test_single.X
    models = {
        "single": m.logits(X),
        "ensemble": m.logits(X).mean(0, keepdim=True),
        **{n: t.logits(X) for n, t in st.items()},
    }
    tables = {name: lottery_prediction(F, data.test_single) for name, F in models.items()}
    # Mean over the models of a kind. Two biases bound the error: a sample whose strong view the
    # model missed is still right ~20% of the time (its weak view, chance), which c misses; and
    # a view can be learned partly, which c counts as whole. Measured at ci seed 0: single -0.004,
    # ensemble -0.03, students of the real and the flat teacher -0.06 and -0.07.
    for name in ("single", "ensemble", "distill", "distill_control"):
        table = tables[name]
        err = table["measured"].mean() - table["predicted (c)"].mean()
        assert abs(err) <= 0.08, (name, table.round(3).to_string())
    # Students of the one-hot and permuted targets learn views partly (per-(class, view) accuracy
    # 0.6-0.9 where the others sit near 1): c over-counts them (-0.12 and -0.13 at seed 0), and
    # the reason shows as a lower accuracy on the views counted learned than the real teacher's.
    for name in ("distill_onehot", "distill_permuted"):
        on_learned = tables[name]["on learned"].mean()
        assert on_learned < tables["distill"]["on learned"].mean(), (name, tables[name])
    # the prediction is informative: single models and the ensemble are far apart
    single = lottery_prediction(models["single"], data.test_single)["predicted (c)"].mean()
    ens = lottery_prediction(models["ensemble"], data.test_single)["predicted (c)"].mean()
    assert ens - single > 0.2


def test_eq43_truncation_acts_on_the_preset_teacher_and_growth_is_recorded(chapters_cache):
    """At the ci preset eq. (4.2)'s truncation acts on the scaled teacher (most of its
    true-class logits exceed 1/tau^2; unscaled, none do), and phase two records the students'
    weight norms and Phi at every record step, so their growth is reported, never hidden."""
    from mvlib.presets import get_preset

    cfg = get_preset("ci")
    data = E.make_data(cfg, 0)
    G0 = E.members(cfg, 0, data).logits(data.train.X)[0]
    true = G0.gather(-1, data.train.y[:, None]).squeeze(-1)
    assert (cfg.tau**2 * cfg.teacher_scale * true > 1).float().mean() > 0.5
    assert (cfg.tau**2 * true > 1).float().mean() == 0.0
    h = E.self_distill_students(cfg, 0, data)["self_distill"].history
    steps = len(h.step)
    assert steps == cfg.sd_steps // cfg.record_every + 1
    assert h.weight_norm.shape == (steps, cfg.students) and torch.isfinite(h.weight_norm).all()
    assert h.Phi.shape[:2] == (steps, cfg.students) and torch.isfinite(h.Phi).all()


def test_eq43_capped_keeps_the_weights_bounded_at_the_preset(chapters_cache):
    """eq. 4.3 as written grows the students' largest weight norm without bound through phase
    two (measured at ci seeds 0-2: x154 to x162 over T' = 1200); capped at the student's own
    truncation it stays bounded (x2.5 to x2.6), like cross-entropy's continuation."""
    from mvlib.presets import get_preset
    from mvlib.report import weight_growth

    cfg = get_preset("ci")
    data = E.make_data(cfg, 0)

    def growth(c, targets):  # the runs chapter 6 trains, shared through the cache
        st = E.self_distill_students(c, 0, data, targets)["self_distill"]
        return weight_growth(st.history)

    plain = growth(cfg, E.SD_TARGETS)
    capped = growth(E.with_overrides(cfg, {"sd_kd": "eq43_capped"}), ("self_distill",))
    assert plain > 50, plain
    assert capped < 5, capped
