#!/usr/bin/env bash
# On a GPU: the GD-step benchmarks there (OUT/benchmarks.md, as benchmarks/RESULTS-cuda.md), then
# the paper preset's headline as a sweep over SEEDS data seeds, each cell written as it finishes
# (rerun to resume; OUT/gpu_paper.csv, as the shipped mvlib/sweeps/gpu_paper.csv), and its claims
# with their intervals, read back from the result cache.
#   OUT=DIR SEEDS=3 bash scripts/gpu.sh      (PRESET=ci SEEDS=1: a smoke test on any machine)
# mvlib need not be installed: the repository root is put on the path.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out=${OUT:-gpu-results} seeds=${SEEDS:-3} preset=${PRESET:-paper}
mkdir -p "$out"
python3 benchmarks/run.py --out "$out/benchmarks.md" >"$out/benchmarks.log" 2>&1
grep -E "^\| (device|$preset) " "$out/benchmarks.md"
python3 -m mvlib sweep --preset "$preset" --seeds "$seeds" --backend serial --no-progress \
    --provenance "OUT=DIR SEEDS=$seeds bash scripts/gpu.sh" --out "$out/gpu_$preset.csv"
python3 -m mvlib reproduce --preset "$preset" --seeds "$seeds" --no-progress
