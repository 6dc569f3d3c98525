#!/usr/bin/env bash
# The sweeps behind the Regimes chapter (book/08_regimes.ipynb): 5 data seeds per grid point,
# two students per teacher, at the ci preset's training regime: Def. 3.1's data (off-class
# coefficients in [0.2, 0.4]) and controls matched in the probability each loss reads.
# Resumable: rerun to finish. Trained ensembles and single models are cached and shared between
# sweeps, so the order matters for the time: every later sweep reuses the first one's.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-mvlib/sweeps}  # OUT=DIR writes elsewhere, e.g. to compare with the shipped CSVs
KD=single,ensemble,distill,distill_control,distill_onehot,distill_permuted
SD=single,self_distill,self_distill_control,self_distill_onehot,self_distill_permuted,self_distill_continue
# Each finished CSV gets its provenance record beside it.
sweep() {
    python -m mvlib sweep --preset ci --seeds 5 --backend joblib --workers "${WORKERS:-2}" \
        --provenance "WORKERS=${WORKERS:-2} bash scripts/regimes.sh" "$@"
}
# 1. Every claim across the data, k x mu (the centre, k = 10 and mu = 0.1, is the ci preset),
#    at Def. 3.1's off-class range; then [0.2, 0.8] as a sensitivity panel.
#    The headline map also trains the sum of the K members jointly (Message 4).
sweep --grid k=10,12,14 --grid mu=0.1,0.2 --methods "$KD,${SD#single,},train_sum" \
    --out "$out/regimes_data.csv"
#    The panel is knowledge distillation's: its controls are the ones the range moved.
sweep --set off_high=0.8 --grid k=10,12 --grid mu=0.1,0.2 --methods "$KD" \
    --out "$out/regimes_data_off08.csv"
# 2. Knowledge distillation from the ensemble: Theorem 3's eq. 4.3 beside Hinton's form, over k
#    (the Hinton cells are the first sweep's), and Hinton's temperature over mu.
sweep --grid kd=hinton,eq43 --grid k=10,12,14 --methods "$KD" --out "$out/regimes_kd.csv"
sweep --grid T=4,8,16 --grid mu=0.1,0.2 --methods "$KD" --out "$out/regimes_kd_T.csv"
# 3. Self-distillation (Theorem 4, two-phase): eq. 4.3 as written or capped where the student's
#    own truncation is reached, on the presets' data (z in [1, 2]) and on data meeting
#    Assumption 4.1 (z in [1, 1.02] at eta = 12, mvlib.presets.ASSUMPTION_41): two sweeps, since
#    eta moves with the data, joined into one map (sd_kd x view_high).
parts=${TMPDIR:-/tmp}/regimes_sd_parts && mkdir -p "$parts"
sweep --grid sd_kd=eq43,eq43_capped --set view_high=2.0 --methods "$SD" --out "$parts/presets.csv"
sweep --grid sd_kd=eq43,eq43_capped --set view_high=1.02 --set eta=12 --methods "$SD" \
    --out "$parts/a41.csv"
python - "$parts" "$out/regimes_sd.csv" "WORKERS=${WORKERS:-2} bash scripts/regimes.sh" <<'PY'
import sys

import pandas as pd

from mvlib.provenance import write_provenance

parts, out, command = sys.argv[1:]
frames = [pd.read_csv(f"{parts}/{name}.csv", dtype=str) for name in ("presets", "a41")]
pd.concat(frames).to_csv(out, index=False)
print(f"provenance: {write_provenance(out, command)}")
PY
