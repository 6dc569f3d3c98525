"""The table of units: a new method is one entry and its trainer, and everything follows."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from _mvhelpers import tiny_experiment

from mvlib import sweep as sw
from mvlib import units
from mvlib.trainers import make_data, train_ensemble

TINY = dict(d="24", P="8", N="60", n_test="40", K="2", steps="20")


def test_a_new_method_runs_through_reproduce_sweep_and_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MVLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(units, "UNITS", dict(units.UNITS))
    calls = []

    # The whole declaration: the ensemble's members trained at half the step size.
    @units.unit("half_step", units.TRAIN, "steps", ("half_step",))
    def _half_step_unit(cfg, seed):
        calls.append(seed)
        half = replace(cfg, eta=cfg.eta / 2)
        return units.Run.of(train_ensemble(half, make_data(half, seed), seed))

    cfg = tiny_experiment()
    out = units.reproduce(cfg, 0, "cpu", methods=["single", "half_step"])
    assert list(out) == ["single", "half_step"] and calls == [0]
    assert out == units.reproduce(cfg, 0, "cpu", methods=["single", "half_step"])
    assert calls == [0]  # read from the cache
    assert units.method_unit("half_step") == "half_step"
    assert units.progress_total(cfg, ["half_step"]) == cfg.steps
    assert "eta" in units.depends_on(["half_step"]) and "T" not in units.depends_on(["half_step"])
    assert units.reproduce(replace(cfg, T=2.0), 0, "cpu", methods=["half_step"]) == {
        "half_step": out["half_step"]
    }
    assert calls == [0]  # the key leaves out what the unit does not read

    p = sw.plan("ci", {"k": ["4", "5"]}, TINY, 1, 0, ("single", "half_step"))
    assert sw.sweep(p, tmp_path / "sweep.csv", "serial", progress=False) == 2
    df = pd.read_csv(tmp_path / "sweep.csv")
    assert df.method.tolist() == ["single", "half_step"] * 2 and len(calls) == 3
