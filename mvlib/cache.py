"""A disk cache of trained results, shared by chapters, ``reproduce`` and ``sweep``.

Built on :class:`joblib.Memory`. A result is keyed on the function's name, its arguments
(frozen configs of plain values and seeds: never tensors, whose joblib hash is not stable) and
:func:`code_hash`: the code the function runs within the package, so a code change never serves
a stale result. Entries are stored on the CPU and moved to the current device when read. A
corrupt entry is recomputed with a warning (joblib's behaviour), never a crash. Processes
sharing the cache (chapters executed side by side, a sweep's workers, tests) compute each entry
once: the first takes a lock on the entry's key and the others wait for it, then read its result.

Why the code a result runs, and not a hash of whole modules: a module-wide hash ties every
refactor to a re-run. Splitting a module or moving a function changes no number, yet it missed
every cached entry and marked every shipped sweep (whose provenance records the hash) "computed
by OTHER code", three of them GPU runs. The other cure, recomputing a recorded canary cell to
vouch for the shipped sweeps, checks one cell after the fact and still throws the cache away.
The code a result runs changes exactly when its numbers can:

- from the function, every top-level definition (function, class, assignment) that its code
  names, directly or as an attribute of an imported module, is followed through the package
  (and the function's own package, e.g. a test's), transitively;
- each counts as its syntax tree without docstrings: layout, comments, docstrings and the
  module a definition lives in do not count, so a refactor that moves code keeps the key;
- a definition reached only through a table or an object's attribute is not followed, so a
  unit that needs another's result calls that unit's trainer by name (:mod:`mvlib.units`);
  decorators are not followed either: the cache around a trainer stores, it does not compute.

Libraries (torch) are outside the key, as the Python version is: the same code hashes the same
on every Python from 3.10.

- ``MVLIB_CACHE``: the cache directory (default ``~/.cache/mvlib``); ``off`` disables caching.
- ``python -m mvlib cache info`` / ``python -m mvlib cache clear``.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.util
import inspect
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import joblib

PACKAGE = "mvlib"


def _code(source: str) -> str:
    """The syntax tree of ``source`` without docstrings: what it computes, not how it is laid
    out or documented. The same text on every Python from 3.10: the empty type parameters 3.12
    adds to each definition are dropped, and 3.13's dump shows empty fields as earlier versions
    do."""
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


def _defined(node: ast.stmt) -> list[str]:
    """The names a top-level statement defines (none for imports and bare expressions)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    else:
        return []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _named(node: ast.stmt) -> tuple[set[str], set[tuple[str, str]]]:
    """What a definition's code names: bare names, and ``name.attribute`` pairs. Decorators
    are left out (they wrap, they do not compute)."""
    names, attributes = set(), set()
    for field, value in ast.iter_fields(node):
        if field == "decorator_list":
            continue
        for child in value if isinstance(value, list) else [value]:
            if not isinstance(child, ast.AST):
                continue
            for n in ast.walk(child):
                if isinstance(n, ast.Name):
                    names.add(n.id)
                elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
                    attributes.add((n.value.id, n.attr))
    return names, attributes


def _path(module: str) -> Path | None:
    loaded = getattr(sys.modules.get(module), "__file__", None)
    if loaded:
        return Path(loaded)
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a name inside a module, not a module
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


@functools.cache
def _module(name: str) -> tuple[dict, dict]:
    """Module ``name`` read once: ``{top-level name: [(code, named)]}`` of its definitions and
    ``{local name: (module, attribute or None)}`` of its imports (None: the module itself)."""
    source = _path(name).read_text()
    tree = ast.parse(source)
    definitions = {}
    for node in tree.body:
        for n in _defined(node):
            code = _code(ast.get_source_segment(source, node))
            definitions.setdefault(n, []).append((code, _named(node)))
    imports = {}
    for node in ast.walk(tree):  # imports inside functions too
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imports.update({a.asname or a.name: (node.module, a.name) for a in node.names})
        elif isinstance(node, ast.Import):
            imports.update({a.asname: (a.name, None) for a in node.names if a.asname})
    return definitions, imports


def _find(module: str, name: str, roots: frozenset):
    """What ``name`` in ``module`` is: (module, name) of its definition, following re-exports
    (a facade's imports), or the name of a module; None outside the followed packages."""
    if module.split(".")[0] not in roots or _path(module) is None:
        return None
    definitions, imports = _module(module)
    if name in definitions:
        return (module, name)
    if name not in imports:
        return None
    where, attribute = imports[name]
    if attribute is None:
        return where
    found = _find(where, attribute, roots)
    sub = f"{where}.{attribute}"
    return sub if found is None and sub.split(".")[0] in roots and _path(sub) else found


def closure(*fns: Callable) -> dict[tuple[str, str], list[str]]:
    """Every definition the functions ``fns`` run: ``{(module, name): [code]}`` (see the
    module's docstring for what is followed)."""
    roots = frozenset({PACKAGE} | {fn.__module__.split(".")[0] for fn in fns})
    todo = [(fn.__module__, fn.__qualname__.split(".")[0]) for fn in fns]
    seen = {}
    while todo:
        module, name = key = todo.pop()
        if key in seen:
            continue
        definitions = _module(module)[0][name]
        seen[key] = [code for code, _ in definitions]
        for _, (names, attributes) in definitions:
            found = [_find(module, n, roots) for n in names]
            for base, attribute in attributes:
                where = _find(module, base, roots)
                if isinstance(where, str):
                    found.append(_find(where, attribute, roots))
            todo += [f for f in found if isinstance(f, tuple)]
    return seen


@functools.cache
def code_hash(*fns: Callable) -> str:
    """SHA-256 (first 16 hex digits) of the code the functions ``fns`` run (:func:`closure`),
    in no particular order: where a definition lives does not count."""
    h = hashlib.sha256()
    for code in sorted(c for codes in closure(*fns).values() for c in codes):
        h.update(code.encode())
    return h.hexdigest()[:16]


def forget_code():
    """Read the package's source again at the next key (after editing it in this process)."""
    _module.cache_clear()
    code_hash.cache_clear()


def location() -> Path | None:
    """The cache directory, or None when ``MVLIB_CACHE=off``."""
    raw = os.environ.get("MVLIB_CACHE", "").strip()
    if raw.lower() in ("off", "0", "false", "no"):
        return None
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "mvlib"


# The undecorated functions by ``module:qualname``, for the cached call to find them.
_FUNCTIONS: dict[str, Callable] = {}


def _call(where: str, name: str, code: str, args: tuple, kwargs: dict):
    """The cached unit of work: keyed on ``name``, ``code`` and the arguments; ``where`` finds
    the function and stays out of the key, so moving it keeps its entries."""
    return _FUNCTIONS[where](*args, **kwargs)


@functools.cache
def _memory(path: str):
    return joblib.Memory(path, verbose=0).cache(_call, ignore=["where"])


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


def cached(fn):
    """``fn(*args, **kwargs)`` memoised on disk, keyed on its name, the code it runs
    (:func:`code_hash`) and its arguments, defaults filled in. Arguments must be plain values or
    frozen dataclasses of them; the result must hold only CPU tensors and plain values."""
    where, signature = f"{fn.__module__}:{fn.__qualname__}", inspect.signature(fn)
    _FUNCTIONS[where] = fn

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        path = location()
        if path is None:
            return fn(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()  # a default and the same value given: one entry
        key = (fn.__qualname__, code_hash(fn), bound.args, bound.kwargs)
        with _lock(path, joblib.hash(key)):
            return _memory(str(path))(where, *key)

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
