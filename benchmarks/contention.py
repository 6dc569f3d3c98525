"""Benchmark of runs beside other work: ``reproduce`` alone, two and three at once, and beside a
single-threaded busy process, for each torch thread count and OpenMP wait policy.

    python benchmarks/contention.py [--work small|ci] [--reps 3] [--settings ...]
                                    [--out benchmarks/CONTENTION.md]

``--work ci`` is ``python -m mvlib reproduce --preset ci --seeds 1`` as a reader runs it; ``small``
is the same command with every training phase an eighth as long (same sizes, same kernels, so
the same contention, in an eighth of the time). A setting is a torch thread count and an OpenMP
wait policy (``mvlib default``: no thread variable set, what a reader gets). Each scenario starts
its processes together and reports the median of their wall times; ``alone`` is repeated
``--reps`` times (median reported), each concurrent scenario runs once.
The result cache is off (``MVLIB_CACHE=off``) so that no run reads another's results.
Writes markdown to ``--out`` and prints it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["--set", "steps=75", "--set", "sd_steps=150", "--set", "ntk_steps=63"]
WORK = {"ci": [], "small": SHORT}
# name -> (MVLIB_THREADS, OpenMP variables). libgomp's own default (no policy set) spins
# GOMP_SPINCOUNT = 300,000 times before it sleeps; mvlib keeps a GOMP_SPINCOUNT it finds.
SETTINGS = {
    "1 thread": ("1", {}),
    "2 threads, libgomp default": ("2", {"GOMP_SPINCOUNT": "300000"}),
    "2 threads, PASSIVE": ("2", {"OMP_WAIT_POLICY": "PASSIVE"}),
    "2 threads, ACTIVE": ("2", {"OMP_WAIT_POLICY": "ACTIVE"}),
    "2 threads, GOMP_SPINCOUNT=10000": ("2", {"GOMP_SPINCOUNT": "10000"}),
    "2 threads, GOMP_SPINCOUNT=30000": ("2", {"GOMP_SPINCOUNT": "30000"}),
    "mvlib default": (None, {}),
}
SCENARIOS = {"alone": (1, False), "two at once": (2, False), "three at once": (3, False),
             "beside a busy process": (1, True)}  # fmt: skip
BUSY = "while True: pass"
CHOSEN: dict[str, set[str]] = {}  # setting -> the thread lines its runs printed


def env_for(threads: str | None, omp: dict) -> dict:
    drop = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MVLIB_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(omp, MVLIB_CACHE="off")
    if threads is not None:
        env["MVLIB_THREADS"] = threads
    return env


def scenario(work: str, setting: str, n: int, busy: bool) -> float:
    """Median wall seconds of n reproduce runs started together (beside a busy loop if busy)."""
    cmd = [sys.executable, "-m", "mvlib", "reproduce", "--preset", "ci", "--seeds", "1",
           "--no-progress", *WORK[work]]  # fmt: skip
    env = env_for(*SETTINGS[setting])
    hog = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        t0 = time.perf_counter()
        procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
                 for _ in range(n)]  # fmt: skip

        def finish(p):  # each process's own end, however they interleave
            out = p.communicate()[0]
            return time.perf_counter() - t0, p.returncode, out.split("\n", 1)[0]

        with ThreadPoolExecutor(n) as pool:
            ends = list(pool.map(finish, procs))
        walls = []
        for wall, code, first in ends:  # first: reproduce's thread line
            if code != 0:
                raise RuntimeError(f"{setting}: reproduce exited {code}")
            walls.append(wall)
            CHOSEN.setdefault(setting, set()).add(first)
    finally:
        if hog is not None:
            hog.kill()
    return statistics.median(walls)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", choices=sorted(WORK), default="small")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    ap.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "CONTENTION.md"))
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    rows = {}
    for s in a.settings:
        times = {}
        for name in a.scenarios:
            n, busy = SCENARIOS[name]
            reps = a.reps if name == "alone" else 1
            times[name] = statistics.median(scenario(a.work, s, n, busy) for _ in range(reps))
            print(f"{s:28s} {name:22s} {times[name]:7.1f} s", flush=True)
        rows[s] = times
    lines = [
        f"## `--work {a.work}`, {datetime.date.today()}, {os.cpu_count()} logical CPUs",
        "",
        f"Load average before: {load0:.2f}, after: {os.getloadavg()[0]:.2f}. Seconds per run "
        f"(median of the processes started together; `alone` median of {a.reps}); in brackets, "
        "the ratio to the same setting alone.",
        "",
        "| setting | " + " | ".join(a.scenarios) + " |",
        "|---" * (len(a.scenarios) + 1) + "|",
    ]
    for s, t in rows.items():
        base = t.get("alone")
        cells = [f"{v:.0f}" + (f" ({v / base:.2f}x)" if base and k != "alone" else "")
                 for k, v in t.items()]  # fmt: skip
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "Thread lines the runs printed:", ""]
    lines += [f"- {s}: " + "; ".join(f"`{x}`" for x in sorted(CHOSEN.get(s, ()))) for s in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(a.out, "a") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
