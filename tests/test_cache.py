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
    monkeypatch.setattr(cache, "code_hash", lambda *fns: "another-version")
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


def test_code_hash_is_a_short_hex_digest():
    h = cache.code_hash(work.__wrapped__)
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
    from mvlib import provenance, units

    roots = [units.reproduce, *(u.train.__wrapped__ for u in units.UNITS.values())]
    modules = sorted({m for m, _ in cache.closure(*roots)})  # what the shipped sweeps' hash reads
    assert provenance.source_hash() == cache.code_hash(*roots)
    paths = [inspect.getsourcefile(sys.modules[m]) for m in modules]
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
    """A unit's key covers the module defining it and what it calls; the chapters' own modules
    enter only their own units' keys, so editing them keeps the multi-view results."""
    from mvlib import gaussian, images, units, width

    package = Path(cache.__file__).parent
    defining = {
        p.stem
        for p in package.glob("*.py")
        if "\n@cached\n" in p.read_text() or "\n@unit(" in p.read_text()
    }
    found = {
        "units": units._members_unit,
        "width": width._widths_unit,
        "gaussian": gaussian._members_unit,
        "images": images._run_unit,
    }
    assert defining == set(found), "name a unit of each defining module here"
    modules = {m: {mod for mod, _ in cache.closure(fn.__wrapped__)} for m, fn in found.items()}
    for m, reached in modules.items():
        assert f"mvlib.{m}" in reached and "mvlib.train" in reached, m
    assert not {"mvlib.images", "mvlib.gaussian", "mvlib.regimes"} & modules["units"]
    assert ("mvlib.losses", "cross_entropy") in cache.closure(units._members_unit.__wrapped__)
    assert {m for m, _ in cache.closure(work.__wrapped__)} == {"test_cache"}  # its own module


KEYPKG = {
    "__init__.py": "",
    "core.py": (
        "from keypkg.maths import step\n"
        "from mvlib.cache import cached\n\n"
        "CALLS = []\n\n\n"
        "@cached\n"
        "def unit(seed):\n"
        "    CALLS.append(seed)\n"
        "    return step(seed)\n"
    ),
    "maths.py": (
        "def step(x):\n    # why: one more\n    return x + 1\n\n\n"
        "def unused(x):\n    return x - 1\n"
    ),
    "notes.py": "def other():\n    return 0\n",
}


def test_key_follows_the_code_a_result_runs(tmp_path, monkeypatch):
    """Editing a function the unit runs misses; a comment, an unused function, another module,
    or moving the function to another module hits."""
    root = tmp_path / "src"
    (root / "keypkg").mkdir(parents=True)
    for name, text in KEYPKG.items():
        (root / "keypkg" / name).write_text(text)
    monkeypatch.syspath_prepend(str(root))
    from keypkg import core

    def calls_after(edit: dict[str, str]) -> int:
        for name, text in edit.items():
            (root / "keypkg" / name).write_text(text)
        cache.forget_code()
        core.unit(1)
        return len(core.CALLS)

    try:
        assert calls_after({}) == 1 and calls_after({}) == 1
        maths = KEYPKG["maths.py"]
        assert calls_after({"maths.py": maths.replace("one more", "the next")}) == 1
        assert calls_after({"maths.py": maths.replace("x - 1", "x - 2")}) == 1
        assert calls_after({"notes.py": "def other():\n    return 1\n"}) == 1
        moved = KEYPKG["core.py"].replace("from keypkg.maths import step\n", "")
        moved += "\n\ndef step(x):\n    return x + 1\n"
        assert calls_after({"core.py": moved}) == 1
        assert calls_after({"core.py": moved.replace("x + 1", "x + 2")}) == 2
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "keypkg"]:
            del sys.modules[name]
        cache.forget_code()
