"""mvlib.sweep: backends agree, a killed sweep resumes, bad grids are named, summarise is right."""

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from mvlib import provenance
from mvlib import sweep as sw
from mvlib.__main__ import main

# The ci preset cut down to ~0.2 s a cell; these methods train the members and the NTK model.
TINY = dict(
    d="24",
    P="8",
    N="60",
    n_test="40",
    K="2",
    steps="20",
    ntk_steps="10",
    students="1",
    sd_steps="10",
)
METHODS = ("single", "ensemble", "ntk_single")
CLI_TINY = [a for name, v in TINY.items() for a in ("--set", f"{name}={v}")]


def command(out, backend: str, *args) -> list[str]:
    """A tiny ci sweep on the command line, writing ``out``."""
    common = ["sweep", "--preset", "ci", "--no-progress", "--backend", backend, *CLI_TINY]
    return [*common, *args, "--out", str(out)]


def refused(out, backend: str, *args) -> int:
    """The exit code of a sweep :func:`command` that is expected to be refused."""
    with pytest.raises(SystemExit) as exc:
        main(command(out, backend, *args))
    return exc.value.code


def tiny_plan(grid=None, seeds=2, **overrides):
    return sw.plan("ci", grid or {"k": ["4", "5"]}, {**TINY, **overrides}, seeds, 0, METHODS)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Results cached by other runs are never read; each test starts on an empty cache."""
    monkeypatch.setenv("MVLIB_CACHE", str(tmp_path / "cache"))


def run(p, out, backend, monkeypatch, cache, workers=2):
    """One sweep on its own empty cache, so no backend reads another's results."""
    monkeypatch.setenv("MVLIB_CACHE", str(cache))
    return sw.sweep(p, out, backend, workers=workers, progress=False)


def test_backends_write_identical_csv(tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    p = tiny_plan()
    texts = {}
    for backend in sw.BACKENDS:
        out = tmp_path / f"{backend}.csv"
        assert run(p, out, backend, monkeypatch, tmp_path / f"cache-{backend}") == 4
        texts[backend] = out.read_text()
    assert texts["joblib"] == texts["serial"] and texts["dask"] == texts["serial"]
    df = pd.read_csv(tmp_path / "serial.csv")
    assert len(df) == 4 * len(METHODS)
    cols = list(df.columns)
    assert cols[:2] == ["preset", "k"] and cols.index("method") == cols.index("seed") + 1
    assert sorted(set(zip(df.k, df.seed))) == [(4, 0), (4, 1), (5, 0), (5, 1)]
    assert tuple(df.method[:3]) == METHODS
    assert {"train", "multi_view", "single_view", "overall"} <= set(df.columns)
    assert (df.N == 60).all() and (df.preset == "ci").all()


def test_cell_runs_on_one_thread_and_restores(tmp_path, monkeypatch):
    seen = []

    def fake(cfg, seed, methods):
        seen.append(torch.get_num_threads())
        return {m: {"train": float(seed)} for m in methods}

    monkeypatch.setattr(sw, "reproduce", fake)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sw.sweep(tiny_plan(), tmp_path / "out.csv", "serial", progress=False)
        assert seen == [1, 1, 1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def cells_in(path):
    return len(pd.read_csv(path)) // len(METHODS)


def test_killed_sweep_resumes_to_the_uninterrupted_csv(tmp_path):
    args = [
        sys.executable,
        "-m",
        "mvlib",
        "sweep",
        "--preset",
        "ci",
        "--grid",
        "k=4,5",
        "--seeds",
        "4",
        "--methods",
        ",".join(METHODS),
        "--backend",
        "serial",
        "--no-progress",
        *CLI_TINY,
    ]
    env = {**os.environ, "MVLIB_CACHE": "off", "OMP_NUM_THREADS": "1"}
    whole, cut = tmp_path / "whole.csv", tmp_path / "cut.csv"
    sw.sweep(tiny_plan(seeds=4), whole, "serial", progress=False)
    proc = subprocess.Popen(
        [*args, "--out", str(cut)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not (cut.exists() and cut.read_text().count("\n") > len(METHODS)):
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.02)
        proc.kill()
    finally:
        proc.wait()
    assert 1 <= cells_in(cut) < 8
    done = subprocess.run(
        [*args, "--out", str(cut)], env=env, check=True, capture_output=True, text=True
    )
    assert f"already in {cut}" in done.stdout
    assert cut.read_text() == whole.read_text()


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux /proc)."""
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.add(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_terminated_sweep_stops_its_workers(tmp_path):
    """`kill` (SIGTERM) of a joblib sweep stops its worker processes mid-cell; Python's default
    would leave them computing cells of minutes that nobody writes."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mvlib", "sweep", "--preset", "ci", "--set", "steps=100000"]
        + ["--seeds", "2", "--methods", "single", "--backend", "joblib", "--workers", "2"]
        + ["--no-progress", "--out", str(tmp_path / "long.csv")],
        env={**os.environ, "MVLIB_CACHE": "off"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(proc.pid)) < 2:  # loky's resource tracker is a third
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.1)
        time.sleep(1)  # into their cells
        proc.terminate()
        assert proc.wait(timeout=30) == 128 + 15
        deadline = time.monotonic() + 30
        while alive := {w for w in workers if Path(f"/proc/{w}").exists()}:
            assert time.monotonic() < deadline, f"workers {alive} outlived the sweep"
            time.sleep(0.1)
    finally:
        proc.kill()
        for w in _children(proc.pid):
            os.kill(w, 9)


def test_torn_write_is_dropped_and_recomputed(tmp_path):
    p = tiny_plan()
    whole, cut = tmp_path / "whole.csv", tmp_path / "cut.csv"
    sw.sweep(p, whole, "serial", progress=False)
    lines = whole.read_text().splitlines(keepends=True)
    # header + first cell + two rows of the second cell + half of its third row
    cell = len(METHODS)
    cut.write_text("".join(lines[: 1 + cell + 2]) + lines[1 + cell + 2][:30])
    assert sw.sweep(p, cut, "serial", progress=False) == 3
    assert cut.read_text() == whole.read_text()
    assert sw.sweep(p, cut, "serial", progress=False) == 0  # nothing left: no duplicates


def test_growing_the_grid_computes_only_new_cells(tmp_path):
    out = tmp_path / "out.csv"
    assert sw.sweep(tiny_plan(seeds=1), out, "serial", progress=False) == 2
    assert sw.sweep(tiny_plan(seeds=2), out, "serial", progress=False) == 2
    assert cells_in(out) == 4


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(overrides={"eta": "5.0"}), r"eta=6\.0 there, 5\.0 here"),
        (dict(grid={"mu": ["0.1", "0.2"]}, overrides={"k": "4"}), r"k=5 there, 4 here"),
        (dict(methods=("single",)), r"holds method 'ensemble'"),
        (dict(methods=(*METHODS, "train_average")), r"made with other --methods"),
    ],
)
def test_resume_refuses_another_sweeps_csv(tmp_path, change, message):
    out = tmp_path / "out.csv"
    sw.sweep(tiny_plan(), out, "serial", progress=False)
    before = out.read_text()
    over = {**TINY, **change.get("overrides", {})}
    p = sw.plan(
        "ci", change.get("grid", {"k": ["4", "5"]}), over, 2, 0, change.get("methods", METHODS)
    )
    with pytest.raises(ValueError, match=message):
        sw.sweep(p, out, "serial", progress=False)
    assert out.read_text() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--grid", "foo=1,2"], "unknown parameter 'foo'"),
        (["--grid", "k=4,x"], "k: cannot read 'x' as int"),
        (["--grid", "k=1,4"], "k must be an integer in [2, inf], got 1"),
        (["--grid", "mu=0.1,1.5"], "mu must be a number in [0.0, 1.0], got 1.5"),
        (["--grid", "k=4", "--grid", "k=5"], "--grid names 'k' twice"),
        (["--grid", "k="], "--grid k needs a comma-separated list of values"),
        (["--grid", "k=4,,5"], "--grid k needs a comma-separated list of values"),
        (["--grid", "k=4,4.0"], "--grid k repeats a value"),
        (["--grid", "k"], "--grid takes NAME=VALUE"),
        (["--grid", "N=30,60"], "N given to both --grid and --set"),
        (["--methods", "single,bogus"], "--methods must be a comma-separated subset"),
        (["--seeds", "0"], "--seeds must be an integer >= 1"),
        (["--workers", "0"], "--workers must be an integer >= 1"),
        (["--scheduler", "tcp://x:1"], "--scheduler needs --backend dask"),
    ],
)
def test_bad_sweep_is_refused_with_the_parameter_named(tmp_path, args, message, capsys):
    out = tmp_path / "out.csv"
    assert refused(out, "serial", *args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_grid_parameters_are_checked_together():
    p = sw.plan("ci", {"k": ["150"], "d": ["300", "400"]}, {}, 1, 0, METHODS)
    assert [c.point for c in p.cells] == [
        (("k", "150"), ("d", "300")),
        (("k", "150"), ("d", "400")),
    ]
    with pytest.raises(ValueError, match=r"d must be an integer in \[300, inf\], got 200"):
        sw.plan("ci", {"k": ["150"], "d": ["200", "300"]}, {}, 1, 0, METHODS)


def test_dask_backend_without_the_extra_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    assert refused(tmp_path / "out.csv", "dask", "--grid", "k=4") == 2
    assert 'pip install -e ".[cluster]"' in capsys.readouterr().err


def test_unreachable_scheduler_is_refused_with_the_address(tmp_path, capsys):
    dask = pytest.importorskip("dask")
    pytest.importorskip("dask.distributed")
    out = tmp_path / "out.csv"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        # the discard port: nothing answers there
        assert refused(out, "dask", "--scheduler", "tcp://127.0.0.1:9", "--grid", "k=4") == 2
    assert "--scheduler: no Dask scheduler answered at tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not out.exists()


def test_provenance_is_recorded_only_when_asked(tmp_path):
    from mvlib.provenance import source_hash
    from mvlib.regimes import read_provenance

    plain, recorded = tmp_path / "plain.csv", tmp_path / "recorded.csv"
    assert main(command(plain, "serial", "--grid", "k=4")) == 0
    assert read_provenance(plain) is None
    assert main(command(recorded, "serial", "--grid", "k=4", "--provenance", "bash x.sh")) == 0
    record = read_provenance(recorded)
    assert (record["csv"], record["command"]) == ("recorded.csv", "bash x.sh")
    assert record["source_hash"] == source_hash()


def test_summarise_means_and_intervals():
    rows = []
    for k, method, values in [
        (4, "single", [0.5, 0.6, 0.7]),
        (4, "ensemble", [0.8, 0.8, 0.8]),
        (5, "single", [0.2, 0.4, 0.9]),
    ]:
        rows += [
            dict(preset="ci", k=k, N=60, seed=s, method=method, train=v, overall=1 - v)
            for s, v in enumerate(values)
        ]
    rows.append(dict(preset="ci", k=5, N=60, seed=0, method="ensemble", train=0.3, overall=0.7))
    out = sw.summarise(pd.DataFrame(rows)).set_index(["k", "method"])
    assert list(out.columns) == [
        "seeds",
        "train",
        "train_lo",
        "train_hi",
        "overall",
        "overall_lo",
        "overall_hi",
    ]  # N and preset do not vary: not grid columns
    half = 4.303 * 0.1 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    r = out.loc[(4, "single")]
    assert r.seeds == 3 and r.train == pytest.approx(0.6)
    assert (r.train_lo, r.train_hi) == pytest.approx((0.6 - half, 0.6 + half))
    assert (r.overall_lo, r.overall_hi) == pytest.approx((0.4 - half, 0.4 + half))
    assert tuple(out.loc[(4, "ensemble"), ["train", "train_lo", "train_hi"]]) == pytest.approx(
        (0.8, 0.8, 0.8)
    )
    # 0.5 +- 0.89: an accuracy's interval is cut to [0, 1]
    assert tuple(out.loc[(5, "single"), ["train_lo", "train_hi"]]) == (0.0, 1.0)
    r = out.loc[(5, "ensemble")]
    assert r.seeds == 1 and r.train_lo == r.train == r.train_hi == pytest.approx(0.3)


def test_summarise_reads_a_real_sweep(tmp_path):
    out = tmp_path / "out.csv"
    sw.sweep(tiny_plan(), out, "serial", progress=False)
    df = sw.load(out)
    s = sw.summarise(df)
    assert len(s) == 2 * len(METHODS) and (s.seeds == 2).all()
    got = s.set_index(["k", "method"]).loc[(5, "single"), "overall"]
    assert got == pytest.approx(df[(df.k == 5) & (df.method == "single")].overall.mean())


def test_recompute_checks_a_cell_on_the_columns_the_csv_has(tmp_path):
    out = tmp_path / "sd.csv"
    methods = "single,self_distill,self_distill_continue"
    assert main(command(out, "serial", "--seeds", "1", "--methods", methods)) == 0
    assert provenance.recompute(out, 0)
    # a CSV written before a parameter (controls) and a metric (train_margin) existed
    old = pd.read_csv(out, dtype=str, keep_default_na=False).drop(
        columns=["controls", "train_margin"]
    )
    old.to_csv(out, index=False)
    assert provenance.recompute(out, 0)
    old.loc[old.method == "single", "single_view"] = "0.5"  # a number this code does not compute
    old.to_csv(out, index=False)
    assert not provenance.recompute(out, 0)


def test_a_csv_that_predates_controls_is_recomputed_with_logit_controls(tmp_path, monkeypatch):
    out = tmp_path / "kd.csv"
    methods = ["--methods", "single,ensemble,distill,distill_control", "--set", "controls=logit"]
    assert main(command(out, "serial", "--seeds", "1", *methods)) == 0
    old = pd.read_csv(out, dtype=str, keep_default_na=False).drop(columns=["controls"])
    old.to_csv(out, index=False)
    ran, run_cell = [], sw.run_cell

    def spy(cfg, *args, **kw):
        ran.append(cfg.controls)
        return run_cell(cfg, *args, **kw)

    monkeypatch.setattr(sw, "run_cell", spy)
    assert provenance.recompute(out, 0)
    assert ran == ["logit"]  # as the CSV ran, not today's default (probability)
