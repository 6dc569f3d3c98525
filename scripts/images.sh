#!/usr/bin/env bash
# The real-data sweep behind chapter 9 (book/09_real_data.ipynb): every method of the table
# and Figure 9 on Fashion-MNIST at the book preset, ten seeds, one after another on all cores,
# each seed appended to the CSV as it finishes with its provenance record (rerun to resume).
# PRESET=paper runs the same on a GPU (the whole training split, a small ResNet).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${PRESET:-book} out=${OUT:-mvlib/sweeps}
python -m mvlib images --preset "$preset" --out "$out/images_$preset.csv" "$@"
