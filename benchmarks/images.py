"""Why :class:`mvlib.images.Models` runs K networks one after another on a CPU, and vmap on a GPU.

    python benchmarks/images.py [--preset book] [--K 30] [--steps 20]

Times ``mvlib.images.fit`` (SGD steps of K stacked networks on cross-entropy) at an image
preset's data, network and batch, with the forward pass as ``Models.forward`` runs it on this
device and with the other path, median of the per-step times after one warm-up step, and checks
that both paths give the same weights. Prints a Markdown table (benchmarks/IMAGES.md holds one).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch.func import functional_call, vmap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="book")
    ap.add_argument("--K", type=int, default=30, help="networks side by side (stage 1: 3K)")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    from mvlib import images, losses, threads

    print(threads.configure(), flush=True)
    cfg = images.get_preset(args.preset)
    data = images.load(cfg, 0)
    start = images.init(cfg, data, 0, images.STREAM_MEMBERS, args.K)
    ce = losses.cross_entropy(data.y_train)
    loop = images.Models.forward

    def vmapped(self, X):
        call = lambda p, x: functional_call(self.net, p, (x,))  # noqa: E731
        return vmap(call, in_dims=(0, None))(self.params, X)

    results, weights = {}, {}
    for name, forward in (("one after another", loop), ("vmap", vmapped)):
        images.Models.forward = forward
        times = []
        for steps in (1, args.steps + 1):
            t = time.perf_counter()
            weights[name] = images.fit(cfg, start, data, ce, steps, 0)
            times.append(time.perf_counter() - t)
        results[name] = (times[1] - times[0]) / args.steps
    images.Models.forward = loop
    a, b = (weights[n].params for n in results)
    gap = max(float((a[n] - b[n]).abs().max()) for n in a)
    machine = platform.processor() or platform.machine()
    print(
        f"\n{cfg.dataset}, preset {args.preset}: K = {args.K} CNNs of width {cfg.width}, "
        f"batch {cfg.batch_size}, {len(data.y_train)} training images; {machine}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, {data.X_train.device}\n"
    )
    print("| forward pass | ms per step | per network |\n|---|---|---|")
    for name, s in results.items():
        print(f"| {name} | {1000 * s:.0f} | {1000 * s / args.K:.1f} |")
    print(f"\nlargest weight difference between the two after {args.steps + 1} steps: {gap:.1e}")


if __name__ == "__main__":
    main()
