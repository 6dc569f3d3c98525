"""Benchmark of mvlib's batched gradient-descent step (entry point).

    python benchmarks/run.py [--device cpu|cuda] [--quick] [--out PATH]

Measures, in one run on one machine:

1. the machine's fp32 matrix-multiply throughput (a large ``torch.matmul``: the practical ceiling);
2. the time of one GD step (``mvlib.train.gradient_descent``'s work: ``Network.loss_and_grad``, the
   finiteness check of the loss and ``W -= eta * grad``) for K = 1, 10, 30 members at the ``book``
   preset and at the ``paper`` preset's data/learner sizes (fewer samples on CPU, see
   ``--paper-n``), and the FLOP/s it reaches, counting the two matrix products,
   2*N*P*d*K*k*m FLOP each;
3. the same training written by hand: a Python loop over K ``torch.nn.Module`` models, autograd and
   ``torch.optim.SGD`` (same math, checked against mvlib), and mvlib's speedup over it;
4. the peak memory of one step (CPU: peak-RSS increase in a fresh subprocess; CUDA:
   ``torch.cuda.max_memory_allocated``) with and without chunking, beside the analytic size of
   one (N*P, K*k*m) float32 activation buffer;
5. a torch.profiler breakdown of the book step.

Timings are medians over repeats after warm-up (CUDA is synchronised around every timed call).
The results are written as markdown to ``--out`` (default ``benchmarks/RESULTS.md``, on CUDA
``benchmarks/RESULTS-cuda.md``) and printed.
The measurements live in ``step_speed.py`` (1-3, 5) and ``memory.py`` (4), the markdown in
``report.py``, what they share in ``common.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from common import act_bytes, fmt_bytes, machine, make_problem, mvlib_step
from memory import measure_memory
from report import report
from step_speed import matmul_ceiling, profile_step, run_first_call, step_rows

from mvlib.presets import get_preset

HERE = Path(__file__).resolve().parent


def memory_rows(book, paper, N_book: int, quick: bool, device: str, log) -> list[dict]:
    """Peak memory of one step at book size and at paper size with and without chunking."""
    N_mem = 100 if quick else paper.N
    specs = [
        ("book", book.N if not quick else N_book, 10, 0, False, "chunk=0 (default)"),
        ("paper", N_mem, 10, 0, True, "chunk=0, no blocking: all samples at once"),
        ("paper", N_mem, 10, 0, False, "chunk=0 (default)"),
        ("paper", N_mem, 10, 100, False, "chunk=100"),
    ]
    if device == "cuda":  # CUDA processes a whole chunk at once: no-blocking and default coincide
        specs = [s for s in specs if not s[4]]
    mem = []
    for name, N, K, chunk, noblock, label in specs:
        spec = {
            "preset": name,
            "N": N,
            "K": K,
            "chunk": chunk,
            "no_blocking": noblock,
            "device": device,
        }
        r = measure_memory(spec)
        mem.append(
            {
                "preset": name,
                "N": N,
                "K": K,
                "label": label,
                "bytes": r["bytes"],
                "method": r["method"],
                "analytic": act_bytes(get_preset(name), N, K),
            }
        )
        log(f"memory {name} N={N} K={K} {label}: {fmt_bytes(r['bytes'])}")
    return mem


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu"
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, few repeats")
    ap.add_argument(
        "--out", help="the markdown to write (default: RESULTS.md, or RESULTS-cuda.md on CUDA)"
    )
    ap.add_argument(
        "--paper-n",
        type=int,
        default=None,
        help="training samples at paper size (default: the preset's 3000 on CUDA, 500 on CPU)",
    )
    ap.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (default: torch's own)"
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: CUDA is not available")
    args.out = args.out or str(
        HERE / ("RESULTS-cuda.md" if args.device == "cuda" else "RESULTS.md")
    )
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    quick = args.quick
    warmup, repeats = (1, 3) if quick else (2, 7 if not on_gpu else 20)
    book, paper = get_preset("book"), get_preset("paper")
    N_book = 200 if quick else book.N
    N_paper = args.paper_n or (100 if quick else paper.N if on_gpu else 500)
    Ks = [1, 10] if quick else [1, 10, 30]
    info = machine(device)
    t_start = time.perf_counter()

    def log(*a):
        print(*a, file=sys.stderr, flush=True)

    # 1. matmul ceiling
    n_mm = 1024 if quick else (8192 if on_gpu else 2048)
    peak, peak_best = matmul_ceiling(n_mm, device, warmup, repeats)
    log(f"matmul {n_mm}^3: {peak / 1e9:.1f} GFLOP/s (median), {peak_best / 1e9:.1f} (best)")
    # 2. mvlib GD step, 3. hand-written loop
    rows, checks = step_rows(
        (("book", N_book), ("paper", N_paper)), Ks, device, warmup, repeats, peak, log
    )
    # 4. memory
    mem = memory_rows(book, paper, N_book, quick, args.device, log)
    # 5. profile of the book step at K=10, and the first call of a fresh process
    cfg, X, y, W = make_problem("book", N_book, 10, device)
    prof = profile_step(mvlib_step(cfg, X, y, W), device, 3 if quick else 5)
    first_call_ms = run_first_call(args.device)

    try:
        info["load average at end (1 min)"] = f"{os.getloadavg()[0]:.2f}"
    except OSError:
        pass
    md = report(
        info,
        args,
        peak,
        peak_best,
        n_mm,
        rows,
        checks,
        mem,
        prof,
        first_call_ms,
        warmup,
        repeats,
        N_book,
        N_paper,
        time.perf_counter() - t_start,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(md)
    log(f"written to {out}")


if __name__ == "__main__":
    main()
