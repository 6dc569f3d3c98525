"""Speed of one GD step: the machine's matmul ceiling, mvlib's batched step at several sizes, the
same training written by hand (K ``torch.nn.Module`` models, autograd, ``torch.optim.SGD``), a
profile of the step, and the first step of a fresh process.

    python benchmarks/step_speed.py --firstcall cpu     # the first-call probe run_first_call uses
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
from common import make_problem, med, mvlib_step, step_flops, sync, timeit


def matmul_ceiling(n: int, device, warmup: int, repeats: int) -> tuple[float, float]:
    """FLOP/s of an (n, n) x (n, n) float32 product: (median, best)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    ts = timeit(lambda: a @ b, device, warmup, max(repeats, 5))
    return 2 * n**3 / med(ts), 2 * n**3 / min(ts)


# --------------------------------------------------------------- the hand-written baseline


class HandLearner(torch.nn.Module):
    """One model of Def. 3.4 as a user would write it: weights (k, m, d), autograd for the rest."""

    def __init__(self, W0: torch.Tensor, q: int, varrho: float):
        super().__init__()
        self.w = torch.nn.Parameter(W0.clone())
        self.q, self.varrho = q, varrho

    def forward(self, X):  # X: (N, P, d) -> (N, k)
        k, m, d = self.w.shape
        z = X @ self.w.reshape(k * m, d).T  # (N, P, k*m)
        zc = z.clamp(0.0, self.varrho)
        a = zc**self.q / (self.q * self.varrho ** (self.q - 1)) + (z - self.varrho).clamp(min=0.0)
        return a.view(*X.shape[:2], k, m).sum((1, 3))


def hand_models(cfg, W):
    models = [HandLearner(W[i], cfg.learner.q, cfg.learner.varrho) for i in range(W.shape[0])]
    opts = [torch.optim.SGD(mdl.parameters(), lr=cfg.eta) for mdl in models]
    return models, opts


def hand_step(models, opts, X, y):
    def step():
        for mdl, opt in zip(models, opts):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(mdl(X), y)
            loss.backward()
            opt.step()

    return step


def check_baseline(cfg, X, y, W) -> float:
    """Max relative difference of W after one step, mvlib vs the hand-written loop."""
    W1 = W.clone()
    mvlib_step(cfg, X, y, W1)()
    models, opts = hand_models(cfg, W)
    hand_step(models, opts, X, y)()
    W2 = torch.stack([mdl.w.detach() for mdl in models])
    return float(((W1 - W2).abs().max() / (W2 - W).abs().max()).item())


def step_rows(sizes, Ks, device, warmup: int, repeats: int, peak: float, log):
    """Per (preset, N) in ``sizes`` and K in ``Ks``: mvlib's step time and FLOP/s and, at K = 1
    and 10, the hand loop's time and its agreement with mvlib after one step.
    Returns (rows, checks {(preset, K): max relative dW difference})."""
    rows, checks = [], {}
    for name, N in sizes:
        for K in Ks:
            cfg, X, y, W = make_problem(name, N, K, device)
            ts = timeit(mvlib_step(cfg, X, y, W), device, warmup, repeats)
            row = {
                "preset": name,
                "N": N,
                "K": K,
                "ms": med(ts) * 1e3,
                "ms_min": min(ts) * 1e3,
                "flop": step_flops(cfg, N, K),
            }
            row["gflops"] = row["flop"] / med(ts) / 1e9
            row["frac"] = row["flop"] / med(ts) / peak
            if K in (1, 10):
                checks[(name, K)] = check_baseline(cfg, X, y, W)
                models, opts = hand_models(cfg, W)
                tb = timeit(hand_step(models, opts, X, y), device, warmup, repeats)
                row["hand_ms"] = med(tb) * 1e3
                row["speedup"] = med(tb) / med(ts)
            rows.append(row)
            log(
                f"{name} N={N} K={K}: {row['ms']:.1f} ms, {row['gflops']:.1f} GFLOP/s "
                f"({row['frac']:.0%})"
                + (
                    f", hand loop {row['hand_ms']:.1f} ms ({row['speedup']:.1f}x)"
                    if "hand_ms" in row
                    else ""
                )
            )
    return rows, checks


# ----------------------------------------------------------------------------- profile


def profile_step(step, device, steps: int = 5) -> list[tuple[str, float, float]]:
    """Top ops of a step by self time: (name, ms per step, share)."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    step()
    sync(device)
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        sync(device)
    rows = []
    for e in prof.key_averages():
        t = (
            (getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0))
            if device.type == "cuda"
            else e.self_cpu_time_total
        )
        rows.append((e.key, t / 1e3 / steps))
    total = sum(t for _, t in rows) or 1.0
    rows.sort(key=lambda r: -r[1])
    return [(k, t, t / total) for k, t in rows[:8]]


def first_call(device: str) -> float:
    """Milliseconds of the first GD step at the ``ci`` sizes (N=60, K=2) in this process."""
    dev = torch.device(device)
    cfg, X, y, W = make_problem("ci", 60, 2, dev)
    t = time.perf_counter()
    mvlib_step(cfg, X, y, W)()
    sync(dev)
    return (time.perf_counter() - t) * 1e3


def run_first_call(device: str) -> float:
    """first_call in a fresh process (what a short CI run pays once)."""
    out = subprocess.run(
        [sys.executable, __file__, "--firstcall", device],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["ms"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--firstcall", required=True, choices=["cpu", "cuda"])
    args = ap.parse_args(argv)
    print(json.dumps({"ms": first_call(args.firstcall)}))


if __name__ == "__main__":
    main()
