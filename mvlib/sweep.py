"""Grid sweeps of :func:`mvlib.experiments.reproduce` on an existing engine, as a tidy CSV.

A sweep is the product of value lists (``--grid k=10,16 --grid mu=0.1,0.2``) times data seeds;
each (grid point, seed) is one *cell*, run by ``reproduce`` with exactly one torch thread, so the
numbers are the same whichever backend runs it (matmul results depend on the thread count):

- ``serial``: in this process;
- ``joblib``: local worker processes (loky), one torch thread each;
- ``dask``: an existing Dask cluster (``scheduler``), or a ``LocalCluster`` of worker processes
  with one thread each; needs the ``cluster`` extra.

The CSV has one row per (cell, method): the preset, every parameter of the config, the seed, the
method and whatever metrics ``reproduce`` returns. Each finished cell is appended in one write
and fsynced; running the same sweep again computes only the missing cells. At the end the file is
rewritten in grid order, so it does not depend on the order in which workers finished.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from mvlib.config import ExperimentConfig, as_dict, parameter_names
from mvlib.presets import get_preset
from mvlib.units import METHODS, reproduce

BACKENDS = ("serial", "joblib", "dask")
CLUSTER_EXTRA = 'the dask backend needs the cluster extra: pip install -e ".[cluster]"'
# Local workers see the caller's MVLIB_* settings (e.g. MVLIB_CACHE) as they are now, even when
# joblib reuses worker processes started under an older environment.
_ENV_PREFIX = "MVLIB_"


@dataclass(frozen=True)
class Cell:
    """One unit of work: a grid point ``((name, value), ...)`` (values as the CSV writes them)
    and a data seed."""

    point: tuple[tuple[str, str], ...]
    seed: int

    @property
    def key(self) -> tuple[str, ...]:
        return (*(v for _, v in self.point), str(self.seed))


@dataclass(frozen=True)
class Plan:
    """A validated sweep: its cells and methods; ``base`` is a config with the sweep's values of
    every parameter outside the grid (preset and ``--set``)."""

    preset: str
    overrides: tuple[tuple[str, str], ...]
    names: tuple[str, ...]  # grid parameter names, in --grid order
    cells: tuple[Cell, ...]
    methods: tuple[str, ...]
    base: ExperimentConfig

    def config(self, cell: Cell) -> ExperimentConfig:
        return get_preset(self.preset, **dict(self.overrides), **dict(cell.point))


def parse_pairs(pairs: list[str], flag: str) -> dict[str, str]:
    """``["NAME=VALUE", ...]`` -> ``{NAME: VALUE}``; a repeated or malformed pair is refused."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not name:
            raise ValueError(f"{flag} takes NAME=VALUE, got {pair!r}")
        if name in out:
            raise ValueError(f"{flag} names {name!r} twice")
        out[name] = value
    return out


def parse_grid(pairs: list[str]) -> dict[str, list[str]]:
    """``["k=10,16", "mu=0.1"]`` -> ``{"k": ["10", "16"], "mu": ["0.1"]}``."""
    grid = {}
    for name, raw in parse_pairs(pairs, "--grid").items():
        values = [v.strip() for v in raw.split(",")]
        if not raw.strip() or any(not v for v in values):
            raise ValueError(f"--grid {name} needs a comma-separated list of values, got {raw!r}")
        grid[name] = values
    return grid


def parse_methods(raw: str | None) -> tuple[str, ...]:
    """``"single,ensemble"`` -> the methods in :data:`METHODS` order (None: all of them)."""
    if raw is None:
        return METHODS
    asked = [m.strip() for m in raw.split(",") if m.strip()]
    unknown = [m for m in asked if m not in METHODS]
    if unknown or not asked:
        raise ValueError(
            f"--methods must be a comma-separated subset of {', '.join(METHODS)}; got {raw!r}"
        )
    return tuple(m for m in METHODS if m in asked)


def plan(
    preset: str,
    grid: dict[str, list[str]],
    overrides: dict[str, str],
    seeds: int = 1,
    seed: int = 0,
    methods: tuple[str, ...] = METHODS,
) -> Plan:
    """Validate every grid point by building its config (a bad name or value raises the config's
    own ValueError, naming the parameter) and list the cells: grid points in product order,
    seeds innermost."""
    if seeds < 1:
        raise ValueError(f"--seeds must be an integer >= 1, got {seeds}")
    both = sorted(set(grid) & set(overrides))
    if both:
        raise ValueError(f"{', '.join(both)} given to both --grid and --set")
    names = tuple(grid)
    configs, points, canonical = [], [], {name: {} for name in names}
    for combo in itertools.product(*grid.values()):
        # Parameters are checked together (e.g. d >= 2k) on the whole point. A value is kept as
        # the CSV writes it: "16" and "16.0" are one value of an integer parameter.
        configs.append(get_preset(preset, **overrides, **dict(zip(names, combo))))
        values = as_dict(configs[-1])
        points.append(tuple((name, str(values[name])) for name in names))
        for name, raw in zip(names, combo):
            canonical[name][raw] = str(values[name])
    for name, seen in canonical.items():
        if len(set(seen.values())) < len(grid[name]):
            raise ValueError(f"--grid {name} repeats a value: {','.join(grid[name])}")
    cells = tuple(Cell(p, s) for p in points for s in range(seed, seed + seeds))
    # Every point shares the parameters outside the grid: the first point's config holds them.
    return Plan(preset, tuple(overrides.items()), names, cells, tuple(methods), configs[0])


def run_cell(
    cfg: ExperimentConfig, seed: int, methods: tuple[str, ...], env: dict[str, str] | None = None
) -> dict[str, dict[str, float]]:
    """``reproduce(cfg, seed)`` restricted to ``methods``, on exactly one torch thread (restored
    afterwards), with ``env`` set for its duration: ``{method: {metric: float}}``."""
    threads = torch.get_num_threads()
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    torch.set_num_threads(1)
    try:
        results = reproduce(cfg, seed, methods=methods)
    finally:
        torch.set_num_threads(threads)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return {m: results[m] for m in methods}


def header(p: Plan, metrics: list[str]) -> list[str]:
    return ["preset", *parameter_names(p.base), "seed", "method", *metrics]


def rows(p: Plan, cell: Cell, results: dict[str, dict[str, float]]) -> list[list[str]]:
    """The CSV rows of one cell, one per method, as strings in :func:`header` order."""
    params = [str(v) for v in as_dict(p.config(cell)).values()]
    metrics = metric_names(results)
    return [
        [p.preset, *params, str(cell.seed), m, *(_text(results[m].get(c)) for c in metrics)]
        for m in p.methods
    ]


def metric_names(results: dict[str, dict[str, float]]) -> list[str]:
    """Every metric key the methods returned, in order of first appearance."""
    return list(dict.fromkeys(c for row in results.values() for c in row))


def _text(value) -> str:
    return "" if value is None else repr(float(value))


def _csv(lines: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(lines)
    return buf.getvalue()


class Results:
    """The CSV on disk: what it holds, appended one whole cell at a time."""

    def __init__(self, path: Path, p: Plan):
        self.path, self.plan = Path(path), p
        self.head: list[str] | None = None
        self.cells: dict[tuple[str, ...], list[list[str]]] = {}
        if self.path.exists():
            self._load()

    def _load(self):
        text = self.path.read_text()
        complete = text[: text.rfind("\n") + 1]  # a kill mid-line leaves a partial last line
        lines = list(csv.reader(io.StringIO(complete)))
        if lines:
            self.head = lines[0]
            self._check_header()
            for row in lines[1:]:
                self.cells.setdefault(self._key(row), []).append(row)
        short = [k for k, r in self.cells.items() if len(r) != len(self.plan.methods)]
        if short[:-1] or (short and short[-1] != next(reversed(self.cells))):
            raise ValueError(
                f"{self.path} holds cells without some of the methods "
                f"{','.join(self.plan.methods)}: it was made with other --methods; "
                f"choose another --out"
            )
        for key in short:  # the last cell, cut short by a kill mid-write
            del self.cells[key]
        if complete != text or short:
            self.rewrite(list(self.cells))

    def _check_header(self):
        p, head = self.plan, self.head
        expected = header(p, [])
        if head[: len(expected)] != expected:
            raise ValueError(
                f"{self.path} has columns {head[: len(expected)]}, this sweep writes "
                f"{expected}: choose another --out"
            )

    def _key(self, row: list[str]) -> tuple[str, ...]:
        p, at = self.plan, {name: i for i, name in enumerate(self.head)}
        fixed = dict(zip(header(p, []), row))
        base = {"preset": p.preset, **{k: str(v) for k, v in as_dict(p.base).items()}}
        for name, value in base.items():
            if name not in p.names and fixed[name] != value:
                raise ValueError(
                    f"{self.path} was made by another sweep ({name}={fixed[name]} "
                    f"there, {value} here: check --preset, --set and --grid); "
                    f"choose another --out or delete it"
                )
        if row[at["method"]] not in p.methods:
            raise ValueError(
                f"{self.path} holds method {row[at['method']]!r}, this sweep runs "
                f"{','.join(p.methods)} (--methods): choose another --out"
            )
        return (*(row[at[n]] for n in p.names), row[at["seed"]])

    def todo(self) -> list[Cell]:
        return [c for c in self.plan.cells if c.key not in self.cells]

    def append(self, cell: Cell, results: dict[str, dict[str, float]]):
        """Write the cell's rows (and the header, first) in one write, then flush and fsync."""
        new = rows(self.plan, cell, results)
        head = header(self.plan, metric_names(results))
        if self.head is not None and self.head != head:
            raise ValueError(
                f"{self.path} has columns {self.head}, but this cell returned "
                f"{head}: mvlib changed since the file was begun; use another --out"
            )
        text = _csv(new if self.head is not None else [head, *new])
        with open(self.path, "a") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        self.head = head
        self.cells[cell.key] = new

    def rewrite(self, order: list[tuple[str, ...]]):
        """Replace the file (atomically) by its cells in ``order``, then any others."""
        keys = [k for k in order if k in self.cells]
        keys += [k for k in self.cells if k not in set(keys)]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w") as f:
            if self.head is not None:
                f.write(_csv([self.head, *(r for k in keys for r in self.cells[k])]))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def _local_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIX)}


def _serial(p: Plan, cells: list[Cell]):
    for cell in cells:
        yield cell, run_cell(p.config(cell), cell.seed, p.methods)


def _joblib(p: Plan, cells: list[Cell], workers: int):
    from joblib import Parallel, delayed

    env = _local_env()
    jobs = Parallel(n_jobs=min(workers, len(cells)), batch_size=1, return_as="generator_unordered")(
        delayed(_tagged)(cell, p.config(cell), p.methods, env) for cell in cells
    )
    yield from jobs


def _tagged(cell: Cell, cfg: ExperimentConfig, methods, env):
    return cell, run_cell(cfg, cell.seed, methods, env)


def _dask(p: Plan, cells: list[Cell], workers: int, scheduler: str | None):
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as e:
        raise ImportError(CLUSTER_EXTRA) from e
    # A remote cluster keeps its own environment; a local one mirrors ours.
    env = None if scheduler else _local_env()
    cluster = (
        None
        if scheduler
        else LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    )
    try:
        client = Client(scheduler or cluster)
    except OSError as e:  # unreachable or not a scheduler: dask waits its connect timeout first
        raise ValueError(
            f"--scheduler: no Dask scheduler answered at {scheduler} ({e}); start one with "
            "`dask scheduler` and pass the address it prints"
        ) from e
    try:
        futures = [
            client.submit(_tagged, cell, p.config(cell), p.methods, env, pure=False)
            for cell in cells
        ]
        for future in as_completed(futures):
            yield future.result()
            future.release()  # let the workers drop the result before they shut down
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def sweep(
    p: Plan,
    out: str | Path,
    backend: str = "joblib",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
) -> int:
    """Run the cells of ``p`` missing from ``out``, appending each as it finishes; returns the
    number of cells computed. ``workers`` defaults to the number of cores."""
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"--workers must be an integer >= 1, got {workers}")
    if scheduler and backend != "dask":
        raise ValueError("--scheduler needs --backend dask")
    results = Results(Path(out), p)
    todo = results.todo()
    if todo:
        engine = {
            "serial": lambda: _serial(p, todo),
            "joblib": lambda: _joblib(p, todo, workers),
            "dask": lambda: _dask(p, todo, workers, scheduler),
        }[backend]()
        with tqdm(
            total=len(p.cells),
            initial=len(p.cells) - len(todo),
            unit="cell",
            desc=f"sweep {p.preset}",
            file=sys.stderr,
            disable=not progress,
        ) as bar:
            for cell, res in engine:
                results.append(cell, res)
                bar.update()
    results.rewrite([c.key for c in p.cells])
    return len(todo)


def load(path: str | Path):
    """The sweep's CSV as a pandas DataFrame."""
    import pandas as pd

    return pd.read_csv(path)


def summarise(df):
    """Per (grid point, method): the mean and 95% t-interval over seeds of every metric
    (:func:`mvlib.stats.mean_ci`, cut to [0, 1] but for :data:`mvlib.metrics.MAGNITUDES`: every
    other metric is a fraction). Grid columns are
    the parameters that vary in ``df``.

    Returns a DataFrame with the grid columns, ``method``, ``seeds`` (how many) and, for each
    metric M, ``M`` (the mean), ``M_lo`` and ``M_hi``.
    """
    import pandas as pd

    from mvlib.metrics import MAGNITUDES
    from mvlib.stats import FRACTION, mean_ci

    params = ["preset", *parameter_names(ExperimentConfig())]
    metrics = [c for c in df.columns if c not in (*params, "seed", "method")]
    grid = [c for c in params if c in df.columns and df[c].nunique(dropna=False) > 1]
    out = []
    for key, group in df.groupby([*grid, "method"], sort=False):
        row = dict(zip([*grid, "method"], key if isinstance(key, tuple) else (key,)))
        row["seeds"] = group["seed"].nunique()
        for m in metrics:
            values = group[m].dropna()
            bounds = None if m in MAGNITUDES else FRACTION
            ci = mean_ci(values, bounds) if len(values) else None
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = (
                (ci.mean, ci.lo, ci.hi) if ci else (float("nan"),) * 3
            )
        out.append(row)
    return pd.DataFrame(out)
