#!/usr/bin/env bash
# The README's test command: unit tests, every chapter under nbval at the ci preset, the book build.
set -euo pipefail
cd "$(dirname "$0")/.."
export MVLIB_PRESET="${MVLIB_PRESET:-ci}"
python -m pytest tests
python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider book/
jupyter-book build --all -W -n --keep-going .
