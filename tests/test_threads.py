"""Thread settings change speed, not results (mvlib/threads.py, benchmarks/contention.py)."""

import json
import os
import subprocess
import sys

import pytest

from mvlib import threads

# The ci preset's sizes (matrices large enough for torch to split across threads), short phases.
SHORT = ["--set", "steps=20", "--set", "sd_steps=20", "--set", "ntk_steps=10", "--set", "K=2"]
SHORT += ["--set", "students=1", "--set", "n_test=200"]
VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MVLIB_THREADS", "GOMP_SPINCOUNT")


def run(tmp_path, name: str, **env) -> tuple[str, dict]:
    out = tmp_path / f"{name}.json"
    keep = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    proc = subprocess.run(
        [sys.executable, "-m", "mvlib", "reproduce", "--preset", "ci", "--no-progress", *SHORT,
         "--json", str(out)],
        env={**keep, "MVLIB_CACHE": "off", **env}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout.splitlines()[0], json.loads(out.read_text())["results"]


def test_one_seed_is_the_same_json_across_thread_settings(tmp_path):
    first, one = run(tmp_path, "one", MVLIB_THREADS="1")
    assert first == "threads: 1 torch (MVLIB_THREADS), OMP_WAIT_POLICY=libgomp default"
    for name, env in {
        "two": {"MVLIB_THREADS": "2"},
        "passive": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
        "auto": {},
    }.items():
        line, results = run(tmp_path, name, **env)
        assert line.startswith("threads: "), line
        assert results == one, name


def test_the_choice_follows_the_overrides_in_order(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "others_running", lambda: 1)
    monkeypatch.setattr(threads, "cores", lambda: 4)
    assert threads.choose() == (3, "auto: 4 cores, 1 other tasks running")
    monkeypatch.setattr(threads, "others_running", lambda: 9)
    assert threads.choose()[0] == 1  # never below one
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose() == (2, "OMP_NUM_THREADS")
    monkeypatch.setenv("MVLIB_THREADS", "3")
    assert threads.choose() == (3, "MVLIB_THREADS")
    assert threads.choose(1) == (1, "asked")


def test_others_running_reads_this_machine():
    n = threads.others_running(samples=3, interval=0.0)
    assert 0 <= n < 10_000


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_a_bad_thread_count_is_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv("MVLIB_THREADS", raw)
    with pytest.raises(ValueError, match="MVLIB_THREADS"):
        threads.choose()
    with pytest.raises(ValueError, match="--threads"):
        threads.choose(raw)
