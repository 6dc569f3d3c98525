#!/usr/bin/env bash
# The README's test command: lint and format, unit tests, the strict book build (which executes
# every chapter at the ci preset: a failing cell, e.g. a chapter's check, fails it), then the
# checks of the rendered site. Each chapter runs once, one per core; trained results are shared
# through the cache (mvlib.cache), which trains each once. One chapter alone, for development:
#   MVLIB_PRESET=ci python -m pytest --nbval-lax --nbval-current-env book/05_distillation.ipynb
set -euo pipefail
cd "$(dirname "$0")/.."
export MVLIB_PRESET="${MVLIB_PRESET:-ci}"
ruff check .
ruff format --check .
# The strict build, its chapters executed side by side (scripts/build_book.py), then the unit
# tests: the ci results some of them check are the ones the chapters just trained and cached. A failing chapter fails the build, but the site is still written: check it either way,
# so the report names what is wrong, then fail with the build's and the tests' status.
build=0
python scripts/build_book.py || build=$?
unit=0
python -m pytest tests --ignore tests/test_site.py || unit=$?
python -m pytest tests/test_site.py
[ "$build" = 0 ] && [ "$unit" = 0 ]
