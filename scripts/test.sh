#!/usr/bin/env bash
# The README's test command: lint and format, unit tests, every chapter under nbval at the ci
# preset, the strict book build, then the checks of the rendered site.
set -euo pipefail
cd "$(dirname "$0")/.."
export MVLIB_PRESET="${MVLIB_PRESET:-ci}"
ruff check .
ruff format --check .
python -m pytest tests --ignore tests/test_site.py
python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider book/
# A failing chapter fails the build, but the site is still written: check it either way, so the
# report names what is wrong, then fail with the build's status.
build=0
jupyter-book build --all -W -n --keep-going . || build=$?
python -m pytest tests/test_site.py
exit "$build"
