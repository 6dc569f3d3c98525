"""Benchmark of mvlib's batched gradient-descent step.

    python benchmarks/run.py [--device cpu|cuda] [--quick] [--out PATH]

Measures, in one run on one machine:

1. the machine's fp32 matrix-multiply throughput (a large ``torch.matmul``: the practical ceiling);
2. the time of one GD step (``mvlib.train.gradient_descent``'s work: ``Network.loss_and_grad``, the
   finiteness check of the loss and ``W -= eta * grad``) for K = 1, 10, 30 members at the ``book``
   preset and at the ``paper`` preset's data/learner sizes (fewer samples on CPU, see ``--paper-n``),
   and the FLOP/s it reaches, counting the two matrix products, 2*N*P*d*K*k*m FLOP each;
3. the same training written by hand: a Python loop over K ``torch.nn.Module`` models, autograd and
   ``torch.optim.SGD`` (same math, checked against mvlib), and mvlib's speedup over it;
4. the peak memory of one step (CPU: peak-RSS increase in a fresh subprocess; CUDA:
   ``torch.cuda.max_memory_allocated``) with and without chunking, beside the analytic size of
   one (N*P, K*k*m) float32 activation buffer;
5. a torch.profiler breakdown of the book step.

Timings are medians over repeats after warm-up (CUDA is synchronised around every timed call).
The results are written as markdown to ``--out`` (default ``benchmarks/RESULTS.md``) and printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from mvlib import losses
from mvlib import model as mvmodel
from mvlib.data import features, sample
from mvlib.model import Network, init_weights, smoothed_relu
from mvlib.presets import get_preset

HERE = Path(__file__).resolve().parent
TARGET_FRACTION = 0.5     # GD step at book >= 50% of the matmul FLOP/s
TARGET_SPEEDUP = 5.0      # K=10 batched >= 5x the per-model autograd loop


# ----------------------------------------------------------------------------- helpers

def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn, device, warmup: int, repeats: int) -> list[float]:
    """Seconds per call, each call timed alone (synchronised on CUDA)."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def med(ts):
    return statistics.median(ts)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    info = {"CPU": cpu_model(), "logical CPUs": os.cpu_count(), "torch threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info["device"] = f"cuda: {p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"
        info["TF32 matmul"] = torch.backends.cuda.matmul.allow_tf32
    try:
        info["load average at start (1 min)"] = f"{os.getloadavg()[0]:.2f}"
    except OSError:
        pass
    return info


def make_problem(preset: str, N: int, K: int, device, seed: int = 0):
    """The training set of ``preset`` with N samples and K initialisations (no test sets)."""
    cfg = get_preset(preset, N=N, K=K)
    g = torch.Generator().manual_seed(seed)
    data = sample(cfg.data, N, features(cfg.data, g), g)
    W = init_weights(cfg.learner, K, cfg.data.k, cfg.data.d, torch.Generator().manual_seed(seed + 1), device)
    return cfg, data.X.to(device), data.y.to(device), W


def step_flops(cfg, N: int, K: int) -> float:
    """The two matrix products of a step: pre-activations and gradient, 2*N*P*d*K*k*m each."""
    D, L = cfg.data, cfg.learner
    return 2 * 2.0 * N * D.P * D.d * K * D.k * L.m


def act_bytes(cfg, N: int, K: int) -> int:
    """One float32 (N*P, K*k*m) buffer: pre-activations, ReLU~ or ReLU~'."""
    return 4 * N * cfg.data.P * K * cfg.data.k * cfg.learner.m


def mvlib_step(cfg, X, y, W, chunk: int = 0):
    """One step of mvlib.train.gradient_descent's loop body, W updated in place."""
    net = Network(cfg.learner, chunk)
    loss = losses.cross_entropy(y)
    eta = torch.full((W.shape[0], 1, 1, 1), cfg.eta, dtype=W.dtype, device=W.device)

    def step():
        value, grad = net.loss_and_grad(W, X, loss)
        if not torch.isfinite(value).all():
            raise FloatingPointError("diverged")
        W.sub_(eta * grad)
    return step


# --------------------------------------------------------------- the hand-written baseline

class HandLearner(torch.nn.Module):
    """One model of Def. 3.4 as a user would write it: weights (k, m, d), autograd for the rest."""

    def __init__(self, W0: torch.Tensor, q: int, varrho: float):
        super().__init__()
        self.w = torch.nn.Parameter(W0.clone())
        self.q, self.varrho = q, varrho

    def forward(self, X):                                   # X: (N, P, d) -> (N, k)
        k, m, d = self.w.shape
        z = X @ self.w.reshape(k * m, d).T                  # (N, P, k*m)
        zc = z.clamp(0.0, self.varrho)
        a = zc ** self.q / (self.q * self.varrho ** (self.q - 1)) + (z - self.varrho).clamp(min=0.0)
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


# ----------------------------------------------------------------------------- memory

def _vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class PeakRSS:
    """Peak resident memory during a block, in bytes above the RSS at entry. Linux: resets the
    high-water mark (/proc/self/clear_refs, '5') and reads VmHWM; elsewhere samples RSS."""

    def __enter__(self):
        self.base = self._rss()
        self.hwm = False
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.hwm = _vm_kib("VmHWM") <= _vm_kib("VmRSS") + 1024
        except OSError:
            pass
        if not self.hwm:
            self.peak, self.stop = self.base, False
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _rss(self) -> int:
        try:
            return _vm_kib("VmRSS") * 1024
        except (OSError, KeyError):
            import psutil
            return psutil.Process().memory_info().rss

    def _sample(self):
        while not self.stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.0005)

    def __exit__(self, *exc):
        if self.hwm:
            self.peak = _vm_kib("VmHWM") * 1024
        else:
            self.stop = True
            self.thread.join()
        self.delta = max(self.peak - self.base, 0)
        self.method = "VmHWM after clear_refs" if self.hwm else "sampled RSS"


def memprobe(spec: dict) -> dict:
    """Peak memory of one GD step (run in a fresh process on CPU so earlier work leaves no trace)."""
    device = torch.device(spec["device"])
    cfg, X, y, W = make_problem(spec["preset"], spec["N"], spec["K"], device)
    if spec.get("no_blocking"):
        mvmodel._CPU_BLOCK_ELEMS = 1 << 62        # one block per chunk, as on CUDA
    step = mvlib_step(cfg, X, y, W, spec["chunk"])
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        sync(device)
        return {"bytes": torch.cuda.max_memory_allocated(device) - base, "method": "cuda max_memory_allocated"}
    try:    # hand freed heap memory back to the OS so that the step's peak is measured, not masked
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with PeakRSS() as p:
        step()
    return {"bytes": p.delta, "method": p.method}


def measure_memory(spec: dict) -> dict:
    if spec["device"] == "cuda":
        if spec.get("no_blocking"):
            spec = {**spec, "no_blocking": False}  # CUDA never blocks beyond chunk
        return memprobe(spec)
    out = subprocess.run([sys.executable, __file__, "--threads", str(torch.get_num_threads()),
                          "--_memprobe", json.dumps(spec)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
        t = (getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0)) \
            if device.type == "cuda" else e.self_cpu_time_total
        rows.append((e.key, t / 1e3 / steps))
    total = sum(t for _, t in rows) or 1.0
    rows.sort(key=lambda r: -r[1])
    return [(k, t, t / total) for k, t in rows[:8]]


# ----------------------------------------------------------------------------- main

def fmt_bytes(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB" if b >= 2**20 else f"{b / 2**10:,.0f} KiB"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, few repeats")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--paper-n", type=int, default=None,
                    help="training samples at paper size (default: the preset's 3000 on CUDA, 500 on CPU)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's own)")
    ap.add_argument("--_memprobe", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_firstcall", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args._memprobe:
        print(json.dumps(memprobe(json.loads(args._memprobe))))
        return
    if args._firstcall:
        device = torch.device(args._firstcall)
        cfg, X, y, W = make_problem("ci", 60, 2, device)
        t = time.perf_counter()
        mvlib_step(cfg, X, y, W)()
        sync(device)
        print(json.dumps({"ms": (time.perf_counter() - t) * 1e3}))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: CUDA is not available")
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    quick = args.quick
    warmup, repeats = (1, 3) if quick else (2, 7 if not on_gpu else 20)
    book = get_preset("book")
    paper = get_preset("paper")
    N_book = 200 if quick else book.N
    N_paper = args.paper_n or (100 if quick else paper.N if on_gpu else 500)
    Ks = [1, 10] if quick else [1, 10, 30]
    info = machine(device)
    t_start = time.perf_counter()
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    # 1. matmul ceiling
    n_mm = 1024 if quick else (8192 if on_gpu else 2048)
    a = torch.randn(n_mm, n_mm, device=device)
    b = torch.randn(n_mm, n_mm, device=device)
    ts = timeit(lambda: a @ b, device, warmup, max(repeats, 5))
    peak = 2 * n_mm ** 3 / med(ts)
    peak_best = 2 * n_mm ** 3 / min(ts)
    del a, b
    log(f"matmul {n_mm}^3: {peak / 1e9:.1f} GFLOP/s (median), {peak_best / 1e9:.1f} (best)")

    # 2. mvlib GD step, 3. hand-written loop
    rows = []
    checks = {}
    for name, cfg0, N in (("book", book, N_book), ("paper", paper, N_paper)):
        for K in Ks:
            cfg, X, y, W = make_problem(name, N, K, device)
            ts = timeit(mvlib_step(cfg, X, y, W), device, warmup, repeats)
            row = {"preset": name, "N": N, "K": K, "ms": med(ts) * 1e3, "ms_min": min(ts) * 1e3,
                   "flop": step_flops(cfg, N, K)}
            row["gflops"] = row["flop"] / med(ts) / 1e9
            row["frac"] = row["flop"] / med(ts) / peak
            if K in (1, 10):
                checks[(name, K)] = check_baseline(cfg, X, y, W)
                models, opts = hand_models(cfg, W)
                tb = timeit(hand_step(models, opts, X, y), device, warmup, repeats)
                row["hand_ms"] = med(tb) * 1e3
                row["speedup"] = med(tb) / med(ts)
            rows.append(row)
            log(f"{name} N={N} K={K}: {row['ms']:.1f} ms, {row['gflops']:.1f} GFLOP/s ({row['frac']:.0%})"
                + (f", hand loop {row['hand_ms']:.1f} ms ({row['speedup']:.1f}x)" if "hand_ms" in row else ""))

    # 4. memory
    mem = []
    N_mem = 100 if quick else paper.N
    mem_specs = [("book", book.N if not quick else N_book, 10, 0, False, "chunk=0 (default)"),
                 ("paper", N_mem, 10, 0, True, "chunk=0, no blocking: all samples at once"),
                 ("paper", N_mem, 10, 0, False, "chunk=0 (default)"),
                 ("paper", N_mem, 10, 100, False, "chunk=100")]
    if on_gpu:   # CUDA processes a whole chunk at once: no-blocking and default coincide
        mem_specs = [s for s in mem_specs if not s[4]]
    for name, N, K, chunk, noblock, label in mem_specs:
        spec = {"preset": name, "N": N, "K": K, "chunk": chunk, "no_blocking": noblock, "device": args.device}
        r = measure_memory(spec)
        cfg = get_preset(name)
        mem.append({"preset": name, "N": N, "K": K, "label": label, "bytes": r["bytes"], "method": r["method"],
                    "analytic": act_bytes(cfg, N, K)})
        log(f"memory {name} N={N} K={K} {label}: {fmt_bytes(r['bytes'])}")

    # 5. profile of the book step at K=10
    cfg, X, y, W = make_problem("book", N_book, 10, device)
    prof = profile_step(mvlib_step(cfg, X, y, W), device, 3 if quick else 5)

    # first-call cost (what a short CI run pays once), in a fresh process
    out = subprocess.run([sys.executable, __file__, "--_firstcall", args.device],
                         capture_output=True, text=True, check=True)
    first_call_ms = json.loads(out.stdout.strip().splitlines()[-1])["ms"]

    try:
        info["load average at end (1 min)"] = f"{os.getloadavg()[0]:.2f}"
    except OSError:
        pass
    md = report(info, args, peak, peak_best, n_mm, rows, checks, mem, prof, first_call_ms,
                warmup, repeats, N_book, N_paper, time.perf_counter() - t_start)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(md)
    log(f"written to {out}")


def report(info, args, peak, peak_best, n_mm, rows, checks, mem, prof, first_call_ms,
           warmup, repeats, N_book, N_paper, elapsed) -> str:
    book, paper = get_preset("book"), get_preset("paper")
    L = []
    L.append("# mvlib GD-step benchmark\n")
    L.append(f"Generated by `python benchmarks/run.py{' --quick' if args.quick else ''} --device {args.device}"
             f"{' --threads ' + str(args.threads) if args.threads else ''}`"
             f" in {elapsed:.0f} s. Medians of {repeats} timed calls after {warmup} warm-up call(s).\n")
    L.append("## Machine\n")
    L.append("| | |\n|---|---|")
    for k, v in info.items():
        L.append(f"| {k} | {v} |")
    L.append("")
    L.append("## Matrix-multiply ceiling\n")
    L.append(f"`torch.matmul` of two {n_mm}x{n_mm} float32 matrices: **{peak / 1e9:,.1f} GFLOP/s** (median; "
             f"best call {peak_best / 1e9:,.1f}). FLOP/s fractions below are against the median.\n")
    L.append("## GD step\n")
    d, l = book.data, book.learner
    dp, lp = paper.data, paper.learner
    L.append(f"- `book`: N={N_book}, P={d.P}, d={d.d}, k={d.k}, m={l.m}, q={l.q} (preset N={book.N}).")
    L.append(f"- `paper`: N={N_paper}, P={dp.P}, d={dp.d}, k={dp.k}, m={lp.m}, q={lp.q} (preset N={paper.N}"
             + ("" if N_paper == paper.N else "; fewer samples to keep the run short: time and FLOP are linear in N")
             + ").")
    L.append("- One step = `Network.loss_and_grad` (cross-entropy) + finiteness check + `W -= eta * grad`, "
             "i.e. the body of `mvlib.train.gradient_descent`.")
    L.append("- FLOP per step = 2 x (2*N*P*d*K*k*m): the pre-activation product (N*P, d) x (d, K*k*m) and the "
             "gradient product (K*k*m, N*P) x (N*P, d); the element-wise smoothed-ReLU work is not counted.")
    L.append("- Hand loop = K separate `torch.nn.Module`s (same ReLU~ written with clamp/pow), autograd, "
             "`F.cross_entropy`, `torch.optim.SGD`, one model after another; measured at K=1 and K=10. "
             "After one step it agrees with mvlib to "
             + ", ".join(f"{v:.1e} ({n} K={K})" for (n, K), v in checks.items())
             + " (max |dW difference| / max |dW|).\n")
    L.append("| preset | N | K | FLOP/step | mvlib ms/step (best) | GFLOP/s | % of matmul | hand loop ms/step | mvlib speedup |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        L.append(f"| {r['preset']} | {r['N']} | {r['K']} | {r['flop'] / 1e9:,.2f} G | {r['ms']:,.1f} ({r['ms_min']:,.1f}) | "
                 f"{r['gflops']:,.1f} | {r['frac']:.0%} | "
                 + (f"{r['hand_ms']:,.1f} | {r['speedup']:.1f}x |" if "hand_ms" in r else "– | – |"))
    L.append("")
    L.append("## Peak memory of one GD step\n")
    L.append("Peak increase over the memory held before the step (inputs and weights excluded); "
             f"method: {mem[0]['method'] if mem else '-'}"
             + ("" if args.device == "cuda" else ", each measurement in a fresh process")
             + ". Analytic: one float32 (N*P, K*k*m) buffer (pre-activations, ReLU~ or ReLU~'), "
             "which a step without chunking holds about three of.\n")
    L.append("| preset | N | K | chunking | peak memory | one (N*P, K*k*m) buffer |")
    L.append("|---|---|---|---|---|---|")
    for r in mem:
        L.append(f"| {r['preset']} | {r['N']} | {r['K']} | {r['label']} | {fmt_bytes(r['bytes'])} | {fmt_bytes(r['analytic'])} |")
    L.append("")
    L.append("How memory is bounded: `Network(cfg, chunk)` (`ExperimentConfig.chunk`) processes `chunk` samples at a "
             "time, so at most `chunk*P*K*k*m` activations exist at once (the gradient accumulates over chunks). "
             "On CPU, `Network` additionally splits every chunk into blocks of about "
             f"{mvmodel._CPU_BLOCK_ELEMS:,} activations (`mvlib.model._CPU_BLOCK_ELEMS`, {fmt_bytes(4 * mvmodel._CPU_BLOCK_ELEMS)} per buffer) "
             "that stay in cache, which is faster and bounds memory even with chunk=0; the 'no blocking' row "
             "disables that to show what all samples at once cost. On CUDA a block is a whole chunk.\n")
    L.append("## Profile (book, K=10)\n")
    L.append(f"torch.profiler, self time per step on {args.device}:\n")
    L.append("| op | ms/step | share |\n|---|---|---|")
    for k, t, f in prof:
        L.append(f"| `{k}` | {t:.2f} | {f:.0%} |")
    L.append("")
    L.append(f"First GD step of a fresh process at the `ci` preset sizes (N=60, K=2): {first_call_ms:.1f} ms "
             "(imports excluded; no compilation anywhere: mvlib uses eager PyTorch only).\n")
    L.append("## Targets\n")
    bk = next(r for r in rows if r["preset"] == "book" and r["K"] == 10)
    ok1 = bk["frac"] >= TARGET_FRACTION
    ok2 = bk["speedup"] >= TARGET_SPEEDUP
    L.append(f"- GD step at `book` (K=10) >= {TARGET_FRACTION:.0%} of the matmul FLOP/s: "
             f"**{bk['frac']:.0%}** ({'met' if ok1 else 'MISSED by ' + format(TARGET_FRACTION - bk['frac'], '.0%') + ' points'}).")
    L.append(f"- K=10 batched >= {TARGET_SPEEDUP:.0f}x faster than the per-model autograd loop (book): "
             f"**{bk['speedup']:.1f}x** ({'met' if ok2 else 'MISSED: ' + format(bk['speedup'] / TARGET_SPEEDUP, '.0%') + ' of the target'}).")
    pk = next((r for r in rows if r["preset"] == "paper" and r["K"] == 10), None)
    if pk:
        L.append(f"- For reference at `paper` size (K=10): {pk['frac']:.0%} of matmul FLOP/s, "
                 f"{pk['speedup']:.1f}x over the hand loop.")
    L.append("")
    L.append("## Analysis (generated from this run)\n")
    mm_share = sum(f for k, _, f in prof if k in ("aten::mm", "aten::addmm_", "aten::addmm", "aten::bmm")
                   or "gemm" in k.lower() or "sgemm" in k.lower())
    L.append(f"- The two matrix products take {mm_share:.0%} of the profiled book step; the rest is the "
             "element-wise smoothed-ReLU work (about 6 passes over a cache-resident block), the sums over "
             "patches and neurons, the loss and Python/dispatch overhead per block.")
    if mm_share > 0:
        L.append(f"- So the products themselves run at about {bk['frac'] / mm_share:.0%} of the large-matmul "
                 "ceiling: their shapes ((rows, d) x (d, K*k*m) with d and K*k*m of a few hundred) are "
                 "thinner than the square ceiling matrices.")
    try:
        load = float(info.get("load average at start (1 min)", "nan"))
    except ValueError:
        load = float("nan")
    cpus = info.get("logical CPUs") or 1
    if load == load and load > 0.75 * cpus:
        L.append(f"- **The machine was shared during this run** (1-minute load average {load:.1f} on {cpus} "
                 "logical CPUs): every timing is inflated and noisy, and multi-threaded code suffers most "
                 "because each OpenMP parallel region waits for its slowest, possibly descheduled, thread. "
                 "Code made of many short operations (mvlib's per-block element-wise passes, and even more "
                 "the hand loop's small per-model operations) is hit far harder than one large matmul, so "
                 "the fraction of the ceiling and the speedup read low. Re-run on an idle machine, or with "
                 "`--threads 1` to remove the thread-synchronisation penalty.")
    if bk["speedup"] < TARGET_SPEEDUP:
        L.append(f"- Speedup over the hand loop at book K=10 is {bk['speedup']:.1f}x. The hand loop runs the "
                 "same FLOP; its per-model products are K times thinner ((N*P, d) x (d, k*m) with k*m = "
                 f"{book.data.k * book.learner.m}) and autograd adds stored activations and extra passes, "
                 "but each model's (N*P, k*m) tensors are small enough to stay in cache, so on CPU it loses "
                 "mostly per-op overhead, not bandwidth. The batched step can only win by the hand loop's "
                 "inefficiency: with mvlib at a fraction f of the ceiling, 5x needs the loop below f/5.")
    L.append("")
    L.append(DEV_NOTES)
    return "\n".join(L) + "\n"


DEV_NOTES = """## Development notes (measured while optimising, same machine, not regenerated by this script)

Changes to `mvlib/model.py` internals, each kept because it measured faster (single thread,
interleaved A/B runs, min / median ms of `Network.loss_and_grad`):

| size | before (HEAD) | after |
|---|---|---|
| book, K=10 | 140 / 163 | 85 / 105 |
| book, K=30 | 899 / 1036 | 257 / 287 |
| paper sizes, N=200, K=10 | 564 / 662 | 274 / 291 |

- CPU blocking (`_CPU_BLOCK_ELEMS`): blocks of ~0.5 M activations keep the element-wise passes in
  cache and reuse freed memory; the old code allocated and page-faulted ~10 fresh (N*P, K*k*m)
  buffers per step. Block sizes 0.25 M to 1 M were within noise of each other; 64 K and 4 M slower.
- Smoothed ReLU and its derivative in ~6 passes and 3 buffers, in place on the pre-activations
  (was ~11 out-of-place passes, separate divisions by varrho and q).
- Sum over patches then neurons (`A.view(n, P, K*k*m).sum(1)` then over m): about 10x faster than
  one `sum((1, 4))` whose innermost reduced axis has length m = 3.
- dL/dF repeated over neurons to (n, 1, K*k*m) before the in-place multiply (was a 5-d broadcast
  with innermost length 3, ~8x slower); the gradient product accumulates with `addmm_` and alpha = 1/N.
- Peak memory of a paper-size step (N=3000, K=10, chunk=0): 1,981 MiB before, 26 MiB after
  (992 MiB with blocking disabled, i.e. what CUDA uses without `chunk`); with chunk=100 the old code
  needed 218 MiB.
- Tried and not kept: a reused scratch workspace with `out=` (no measurable gain); `torch.compile` of
  the element-wise part: 0.26 ms instead of 0.7 ms per block (~3 ms of a ~100 ms book step) but
  33 s for the first call on this CPU, which would dominate short CI runs.
- With torch's default 2 threads on this shared machine (load average 6-9 from other jobs), timings
  were 2-5x worse and erratic for both mvlib and the hand loop (e.g. paper N=500 K=10: 4.5 s vs 1.0 s
  single-threaded), which is why the before/after numbers in this section are single-threaded. Run
  the benchmark on an idle machine: the load average is recorded at the top.
"""


if __name__ == "__main__":
    main()
