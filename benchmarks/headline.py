"""Time of the book preset's headline (every method, one seed), per method.

    python benchmarks/headline.py [--preset book]

Runs ``reproduce`` one method at a time in ``METHODS`` order with a fresh result cache, so each
method's time is its own unit's (the models it reads were cached by the methods before it), and
prints the thread line, each method's seconds and the total: what dominates the headline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="book")
    preset = ap.parse_args().preset
    os.environ["MVLIB_CACHE"] = tempfile.mkdtemp(prefix="mvlib-headline-")
    from mvlib import threads
    from mvlib.presets import get_preset
    from mvlib.units import METHODS, reproduce

    print(threads.configure(), flush=True)
    cfg, start = get_preset(preset), time.perf_counter()
    for m in METHODS:
        t = time.perf_counter()
        reproduce(cfg, 0, methods=(m,))
        print(f"{m:24s} {time.perf_counter() - t:6.1f} s", flush=True)
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
