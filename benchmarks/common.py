"""What every benchmark shares: timing, the machine, the problem at a preset's sizes, and one
GD step of ``mvlib.train.gradient_descent``'s loop body."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import torch

from mvlib import losses
from mvlib.data import features, sample
from mvlib.model import Network, init_weights
from mvlib.presets import get_preset


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
    info = {
        "CPU": cpu_model(),
        "logical CPUs": os.cpu_count(),
        "torch threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info["device"] = (
            f"cuda: {p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"
        )
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
    W = init_weights(
        cfg.learner, K, cfg.data.k, cfg.data.d, torch.Generator().manual_seed(seed + 1), device
    )
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


def fmt_bytes(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB" if b >= 2**20 else f"{b / 2**10:,.0f} KiB"
