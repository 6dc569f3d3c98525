#!/usr/bin/env bash
# Theorem 1's k-scaling for the Regimes chapter (book/08_regimes.ipynb): a single model's
# single-view accuracy as the number of classes k grows, at the ci preset's training regime with
# K = 3 members, d = 200 and 60 training samples per class (N = 60 k). One CSV per k, because N
# and k vary together and a sweep's grid is a product. Resumable: rerun to finish.
# Single-threaded: WORKERS=1 by default (about 2 minutes a cell at k = 30 on a busy 2-core CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
out=book/data
for k in ${KS:-10 20 30}; do
    python -m mvlib sweep --preset ci --seeds 3 --methods single,ensemble \
        --backend joblib --workers "${WORKERS:-1}" \
        --set K=3 --set d=200 --set k="$k" --set N=$((60 * k)) \
        --out "$out/kscaling_k$k.csv"
done
