"""CPU threads: a default that holds up when other work shares the cores.

Two processes whose OpenMP pools each take every core slow each other far beyond a fair share:
libgomp's waiting threads spin, and each pool waits on threads the other has descheduled.
``benchmarks/CONTENTION.md`` measures it, and why the wait policy is not the cure: threads that
sleep at once (``OMP_WAIT_POLICY=PASSIVE``) or spin less keep two runs apart but cost a lone run
a quarter to a half of its speed. So :func:`configure` leaves the policy to libgomp and chooses the
thread count instead: the cores this process may use, less the other tasks running on the
machine when it starts (the median of a few reads of ``/proc/loadavg``), at least one. Threads
change speed, not results (``tests/test_threads.py``).

Overrides, first found wins: the ``threads`` argument (``reproduce --threads N``),
``MVLIB_THREADS=N``, ``OMP_NUM_THREADS=N``. Library users call ``mvlib.threads.configure()``
before their first computation, or set one of the variables.
"""

from __future__ import annotations

import os
import statistics
import time

SAMPLES, INTERVAL = 5, 0.02  # reads of /proc/loadavg and the seconds between them


def _count(name: str, raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {raw!r}")
    return int(raw)


def cores() -> int:
    """The CPUs this process may run on (its affinity mask; all of them where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def others_running(samples: int = SAMPLES, interval: float = INTERVAL) -> int:
    """Runnable tasks on the machine besides this one: the median over a few reads of
    ``/proc/loadavg``'s running count (which counts this process too); 0 where unreadable."""
    seen = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                seen.append(int(f.read().split()[3].split("/")[0]))
        except (OSError, IndexError, ValueError):
            return 0
        if i + 1 < samples:
            time.sleep(interval)
    return max(0, int(statistics.median(seen)) - 1)


def choose(threads: int | None = None) -> tuple[int, str]:
    """The thread count and where it came from (see the module's overrides)."""
    if threads is not None:
        return _count("--threads", str(threads)), "asked"
    for name in ("MVLIB_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").strip():
            return _count(name, os.environ[name]), name
    n, busy = cores(), others_running()
    return max(1, n - busy), f"auto: {n} cores, {busy} other tasks running"


def configure(threads: int | None = None) -> str:
    """Set torch's thread count (:func:`choose`) and return the one line ``reproduce`` and
    ``sweep`` print first."""
    import torch

    n, why = choose(threads)
    torch.set_num_threads(n)
    policy = os.environ.get("OMP_WAIT_POLICY") or "libgomp default"
    return f"threads: {n} torch ({why}), OMP_WAIT_POLICY={policy}"
