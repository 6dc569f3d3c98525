#!/usr/bin/env bash
# On a GPU: the GD-step benchmarks there (OUT/benchmarks.md, as benchmarks/RESULTS-cuda.md), then
# the paper preset's headline as a sweep over SEEDS data seeds, each cell written as it finishes
# (rerun to resume; OUT/gpu_paper.csv, as the shipped mvlib/sweeps/gpu_paper.csv), and its claims
# with their intervals, read back from the result cache; then the k-scaling and bounded
# self-distillation sweeps, the NTK at two widths, and chapter 9's real-data table at the
# paper preset.
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
# Next, as far as the time lent allows (each sweep resumes where it stopped):
# Theorem 1 at the paper's example scaling (Section 3): N = k^1.2 / mu, P = k^2, sigma0 = 1/sqrt(k)
# (the CPU's scripts/kscaling.sh keeps P = 16), single models and K = 3 ensembles, 3 seeds.
for k in 10 20 30; do
    read -r N sigma0 < <(python3 -c "print(round($k ** 1.2 / 0.1), round($k ** -0.5, 4))")
    python3 -m mvlib sweep --preset ci --seeds 3 --methods single,ensemble --backend serial \
        --no-progress --set K=3 --set k="$k" --set N="$N" --set P=$((k * k)) \
        --set sigma0="$sigma0" --provenance "OUT=DIR bash scripts/gpu.sh" \
        --out "$out/gpu_kscaling_paper_k$k.csv"
done
# Theorem 4 at k = 30 where phase two stays bounded: eq. 4.3 as written or capped, on the
# presets' data and on data meeting Assumption 4.1 (z in [1, 1.02] at eta = 12,
# mvlib.presets.ASSUMPTION_41; eta moves with the data, so two sweeps, as scripts/regimes.sh).
SD=single,self_distill,self_distill_control,self_distill_onehot,self_distill_permuted,self_distill_continue
for a41 in "view_high=2.0" "view_high=1.02 eta=12"; do
    sets=() && for s in $a41; do sets+=(--set "$s"); done
    python3 -m mvlib sweep --preset "$preset" --seeds "$seeds" --backend serial --no-progress \
        --methods "$SD" --grid sd_kd=eq43,eq43_capped "${sets[@]}" \
        --provenance "OUT=DIR SEEDS=$seeds bash scripts/gpu.sh" \
        --out "$out/gpu_paper_sd_bounded_${a41%% *}.csv"
done
# Figure 6's kernels at k = 30 where the linearised model learns: the paper preset's m = 4 beside
# m = 30 neurons a class (chapter 7 reads its CPU twin, mvlib/sweeps/ntk_width.csv, at k = 10).
NTK=single,ensemble,distill,ntk_single,ntk_ensemble,ntk_train_average,ntk_distill,ntk_self_distill
python3 -m mvlib sweep --preset "$preset" --seeds "$seeds" --backend serial --no-progress \
    --methods "$NTK" --grid m=4,30 --provenance "OUT=DIR SEEDS=$seeds bash scripts/gpu.sh" \
    --out "$out/gpu_ntk_width.csv"
# The real-data table and Figure 9 at the paper preset: all 60,000 Fashion-MNIST training images,
# a small ResNet, crops and flips (chapter 9; MVLIB_DATA or Debian's dataset-fashion-mnist).
python3 -m mvlib images --preset paper --set seeds="$seeds" --out "$out/images_paper.csv"
