"""Command line: ``python -m mvlib reproduce --preset book --seeds 3 --seed 0 --set k=12 --json out.json``.

Runs the headline experiment (every method of :data:`mvlib.experiments.METHODS`) on N data seeds
and prints train / multi-view / single-view / overall accuracy as mean ± spread over seeds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys

from tqdm import tqdm

from mvlib.experiments import METHODS, as_dict, progress_total, reproduce
from mvlib.presets import PRESETS, get_preset

COLUMNS = ("train", "multi_view", "single_view", "overall")


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--set takes NAME=VALUE, got {pair!r}")
        out[name.strip()] = value.strip()
    return out


def summarise(values: list[float]) -> str:
    """'mean ± spread' where spread is the sample standard deviation over seeds (0 for one seed)."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def table(results: dict[str, dict[str, list[float]]]) -> str:
    """The accuracy table, one row per method."""
    head = f"{'method':<22}" + "".join(f"{c:>18}" for c in COLUMNS)
    rows = [f"{m:<22}" + "".join(f"{summarise(results[m][c]):>18}" for c in COLUMNS) for m in results]
    return "\n".join([head, "-" * len(head), *rows])


def run_reproduce(preset: str, seeds: int, seed: int, overrides: dict, show_progress: bool = True) -> dict:
    """The JSON document: {"preset", "config", "results": {METHOD: {column: [one per seed]}}}."""
    cfg = get_preset(preset, **overrides)
    results = {m: {c: [] for c in COLUMNS} for m in METHODS}
    with tqdm(total=seeds * progress_total(cfg), desc=f"{preset} x{seeds} seeds", unit="step",
              disable=not show_progress, file=sys.stderr) as bar:
        for s in range(seed, seed + seeds):
            for m, row in reproduce(cfg, s, progress=bar.update).items():
                for c in COLUMNS:
                    results[m][c].append(row[c])
    return {"preset": preset, "config": as_dict(cfg), "seeds": list(range(seed, seed + seeds)), "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mvlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="run every method of the headline table and print it")
    rep.add_argument("--preset", default="book", choices=sorted(PRESETS))
    rep.add_argument("--seeds", type=int, default=1, help="number of data seeds (default 1)")
    rep.add_argument("--seed", type=int, default=0, help="first data seed (default 0)")
    rep.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="override a preset parameter; repeatable")
    rep.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    rep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be an integer >= 1, got {args.seeds}")
    try:
        doc = run_reproduce(args.preset, args.seeds, args.seed, _overrides(args.set), not args.no_progress)
    except ValueError as e:
        parser.error(str(e))
    print(table(doc["results"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
