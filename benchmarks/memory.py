"""Peak memory of one GD step: peak-RSS increase in a fresh process on CPU,
``torch.cuda.max_memory_allocated`` on CUDA.

    python benchmarks/memory.py --probe '{"preset": "book", "N": 600, "K": 10, "chunk": 0,
                                          "no_blocking": false, "device": "cpu"}'
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from common import make_problem, mvlib_step, sync

from mvlib import model as mvmodel


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
    """Peak memory of one GD step (run in a fresh process on CPU so that earlier work leaves no
    trace)."""
    device = torch.device(spec["device"])
    cfg, X, y, W = make_problem(spec["preset"], spec["N"], spec["K"], device)
    if spec.get("no_blocking"):
        mvmodel._CPU_BLOCK_ELEMS = 1 << 62  # one block per chunk, as on CUDA
    step = mvlib_step(cfg, X, y, W, spec["chunk"])
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        sync(device)
        return {
            "bytes": torch.cuda.max_memory_allocated(device) - base,
            "method": "cuda max_memory_allocated",
        }
    try:  # hand freed heap memory back to the OS so that the step's peak is measured, not masked
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
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--threads",
            str(torch.get_num_threads()),
            "--probe",
            json.dumps(spec),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probe", required=True, help="JSON spec of the step to measure")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(memprobe(json.loads(args.probe))))


if __name__ == "__main__":
    main()
