#!/usr/bin/env bash
# Theorem 1's k-scaling for the Regimes chapter (book/08_regimes.ipynb): a single model's
# single-view accuracy as the number of classes k grows, with K = 3 members, at the ci preset's
# training regime. Two scalings, one CSV per k (N and k vary together; a sweep's grid is a
# product). Resumable: rerun to finish.
# 1. Fixed sizes: d = 200 and 60 training samples per class (N = 60 k); the largest k is run
#    again with twice the steps (Theorem 1 trains for poly(k)/eta steps).
# 2. The paper's example scaling (Section 3): N = k^1.2 / mu and sigma0 = 1 / sqrt(k). P = k^2
#    is left to scripts/gpu.sh (at k = 30, 900 patches); here P stays 16. The paper's
#    rho = k^-0.01 and gamma = k^-1.5 are asymptotic choices: at k <= 30, rho = k^-0.01 > 0.96
#    would make a single-view sample's weak view as strong as its other one, so rho stays 0.05.
# Single-threaded: WORKERS=1 by default (about 1 CPU minute a cell at k = 30, 600 steps).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-mvlib/sweeps}  # OUT=DIR writes elsewhere, e.g. to compare with the shipped CSVs
ks=${KS:-10 20 30}
# Each finished CSV gets its provenance record beside it.
sweep() {
    python -m mvlib sweep --preset ci --seeds 3 --methods single,ensemble \
        --backend joblib --workers "${WORKERS:-1}" \
        --provenance "WORKERS=${WORKERS:-1} bash scripts/kscaling.sh" \
        --set K=3 --set d=200 --set k="$1" "${@:2}"
}
for k in $ks; do
    sweep "$k" --set N=$((60 * k)) --out "$out/kscaling_k$k.csv"
done
k=${ks##* }
sweep "$k" --set N=$((60 * k)) --set steps=1200 --out "$out/kscaling_k${k}_steps1200.csv"
for k in $ks; do
    read -r N sigma0 < <(python -c "print(round($k ** 1.2 / 0.1), round($k ** -0.5, 4))")
    sweep "$k" --set N="$N" --set sigma0="$sigma0" --out "$out/kscaling_paper_k$k.csv"
done
