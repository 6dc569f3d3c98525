#!/usr/bin/env bash
# Theorem 1's k-scaling for the Regimes chapter (book/08_regimes.ipynb): a single model's
# single-view accuracy as the number of classes k grows, at the ci preset's training regime with
# K = 3 members, d = 200 and 60 training samples per class (N = 60 k). One CSV per k, because N
# and k vary together and a sweep's grid is a product. Resumable: rerun to finish.
# Theorem 1 trains for poly(k)/eta steps: the largest k is run again with twice the steps.
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
        --set K=3 --set d=200 --set k="$1" --set N=$((60 * $1)) "${@:2}"
}
for k in $ks; do
    sweep "$k" --out "$out/kscaling_k$k.csv"
done
k=${ks##* }
sweep "$k" --set steps=1200 --out "$out/kscaling_k${k}_steps1200.csv"
