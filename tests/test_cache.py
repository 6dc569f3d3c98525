"""The result cache: hit on a rerun, miss after a source change, a corrupt entry recomputed."""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from mvlib import cache

CALLS = []


@dataclass(frozen=True)
class Cfg:
    a: int = 1


@cache.cached
def work(cfg: Cfg, seed: int):
    CALLS.append((cfg, seed))
    return {"W": torch.full((2,), float(cfg.a + seed))}


@cache.cached
def slow_work(log: str, seed: int):
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(1.0)
    return seed


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MVLIB_CACHE", str(tmp_path / "cache"))
    CALLS.clear()


def test_hit_on_rerun_and_key_on_arguments():
    assert torch.equal(work(Cfg(), 1)["W"], torch.tensor([2.0, 2.0]))
    assert torch.equal(work(Cfg(), 1)["W"], torch.tensor([2.0, 2.0]))
    assert len(CALLS) == 1
    work(Cfg(a=2), 1)
    work(Cfg(), 2)
    assert len(CALLS) == 3
    assert cache.info()["entries"] == 3


def test_miss_after_source_change(monkeypatch):
    work(Cfg(), 0)
    monkeypatch.setattr(cache, "source_hash", lambda *also: "another-version")
    work(Cfg(), 0)
    assert len(CALLS) == 2


def test_corrupt_entry_is_recomputed_with_a_warning(caplog):
    work(Cfg(), 0)
    (out,) = list(cache.location().rglob("output.pkl"))
    out.write_bytes(b"not a pickle")
    with caplog.at_level(logging.WARNING):
        assert torch.equal(work(Cfg(), 0)["W"], torch.tensor([1.0, 1.0]))
    assert len(CALLS) == 2
    assert "Exception while loading results" in caplog.text  # joblib's warning
    assert torch.equal(work(Cfg(), 0)["W"], torch.tensor([1.0, 1.0])) and len(CALLS) == 2


def test_off_disables_and_clear_empties(monkeypatch):
    work(Cfg(), 0)
    assert cache.clear() == 1 and cache.info()["entries"] == 0
    monkeypatch.setenv("MVLIB_CACHE", "off")
    work(Cfg(), 0)
    work(Cfg(), 0)
    assert len(CALLS) == 3 and cache.location() is None


def test_source_hash_covers_the_package():
    h = cache.source_hash()
    assert len(h) == 16 and int(h, 16) >= 0


def test_source_hash_ignores_layout_and_docstrings_not_code():
    a = cache._code('def f(x):\n    """Doc."""\n    return x + 1  # why\n')
    b = cache._code("def f(x):\n    return (x +\n            1)\n")
    c = cache._code("def f(x):\n    return x + 2\n")
    assert a == b != c


@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
def test_source_hash_is_the_same_on_every_python(version):
    # Colab runs another Python than CI: a shipped sweep must read as computed by this code there.
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"), "versions")
    found = [shutil.which(f"python{version}"), *pyenv.glob(f"{version}.*/bin/python{version}")]
    works = [e for e in found if e and not subprocess.run([e, "-c", ""]).returncode]
    if not works:
        pytest.skip(f"no python{version} here (on PATH or from pyenv)")
    exe = works[0]
    code = "import ast, sys, pathlib\n" + inspect.getsource(cache._code)
    code += "print('|'.join(_code(pathlib.Path(p).read_text()) for p in sys.argv[1:]))"
    paths = [str(cache._PACKAGE / name) for name in cache.COMPUTING]
    there = subprocess.run([exe, "-c", code, *paths], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == "|".join(cache._code(Path(p).read_text()) for p in paths)


def test_processes_side_by_side_compute_an_entry_once(tmp_path):
    # Three processes ask for the same missing entry at the same moment (each imports first,
    # then waits for a go file): one computes it, the others wait and read it.
    log, go = tmp_path / "calls.log", tmp_path / "go"
    child = (
        "import pathlib, sys, time, test_cache\n"
        f"pathlib.Path(sys.argv[1]).touch()\n"
        f"while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.01)\n"
        f"print(test_cache.slow_work({str(log)!r}, 3))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    ready = [tmp_path / f"ready{j}" for j in range(3)]
    procs = [
        subprocess.Popen([sys.executable, "-c", child, str(r)], env=env, stdout=subprocess.PIPE)
        for r in ready
    ]
    deadline = time.time() + 120
    while not all(r.exists() for r in ready) and time.time() < deadline:
        time.sleep(0.05)
    go.touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert outs == [b"3\n"] * 3
    assert len(log.read_text().splitlines()) == 1


def test_every_module_with_a_cached_unit_enters_its_units_keys():
    """A module that defines a cached unit computes results: editing it must miss its units'
    entries. The chapters' own modules enter only their own units' keys."""
    from mvlib import experiments, gaussian, images

    package = Path(cache.__file__).parent
    defining = {p.name for p in package.glob("*.py") if "\n@cached\n" in p.read_text()}
    units = {
        "experiments.py": experiments._members_unit,
        "gaussian.py": gaussian._members_unit,
        "images.py": images._run_unit,
    }
    assert defining == set(units), "name a unit of each defining module here"
    for module, unit in units.items():
        also = cache.own_module(unit.__wrapped__)
        assert module in (*cache.COMPUTING, *also), module
    assert cache.own_module(experiments._members_unit.__wrapped__) == ()
    assert cache.own_module(images._run_unit.__wrapped__) == ("images.py",)
    assert len({cache.source_hash(), cache.source_hash("images.py")}) == 2
    assert cache.own_module(work.__wrapped__) == ()  # outside the package: not hashed
