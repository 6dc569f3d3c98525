"""Parameter validation, overrides by name, and the named presets."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
from _mvhelpers import gen

from mvlib.data import MultiViewConfig
from mvlib.experiments import ExperimentConfig, as_dict, parameter_names, with_overrides
from mvlib.model import LearnerConfig, init_weights
from mvlib.presets import PRESETS, get_preset

SMALL = dict(k=4, d=16, P=8, s=1.0)


@pytest.mark.parametrize(
    "kw,name",
    [
        (dict(sigma_p=-0.1), "sigma_p"),
        (dict(sigma_f=-1e-3), "sigma_f"),
        (dict(s=3.5), "s"),  # s > k - 1 = 3
        (dict(s=-0.5), "s"),
        (dict(mu=-0.01), "mu"),
        (dict(mu=1.01), "mu"),
        (dict(mu=float("nan")), "mu"),
        (dict(P=3), "P"),  # needs C_p (2 + ceil(2s)) = 4
        (dict(C_p=2, P=7), "P"),  # needs 8
        (dict(C_p=0), "C_p"),
        (dict(d=7), "d"),  # d < 2k = 8
        (dict(k=1, d=16), "k"),
        (dict(k=4.0), "k"),  # integers must be integers
        (dict(k=True), "k"),
        (dict(rho=0.6), "rho"),
        (dict(Gamma=1.5), "Gamma"),
        (dict(gamma=-0.1), "gamma"),
        (dict(view_low=2.0, view_high=1.0), "view_high"),
        (dict(off_low=0.5, off_high=0.4), "off_high"),
    ],
)
def test_data_config_rejects(kw, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        MultiViewConfig(**{**SMALL, **kw})


def test_data_config_boundaries_accepted():
    MultiViewConfig(**{**SMALL, "s": 3.0, "P": 8})  # s = k - 1, P = 2 + ceil(2s)
    MultiViewConfig(**{**SMALL, "d": 8, "mu": 0.0, "sigma_p": 0.0})
    MultiViewConfig(**{**SMALL, "mu": 1.0, "P": 4})


def test_error_message_states_range_and_value():
    with pytest.raises(ValueError) as e:
        MultiViewConfig(**{**SMALL, "mu": 1.5})
    msg = str(e.value)
    assert "mu" in msg and "1.5" in msg and "[0.0, 1.0]" in msg


@pytest.mark.parametrize(
    "kw,name",
    [
        (dict(q=1), "q"),
        (dict(m=0), "m"),
        (dict(varrho=0.0), "varrho"),
        (dict(sigma0=-0.1), "sigma0"),
    ],
)
def test_learner_config_rejects(kw, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        LearnerConfig(**kw)


@pytest.mark.parametrize(
    "kw,name",
    [
        (dict(K=0), "K"),
        (dict(N=0), "N"),
        (dict(n_test=0), "n_test"),
        (dict(eta=0.0), "eta"),
        (dict(eta=float("inf")), "eta"),
        (dict(steps=-1), "steps"),
        (dict(T=0.0), "T"),
        (dict(kd_weight=-1.0), "kd_weight"),
        (dict(tau=0.0), "tau"),
        (dict(eta_ratio=-1.0), "eta_ratio"),
        (dict(students=0), "students"),
        (dict(eta_ntk=0.0), "eta_ntk"),
        (dict(ntk_steps=-5), "ntk_steps"),
        (dict(record_every=-1), "record_every"),
        (dict(chunk=-1), "chunk"),
        (dict(K=2.5), "K"),
    ],
)
def test_experiment_config_rejects(kw, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        ExperimentConfig(**kw)


@pytest.mark.parametrize("kd", ["kl", "HINTON", ""])
def test_kd_form_rejected(kd):
    with pytest.raises(ValueError, match="kd"):
        ExperimentConfig(kd=kd)


def test_kd_forms_accepted():
    assert ExperimentConfig(kd="eq43").kd == "eq43"
    assert ExperimentConfig(kd="hinton").kd == "hinton"


def test_init_weights_rejects_K_below_one():
    with pytest.raises(ValueError, match="^K must"):
        init_weights(LearnerConfig(), 0, 4, 16, gen(0))


# ----------------------------------------------------------------------------- overrides


def test_overrides_by_name_reach_every_part():
    base = ExperimentConfig()
    cfg = with_overrides(base, {"k": 12, "q": 3, "eta": 0.5, "kd": "eq43"})
    assert (cfg.data.k, cfg.learner.q, cfg.eta, cfg.kd) == (12, 3, 0.5, "eq43")
    assert replace(cfg, data=base.data, learner=base.learner, eta=base.eta, kd=base.kd) == base
    assert base.data.k == 10  # the original is unchanged


def test_string_overrides_take_the_field_type():
    cfg = with_overrides(
        ExperimentConfig(), {"k": "12", "mu": "0.15", "steps": "2e2", "eta": "5", "kd": "eq43"}
    )
    assert cfg.data.k == 12 and type(cfg.data.k) is int
    assert cfg.data.mu == 0.15 and type(cfg.data.mu) is float
    assert cfg.steps == 200 and type(cfg.steps) is int
    assert cfg.eta == 5.0 and type(cfg.eta) is float


@pytest.mark.parametrize(
    "over,name",
    [
        ({"bogus": 1}, "bogus"),
        ({"data": 1}, "data"),  # the parts themselves are not parameters
        ({"learner": 1}, "learner"),
        ({"mu": "abc"}, "mu"),
        ({"k": "twelve"}, "k"),
        ({"k": "12.5"}, "k"),
        ({"eta": "fast"}, "eta"),
        ({"mu": "1.5"}, "mu"),  # read fine, out of range
        ({"k": 12.5}, "k"),
        ({"mu": None}, "mu"),
        ({"steps": "nan"}, "steps"),
    ],
)
def test_bad_overrides_rejected(over, name):
    with pytest.raises(ValueError, match=name):
        with_overrides(ExperimentConfig(), over)


def test_unknown_override_lists_known_names():
    with pytest.raises(ValueError) as e:
        with_overrides(ExperimentConfig(), {"bogus": 1})
    for name in ("k", "sigma0", "eta_ratio"):
        assert name in str(e.value)


def test_parameter_names_and_as_dict_cover_every_field():
    cfg = ExperimentConfig()
    expected = (
        [f.name for f in fields(MultiViewConfig)]
        + [f.name for f in fields(LearnerConfig)]
        + [f.name for f in fields(ExperimentConfig) if f.name not in ("data", "learner")]
    )
    names = parameter_names(cfg)
    assert sorted(names) == sorted(expected)
    assert len(set(names)) == len(names)  # unambiguous override names
    d = as_dict(cfg)
    assert list(d) == names
    assert d["k"] == cfg.data.k and d["q"] == cfg.learner.q and d["eta"] == cfg.eta
    assert "data" not in d and "learner" not in d


# ----------------------------------------------------------------------------- presets


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_constructs_and_round_trips(name):
    cfg = PRESETS[name]
    assert isinstance(cfg, ExperimentConfig)
    assert get_preset(name) == cfg
    # every parameter is settable by name: rebuilding from the flat dict gives the same config
    assert with_overrides(ExperimentConfig(), as_dict(cfg)) == cfg
    # re-running validation on a copy passes
    assert replace(cfg, data=replace(cfg.data), learner=replace(cfg.learner)) == cfg


def test_expected_presets_exist():
    assert {"ci", "book", "paper"} <= set(PRESETS)


def test_get_preset_reads_environment(monkeypatch):
    monkeypatch.setenv("MVLIB_PRESET", "paper")
    assert get_preset() == PRESETS["paper"]
    assert get_preset("ci") == PRESETS["ci"]  # an explicit name wins
    monkeypatch.setenv("MVLIB_PRESET", "ci")
    assert get_preset() == PRESETS["ci"]
    monkeypatch.delenv("MVLIB_PRESET")
    assert get_preset() == PRESETS["book"]  # the default
    monkeypatch.setenv("MVLIB_PRESET", "nonexistent")
    with pytest.raises(ValueError, match="preset"):
        get_preset()


def test_get_preset_unknown_name():
    with pytest.raises(ValueError, match="preset") as e:
        get_preset("huge")
    assert "huge" in str(e.value) and "ci" in str(e.value)


def test_get_preset_overrides(monkeypatch):
    monkeypatch.delenv("MVLIB_PRESET", raising=False)
    ci = PRESETS["ci"]
    cfg = get_preset("ci", k=12)
    assert cfg.data.k == 12
    assert replace(cfg, data=replace(cfg.data, k=ci.data.k)) == ci  # nothing else changed
    assert PRESETS["ci"].data.k == ci.data.k  # the preset is unchanged
    cfg = get_preset("ci", steps="7", sigma0=0.5, kd="eq43")
    assert (cfg.steps, cfg.learner.sigma0, cfg.kd) == (7, 0.5, "eq43")
    with pytest.raises(ValueError, match="nope"):
        get_preset("ci", nope=3)


def test_the_presets_draw_def_31_data_and_match_controls_in_probability():
    """The headline regime (issue 20): Def. 3.1's off-class range [Omega(1), 0.4], and controls
    matched in what the loss reads, not in logits."""
    from mvlib.presets import PRESETS

    for name, cfg in PRESETS.items():
        assert cfg.data.off_high <= 0.4 and cfg.controls == "probability", name
