"""Command line of mvlib: reproduce the headline table, sweep a grid, manage the cache.

- ``python -m mvlib reproduce --preset book --seeds 3 --seed 0 --set k=12 --json out.json``
  runs every method of :data:`mvlib.units.METHODS` on N data seeds and prints each metric
  (train / multi-view / single-view / overall accuracy first) as mean ± spread over seeds, then
  each claim of the paper as a paired 95% interval over the seeds.
- ``python -m mvlib sweep --preset ci --grid k=10,16 --seeds 3 --out results.csv`` runs a grid
  of cells (:mod:`mvlib.sweep`) on serial, joblib or Dask workers, resumably, into a tidy CSV.
- ``python -m mvlib images --preset book --out mvlib/sweeps/images_book.csv`` trains the
  real-data table and Figure 9 (:mod:`mvlib.images`) seed by seed, resumably, into a CSV.
- ``python -m mvlib cache info|clear`` shows or empties the cache of trained results.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import statistics
import sys

from tqdm import tqdm

from mvlib import cache, threads
from mvlib import sweep as sw
from mvlib.claims import EQUIVALENT
from mvlib.claims import paired_claims as claims
from mvlib.config import as_dict
from mvlib.image_data import PRESETS as IMAGE_PRESETS
from mvlib.image_data import parse_overrides
from mvlib.presets import PRESETS, get_preset
from mvlib.provenance import write_provenance
from mvlib.train import TrainingDiverged
from mvlib.units import by_method, progress_total, reproduce

# The table's first columns; any further metric reproduce returns follows them.
COLUMNS = ("train", "multi_view", "single_view", "overall")


def _json(x: float) -> float | None:
    return x if math.isfinite(x) else None


def summarise(values: list[float | None]) -> str:
    """'mean ± spread' where spread is the sample standard deviation over seeds (0 for one seed)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def columns(results: dict[str, dict]) -> list[str]:
    """The metrics the results hold: :data:`COLUMNS` first, then the others as they appear."""
    held = dict.fromkeys(c for row in results.values() for c in row)
    return [c for c in COLUMNS if c in held] + [c for c in held if c not in COLUMNS]


def table(results: dict[str, dict[str, list[float]]]) -> str:
    """The accuracy table, one row per method, one column per metric."""
    cols = columns(results)
    head = f"{'method':<22}" + "".join(f"{c:>18}" for c in cols)
    rows = [
        f"{m:<22}"
        + "".join(f"{summarise(results[m][c]) if c in results[m] else '':>18}" for c in cols)
        for m in results
    ]
    return "\n".join([head, "-" * len(head), *rows])


def claims_table(rows: list[dict]) -> str:
    """The claims as text: name, mean [95% interval], verdict (:func:`mvlib.claims.verdict`)."""
    lines = [
        "claims (paired over seeds; holds: 95% interval above 0; equivalent to zero: 90%"
        " interval inside +-margin (two one-sided tests); fails: 95% interval below 0)"
    ]
    for r in rows:
        lines.append(
            f"  {r['claim']:<52}{r['mean']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}]  {r['verdict']}"
            + (f" (margin {r['margin']:g})" if r["verdict"] == EQUIVALENT else "")
            + (" (1 seed)" if r["seeds"] < 2 else "")
        )
    return "\n".join(lines)


def run_reproduce(
    preset: str, seeds: int, seed: int, overrides: dict, show_progress: bool = True
) -> dict:
    """The JSON document: {"preset", "config", "seeds", "results": {METHOD: {metric: [one per
    seed]}}}, metrics in :func:`columns` order."""
    cfg = get_preset(preset, **overrides)
    runs = []
    with tqdm(
        total=seeds * progress_total(cfg),
        desc=f"{preset} x{seeds} seeds",
        unit="step",
        disable=not show_progress,
        file=sys.stderr,
    ) as bar:
        for s in range(seed, seed + seeds):
            runs.append(reproduce(cfg, s, progress=bar.update))
    # each method's own metrics (Theorem 4's are computed for self-distillation only); a union
    # rate with no cell in its set is NaN, written as null
    results = {
        m: {c: [_json(v) for v in values] for c, values in row.items()}
        for m, row in by_method(runs).items()
    }
    return {
        "preset": preset,
        "config": as_dict(cfg),
        "seeds": list(range(seed, seed + seeds)),
        "results": results,
        "claims": claims(results, params=as_dict(cfg)),
    }


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m mvlib", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="run every method of the headline table and print it")
    _common(rep)
    rep.add_argument("--seeds", type=int, default=1, help="number of data seeds (default 1)")
    rep.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    rep.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads (default: $MVLIB_THREADS, else $OMP_NUM_THREADS, else the free "
        "cores: see mvlib.threads)",
    )
    rep.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    swp = sub.add_parser(
        "sweep",
        help="run a grid of (grid point, seed) cells into a tidy, resumable CSV",
        description="Run reproduce on every (grid point, seed) cell, one torch thread per cell, "
        "appending each finished cell to --out; rerun the same command to resume.",
    )
    _common(swp)
    swp.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="values of one parameter; the grid is the product of every --grid",
    )
    swp.add_argument("--seeds", type=int, default=1, help="data seeds per grid point (default 1)")
    swp.add_argument(
        "--methods",
        metavar="M1,M2,...",
        help="methods of reproduce to run (default: all); only what they need is trained",
    )
    swp.add_argument(
        "--backend",
        choices=sw.BACKENDS,
        default="joblib",
        help="serial: in-process; joblib: local worker processes (default); dask: a "
        "Dask cluster (--scheduler) or a local one (needs the cluster extra)",
    )
    swp.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes for joblib or a local Dask cluster (default: cores)",
    )
    swp.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler address, e.g. tcp://host:8786 (--backend dask)",
    )
    swp.add_argument("--out", required=True, metavar="PATH", help="the CSV to write or resume")
    swp.add_argument(
        "--provenance",
        metavar="COMMAND",
        help="once every cell is in --out, record beside it (PATH.provenance.json) that COMMAND "
        "makes it, with mvlib's version and source hash, the date and the machine",
    )
    swp.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    img = sub.add_parser(
        "images",
        help="run the real-data table and Figure 9 (mvlib.images) into a resumable CSV",
        description="Train every method of the real-data table, and Figure 9's heads, for "
        "seeds 0..seeds-1 of an image preset, appending each seed's rows to --out; rerun the "
        "same command to resume. Records its provenance (PATH.provenance.json) at the end.",
    )
    img.add_argument("--preset", default="book", choices=sorted(IMAGE_PRESETS))
    img.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter of mvlib.image_data.ImageConfig; repeatable",
    )
    img.add_argument("--out", required=True, metavar="PATH", help="the CSV to write or resume")
    img.add_argument(
        "--threads", type=int, metavar="N", help="torch threads (default: see mvlib.threads)"
    )

    cch = sub.add_parser(
        "cache",
        help="show or clear the cache of trained results "
        "(directory: $MVLIB_CACHE, default ~/.cache/mvlib)",
    )
    cch.add_argument("action", choices=("info", "clear"))
    return top


def _common(p: argparse.ArgumentParser):
    p.add_argument("--preset", default="book", choices=sorted(PRESETS))
    p.add_argument("--seed", type=int, default=0, help="first data seed (default 0)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a preset parameter; repeatable",
    )


def _reproduce(args) -> int:
    if args.seeds < 1:
        raise ValueError(f"--seeds must be an integer >= 1, got {args.seeds}")
    print(threads.configure(args.threads), flush=True)
    doc = run_reproduce(
        args.preset, args.seeds, args.seed, sw.parse_pairs(args.set, "--set"), not args.no_progress
    )
    print(table(doc["results"]))
    print()
    print(claims_table(doc["claims"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    return 0


def _sweep(args) -> int:
    workers = args.workers or "one per core"
    print(f"threads: 1 torch per cell, {args.backend} backend, workers: {workers}", flush=True)
    p = sw.plan(
        args.preset,
        sw.parse_grid(args.grid),
        sw.parse_pairs(args.set, "--set"),
        args.seeds,
        args.seed,
        sw.parse_methods(args.methods),
    )
    # `kill` (SIGTERM) unwinds like Ctrl-C: the engine then stops its workers at once, where
    # Python's default would leave them computing their cells with nobody to write them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    done = sw.sweep(p, args.out, args.backend, args.workers, args.scheduler, not args.no_progress)
    print(
        f"{done} cells computed, {len(p.cells) - done} already in {args.out}; "
        f"{len(p.cells)} cells x {len(p.methods)} methods"
    )
    if args.provenance:
        print(f"provenance: {write_provenance(args.out, args.provenance)}")
    return 0


def _images(args) -> int:
    from mvlib import images

    cfg = images.get_preset(args.preset, **parse_overrides(sw.parse_pairs(args.set, "--set")))
    print(threads.configure(args.threads), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    done = images.sweep(cfg, args.out, "python -m mvlib " + shlex.join(args.argv))
    print(f"{done} seeds computed, {cfg.seeds - done} already in {args.out}")
    return 0


def _cache(args) -> int:
    if args.action == "clear":
        where = cache.location()
        print(f"removed {cache.clear()} cached results from {where}")
    else:
        print(json.dumps(cache.info(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    command = {"reproduce": _reproduce, "sweep": _sweep, "images": _images, "cache": _cache}
    command = command[args.command]
    try:
        return command(args)
    except (ValueError, ImportError) as e:
        top.error(str(e))
    except TrainingDiverged as e:  # the message names the cause and the parameter to change
        print(f"error: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
