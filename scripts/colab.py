"""Run every chapter in a Colab-like environment, installed the way a Colab reader installs it.

1. A virtual environment holding Colab's versions of the packages the chapters touch
   (``scripts/colab-runtime.txt``, one file with its date), built once per version of that file
   and of the local Python under ``_build/colab-venv-HASH``; a rerun reuses it.
2. mvlib installed by the chapters' own first cell (the install cell of ``book/01_setup.ipynb``,
   run in that environment with the repository URL replaced by this checkout), then checked:
   every package the environment held before is still there at the same version (ipywidgets
   still 7.7.1, Colab's widget frontend needs 7), and every pin of the file still holds.
3. Every chapter of ``_toc.yml`` executed at ``MVLIB_PRESET`` (default ``ci``) with that
   environment's nbclient and ipykernel, all its cells, the widget cells the book build skips
   included, side by side on the cores (one torch thread each). The executed notebooks are
   written to ``_build/colab/``.

    python scripts/colab.py [--workers N] [--rebuild] [CHAPTER.ipynb ...]

The test command (``scripts/test.sh``) runs it after the book build, whose trained results the
chapters then read from mvlib's result cache (keyed on the source, so the installed copy of mvlib
finds them). Exits non-zero, saying why, when a package was replaced or a chapter failed.
This file uses the standard library only: it also runs inside that environment (``--execute``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / "scripts" / "colab-runtime.txt"
BUILD = ROOT / "_build"
OUT = BUILD / "colab"
# The install cell's package: ``mvlib[EXTRA] @ git+URL``; here the URL becomes this checkout.
_INSTALL = re.compile(r"(?P<req>mvlib\[[\w,]+\]) @ git\+https://github\.com/[\w.-]+/[\w.-]+")
# A tag no cell carries: nbclient skips cells tagged ``skip-execution`` by default, and those are
# the widget cells, which a Colab reader runs.
_NO_SKIP = "colab-like-run-skips-nothing"
# Seconds a widget cell may take (each takes about 1 s); see stalls().
WIDGET_TIMEOUT = 60
# Output that shows a reader something went wrong (the rendered-site test's rule).
_FAILURE_TEXT = re.compile(r"Traceback \(most recent call last\)|\w+Error\b|\w+Warning\b")


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path = PINS) -> dict[str, str]:
    """``{name: version}`` of the pin file's ``name==version`` lines (comments dropped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            out[canonical(name)] = version.strip()
    return out


def base_version(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: a local build label is not a different release."""
    return version.split("+", 1)[0]


def replaced(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Every package of ``before`` that ``after`` lacks or holds at another version."""
    return [
        f"{name} {version} -> {after.get(name, 'removed')}"
        for name, version in sorted(before.items())
        if after.get(name) != version
    ]


def unmet(pinned: dict[str, str], installed: dict[str, str]) -> list[str]:
    """Every pin that ``installed`` does not hold."""
    return [
        f"{name}=={version} (installed: {installed.get(name, 'none')})"
        for name, version in sorted(pinned.items())
        if base_version(installed.get(name, "")) != base_version(version)
    ]


def venv_dir() -> Path:
    """The environment's directory, keyed on the pin file and the Python that builds it."""
    key = hashlib.sha256(PINS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    return BUILD / f"colab-venv-{key}"


def run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``, its output captured; on failure, show it and stop."""
    done = subprocess.run([str(c) for c in cmd], text=True, capture_output=True, **kwargs)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"failed ({done.returncode}): {' '.join(str(c) for c in cmd)}")
    return done


def build_venv(path: Path, rebuild: bool) -> Path:
    """The environment's Python, built from the pin file unless a finished build is there."""
    python, done = path / "bin" / "python", path / ".complete"
    if done.exists() and not rebuild:
        print(f"Colab-like environment: reusing {path.relative_to(ROOT)}", flush=True)
        return python
    for old in BUILD.glob("colab-venv-*"):  # other pin files' environments, a half-built one
        shutil.rmtree(old)
    start = time.time()
    run([sys.executable, "-m", "venv", path])
    run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"])
    run([python, "-m", "pip", "install", "-q", "-r", PINS])
    done.write_text(PINS.read_text())
    print(f"Colab-like environment: built in {time.time() - start:.0f} s", flush=True)
    return python


def installed(python: Path) -> dict[str, str]:
    """``{name: version}`` of every distribution in the environment of ``python``."""
    out = run([python, "-m", "pip", "list", "--format=json"]).stdout
    return {canonical(d["name"]): d["version"] for d in json.loads(out)}


def install_cell() -> str:
    """The chapters' install cell (they are identical; chapter 1's), pointing at this checkout."""
    nb = json.loads((ROOT / "book" / "01_setup.ipynb").read_text())
    source = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    new, count = _INSTALL.subn(lambda m: f"{m['req']} @ {ROOT.as_uri()}", source)
    if count != 1:
        raise SystemExit("the first code cell of book/01_setup.ipynb installs no mvlib[...]")
    return new


def install_mvlib(python: Path) -> list[str]:
    """Run the install cell in the environment; return what its install replaced."""
    subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", "mvlib"], capture_output=True)
    before = installed(python)
    assert "mvlib" not in before
    start = time.time()
    # From the build directory, so that the installed copy, not this checkout, is imported.
    cell = run([python, "-c", install_cell()], cwd=BUILD)
    said = cell.stdout.strip().replace("\n", "\n    ")
    print(f"the install cell ({time.time() - start:.0f} s):\n    {said}")
    after = installed(python)
    added = sorted(set(after) - set(before))
    print(f"added to the environment: {', '.join(f'{n} {after[n]}' for n in added)}")
    return replaced(before, after)


def execute(path: str, timeout: int) -> tuple[str, float, str]:
    """Execute one notebook (inside the Colab-like environment) into ``_build/colab/``; return
    (name, seconds, error or "")."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=timeout,
        timeout_func=lambda cell: WIDGET_TIMEOUT if _is_widget(cell) else timeout,
        kernel_name="python3",
        skip_cells_with_tag=_NO_SKIP,
        resources={"metadata": {"path": str(Path(path).parent)}},
    )
    start, error = time.time(), ""
    try:
        client.execute()
    except Exception as exc:  # a failing cell: report it, write what ran
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.time() - start
    nbformat.write(nb, OUT / Path(path).name)
    if not error and (warned := warnings(nb)):
        error = "a reader would see: " + "; ".join(warned)
    for index, waited in stalls(nb):
        print(f"  note: {Path(path).name} waited {waited:.0f} s after its widget cell {index}")
    cell = next(c for c in nb.cells if c.cell_type == "code")
    first = "".join(o.get("text", "") for o in cell.get("outputs", []))
    if not error and sys.prefix not in first:
        error = f"the kernel did not import mvlib from {sys.prefix}; the first cell said: {first}"
    return Path(path).name, seconds, error


def _is_widget(cell) -> bool:
    return "skip-execution" in cell.get("metadata", {}).get("tags", [])


def stalls(nb) -> list[tuple[int, float]]:
    """(index, seconds) of each widget cell after which the client idled before the next cell.

    With a widget, nbclient (0.10 and 0.11 alike) now and then lets its next cell start only when
    the widget cell's own timeout has run out, although the cell had finished: measured here,
    once in 16 runs of a widget chapter, 1200 s after a cell that took 0.8 s. Hence the widget
    cells' short timeout (WIDGET_TIMEOUT); the wait is reported, not failed (no output is lost).
    """
    from datetime import datetime

    def at(cell, key):
        stamp = cell.get("metadata", {}).get("execution", {}).get(key)
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None

    out, code = [], [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for (index, cell), (_, after) in zip(code, code[1:]):
        done, start = at(cell, "shell.execute_reply"), at(after, "iopub.execute_input")
        if _is_widget(cell) and done and start and (start - done).total_seconds() > 10:
            out.append((index, (start - done).total_seconds()))
    return out


def warnings(nb) -> list[str]:
    """Each warning or traceback a cell printed (as tests/test_site.py rejects them on the
    site: a reader must not see one), as ``cell N: first line``."""
    found = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = out.get("text", "") + "\n".join(out.get("traceback", []))
            if hit := _FAILURE_TEXT.search(text):
                line = next(x for x in text.splitlines() if hit.group() in x)
                found.append(f"cell {index}: {line.strip()[:300]}")
    return found


def execute_all(paths: list[str], workers: int, timeout: int) -> int:
    """Execute ``paths`` side by side (run by the environment's Python); report each."""
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ["OMP_NUM_THREADS"] = "1"
    # ipykernel 6.17's debugger warns at every start on Python >= 3.11 (frozen modules)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    import ipywidgets
    import nbclient

    print(f"executing with nbclient {nbclient.__version__}, ipywidgets {ipywidgets.__version__}")
    failed, start = [], time.time()
    with ProcessPoolExecutor(workers) as pool:
        jobs = [pool.submit(execute, p, timeout) for p in paths]
        for job in as_completed(jobs):
            name, seconds, error = job.result()
            print(f"[{time.time() - start:6.1f} s] {name}: {seconds:5.1f} s", flush=True)
            if error:
                failed.append(name)
                print(f"  FAILED: {error}", flush=True)
    print(f"{len(paths) - len(failed)} of {len(paths)} chapters ran in {time.time() - start:.0f} s")
    return 1 if failed else 0


def chapters() -> list[str]:
    """The chapter notebooks of ``_toc.yml``, heaviest (last) first."""
    toc = (ROOT / "_toc.yml").read_text()
    docs = re.findall(r"file:\s*(\S+)", toc)
    paths = [ROOT / f"{d}.ipynb" for d in docs]
    return [str(p) for p in reversed(paths) if p.exists()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="notebooks (default: every chapter)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    parser.add_argument("--rebuild", action="store_true", help="build the environment anew")
    parser.add_argument("--execute", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    paths = [str(Path(p).resolve()) for p in args.chapters] or chapters()
    if args.execute:  # inside the environment
        return execute_all(paths, args.workers, args.timeout)
    os.environ.setdefault("MVLIB_PRESET", "ci")
    BUILD.mkdir(exist_ok=True)
    python = build_venv(venv_dir(), args.rebuild)
    pinned = pins()
    if problems := unmet(pinned, installed(python)):
        raise SystemExit(f"the environment does not hold the pins: {problems}")
    if problems := replaced_by_install(python, pinned):
        print("FAILED: installing mvlib as the first cell does replaced " + "; ".join(problems))
        return 1
    print(f"no package replaced; ipywidgets {pinned['ipywidgets']} kept", flush=True)
    print(f"chapters at MVLIB_PRESET={os.environ['MVLIB_PRESET']}:", flush=True)
    cmd = [python, Path(__file__).resolve(), "--execute", *paths]
    cmd += ["--workers", args.workers, "--timeout", args.timeout]
    return subprocess.call([str(c) for c in cmd], cwd=ROOT)


def replaced_by_install(python: Path, pinned: dict[str, str]) -> list[str]:
    """Install mvlib as the first cell does; what it replaced, and any pin no longer met."""
    return install_mvlib(python) + unmet(pinned, installed(python))


if __name__ == "__main__":
    sys.exit(main())
