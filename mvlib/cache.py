"""A disk cache of trained results, shared by chapters, ``reproduce`` and ``sweep``.

Built on :class:`joblib.Memory`. A result is keyed on everything that determines it: the
function, its arguments (frozen configs of plain values and seeds: never tensors, whose joblib
hash is not stable) and a hash of mvlib's own code, so a code change never serves a stale
result (the hash covers the modules that compute results, :data:`COMPUTING`, and the module
defining the unit when it is another, e.g. ``images.py``; as syntax trees: layout, comments and
docstrings do not count). Entries are stored on the CPU and moved to the
current device when read. A corrupt entry is recomputed with a warning (joblib's behaviour),
never a crash. Processes sharing the cache (chapters executed side by side, a sweep's workers,
tests) compute each entry once: the first takes a lock on the entry's key and the others wait
for it, then read its result.

- ``MVLIB_CACHE``: the cache directory (default ``~/.cache/mvlib``); ``off`` disables caching.
- ``python -m mvlib cache info`` / ``python -m mvlib cache clear``.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib
import inspect
import os
import shutil
import sys
from pathlib import Path

import joblib

_PACKAGE = Path(__file__).resolve().parent
# The modules every cached (trained) result is computed by. Analyses, plots, presets, the CLI
# and the sweep runner only read results, so editing them keeps the cache valid. A chapter's own
# module (gaussian.py, images.py) enters the key of its units only (see `cached`).
COMPUTING = (
    "_validate.py",
    "cache.py",
    "data.py",
    "experiments.py",
    "losses.py",
    "metrics.py",
    "model.py",
    "teachers.py",
    "train.py",
)


def _code(source: str) -> str:
    """The module's syntax tree without docstrings: what it computes, not how it is laid out or
    documented (reformatting or editing a comment keeps the cache). The same text on every
    Python from 3.10: the empty type parameters 3.12 adds to each definition are dropped, and
    3.13's dump shows empty fields as earlier versions do."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if getattr(node, "type_params", None) == []:
            del node.type_params
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, **({"show_empty": True} if sys.version_info >= (3, 13) else {}))


@functools.cache
def source_hash(*also: str) -> str:
    """SHA-256 (first 16 hex digits) of the code of the modules that compute cached results
    (COMPUTING) and of the package's modules ``also``."""
    h = hashlib.sha256()
    for path in (_PACKAGE / name for name in (*COMPUTING, *also)):
        h.update(path.name.encode())
        h.update(_code(path.read_text()).encode())
    return h.hexdigest()[:16]


def location() -> Path | None:
    """The cache directory, or None when ``MVLIB_CACHE=off``."""
    raw = os.environ.get("MVLIB_CACHE", "").strip()
    if raw.lower() in ("off", "0", "false", "no"):
        return None
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "mvlib"


def _call(name: str, source: str, args: tuple, kwargs: dict):
    """The cached unit of work: ``name`` is ``module:qualname`` of an undecorated function;
    ``source`` only enters the key."""
    module, qual = name.split(":")
    return getattr(importlib.import_module(module), qual).__wrapped__(*args, **kwargs)


@functools.cache
def _memory(path: str):
    return joblib.Memory(path, verbose=0).cache(_call)


@contextlib.contextmanager
def _lock(path: Path, key: str):
    """An exclusive lock on one entry, held while it is looked up and, if missing, computed:
    a process that needs an entry another is computing waits for it instead of computing it
    too. POSIX ``flock``, released when the process dies; without fcntl (Windows), no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    locks = path / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{key}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def own_module(fn) -> tuple[str, ...]:
    """The package module defining ``fn`` when it is outside COMPUTING (a chapter's own, e.g.
    ``images.py``), else (): editing it misses that module's entries only, so the sweeps'
    results and their provenance outlive a change to the real-image chapter's code."""
    path = Path(inspect.getsourcefile(fn)).resolve()
    return (path.name,) if path.parent == _PACKAGE and path.name not in COMPUTING else ()


def cached(fn):
    """Memoise ``fn(*args, **kwargs)`` on disk, keyed on the source of COMPUTING and of
    ``fn``'s own module (:func:`own_module`). Arguments must be plain values or frozen
    dataclasses of them; the result must hold only CPU tensors and plain values."""
    name, also = f"{fn.__module__}:{fn.__qualname__}", own_module(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        path = location()
        if path is None:
            return fn(*args, **kwargs)
        source = source_hash(*also)
        with _lock(path, joblib.hash((name, source, args, kwargs))):
            return _memory(str(path))(name, source, args, kwargs)

    return wrapper


def info() -> dict:
    """{"location", "entries", "bytes"} of the cache (entries: cached results on disk)."""
    path = location()
    if path is None or not path.exists():
        return {"location": str(path), "entries": 0, "bytes": 0}
    outputs = list(path.rglob("output.pkl"))
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return {"location": str(path), "entries": len(outputs), "bytes": size}


def clear() -> int:
    """Delete the cache directory; returns the number of entries removed."""
    n = info()["entries"]
    path = location()
    if path is not None and path.exists():
        shutil.rmtree(path)
    _memory.cache_clear()
    return n
