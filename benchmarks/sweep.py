"""Benchmark of ``python -m mvlib sweep``: throughput per backend, and threads for one run.

    python benchmarks/sweep.py [--work ci|small] [--reps 2] [--out benchmarks/SWEEP.md]

Measures, on this machine, at the ``ci`` preset as it is (``--work ci``: cells of about 20 s, as
the shipped sweeps run them) or cut down (``--work small``: cells of a few seconds, where start-up
costs show):

1. the wall time of one sweep command over a 4-cell grid (2 grid points x 2 seeds), from the
   command line (interpreter start and worker start-up included, as a user sees it), for the
   serial backend, joblib with 1 and 2 workers and a Dask LocalCluster with 2 workers; its
   throughput (cells per minute) and speedup over serial;
2. the time of one ``reproduce`` call (the same cell's work, in this process) with 1 and with 2
   torch threads, and whether the two give the same numbers.

Other users may share the CPU: every configuration runs back to back, interleaved, ``--reps``
times; the table reports each time and the minimum, beside the load average (``uptime``) before
and after. The cache is off (``MVLIB_CACHE=off``) so that no run reads another's results. The
backends' CSVs are checked to be identical. Writes markdown to ``--out`` and prints it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from mvlib.experiments import reproduce
from mvlib.presets import get_preset

HERE = Path(__file__).resolve().parent
WORKS = {"ci": {}, "small": {"steps": "150", "n_test": "300", "ntk_steps": "100"}}
GRID = ["--grid", "mu=0.1,0.2", "--seeds", "2"]
CELLS = 4
# The members (K = 10 networks) are most of a cell's work; every method at these cut-down steps
# would take about four times longer per cell.
METHODS = "single,ensemble"
BACKENDS = {
    "serial": ["--backend", "serial"],
    "joblib, 1 worker": ["--backend", "joblib", "--workers", "1"],
    "joblib, 2 workers": ["--backend", "joblib", "--workers", "2"],
    "dask LocalCluster, 2 workers": ["--backend", "dask", "--workers", "2"],
}
TARGET_SPEEDUP = 1.8


def sweep_args(out: Path, backend: list[str], work: str) -> list[str]:
    sets = [a for name, v in WORKS[work].items() for a in ("--set", f"{name}={v}")]
    return [
        "python",
        "-m",
        "mvlib",
        "sweep",
        "--preset",
        "ci",
        *sets,
        *GRID,
        "--methods",
        METHODS,
        *backend,
        "--no-progress",
        "--out",
        str(out),
    ]


def time_sweep(out: Path, backend: list[str], work: str) -> float:
    """Wall seconds of one sweep command, started afresh (the CSV removed first)."""
    out.unlink(missing_ok=True)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *sweep_args(out, backend, work)[1:]],
        capture_output=True,
        text=True,
        env={**os.environ, "MVLIB_CACHE": "off"},
    )
    if proc.returncode:
        raise RuntimeError(f"sweep {' '.join(backend)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t


def time_reproduce(threads: int, work: str) -> tuple[float, dict]:
    """Seconds of one reproduce call of the grid's first cell with ``threads`` torch threads."""
    cfg = get_preset("ci", mu="0.1", **WORKS[work])
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t = time.perf_counter()
        res = reproduce(cfg, 0, methods=tuple(METHODS.split(",")))
        return time.perf_counter() - t, res
    finally:
        torch.set_num_threads(before)


def load() -> tuple[float, float, float]:
    return os.getloadavg()


def busy_note(before, after) -> list[str]:
    """A warning when the 1-minute load exceeded the cores: the CPU was oversubscribed."""
    cores = os.cpu_count() or 1
    if max(before[0], after[0]) <= cores:
        return []
    return [
        f"- The 1-minute load was above the {cores} cores: the speedups below measure "
        "contention with other work as much as the engines; rerun on an idle machine."
    ]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def measure(reps: int, tmp: Path, work: str) -> dict:
    sweeps = {name: [] for name in BACKENDS}
    single = {1: [], 2: []}
    results = {}
    for _ in range(reps):
        for name, backend in BACKENDS.items():
            sweeps[name].append(time_sweep(tmp / f"{len(sweeps[name])}-{name}.csv", backend, work))
        for threads in single:
            seconds, results[threads] = time_reproduce(threads, work)
            single[threads].append(seconds)
    csvs = {name: (tmp / f"{reps - 1}-{name}.csv").read_text() for name in BACKENDS}
    return {
        "sweeps": sweeps,
        "single": single,
        "same_csv": len(set(csvs.values())) == 1,
        "same_threads": results[1] == results[2],
    }


def report(m: dict, reps: int, work: str, before, after, seconds: float) -> str:
    base = min(m["sweeps"]["serial"])
    rows = []
    for name, times in m["sweeps"].items():
        best = min(times)
        rows.append(
            f"| {name} | {' / '.join(f'{t:.1f}' for t in times)} | {best:.1f} | "
            f"{60 * CELLS / best:.2f} | {base / best:.2f}x |"
        )
    single = [
        f"| {n} | {' / '.join(f'{t:.1f}' for t in ts)} | {min(ts):.1f} |"
        for n, ts in m["single"].items()
    ]
    speedup = base / min(m["sweeps"]["joblib, 2 workers"])
    cmd = " ".join(sweep_args(Path("OUT.csv"), ["--backend", "B", "..."], work))
    return "\n".join(
        [
            "# Sweep benchmark",
            "",
            f"Generated by `python benchmarks/sweep.py --work {work} --reps {reps}` on "
            f"{datetime.date.today().isoformat()} ({seconds / 60:.1f} minutes).",
            "",
            f"- Machine: {cpu_model()}, {os.cpu_count()} cores; Python "
            f"{platform.python_version()}, torch {torch.__version__}.",
            f"- Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in before)}; "
            f"after: {', '.join(f'{x:.2f}' for x in after)}. The CPU was shared with other users: "
            "every configuration ran back to back, interleaved, and the minimum is the figure to "
            "read.",
            *busy_note(before, after),
            f"- Work: the `ci` preset{''.join(f', {k}={v}' for k, v in WORKS[work].items())}; "
            f"methods `{METHODS}`, {CELLS} cells (`{' '.join(GRID)}`), cache off.",
            f"- Command: `{cmd}` (times include interpreter and worker start-up).",
            "",
            "## Sweep throughput",
            "",
            "| backend | wall s (each run) | min s | cells / min | speedup over serial |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"joblib with 2 workers: {speedup:.2f}x serial (target >= {TARGET_SPEEDUP}x on 2 cores). "
            f"The backends' CSVs are {'identical' if m['same_csv'] else 'NOT identical'}.",
            "",
            "## One reproduce call: torch threads",
            "",
            "| threads | s (each run) | min s |",
            "|---|---|---|",
            *single,
            "",
            "With 1 and 2 threads the numbers are "
            + (
                "identical."
                if m["same_threads"]
                else "different: a run's numbers depend on its "
                "thread count, which is why a sweep fixes it at one."
            ),
            "",
            "## Defaults",
            "",
            "- A sweep runs one torch thread per cell (`mvlib.sweep.run_cell`), whatever the backend:",
            "  its parallelism is across cells, one worker process per core (`--workers`, default the",
            "  number of cores), and one thread makes every backend and worker count give the same",
            "  numbers.",
            "- One `reproduce` run uses torch's default, one thread per core; on a busy machine pass",
            "  `python -m mvlib reproduce --threads 1` (threads beyond the free cores only contend).",
            "",
        ]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", choices=WORKS, default="ci", help="cell size (default ci)")
    ap.add_argument("--reps", type=int, default=2, help="interleaved repetitions (default 2)")
    ap.add_argument("--out", default=str(HERE / "SWEEP.md"))
    args = ap.parse_args()
    os.environ["MVLIB_CACHE"] = "off"  # every run computes; none reads another's results
    before, t = load(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        m = measure(args.reps, Path(tmp), args.work)
    text = report(m, args.reps, args.work, before, load(), time.perf_counter() - t)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
