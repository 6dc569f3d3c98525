#!/usr/bin/env bash
# The README's test command: lint and format, the strict book build (which executes every chapter
# at the ci preset: a failing cell, e.g. a chapter's check, fails it) with the unit tests beside
# it, the checks of the rendered site, then every chapter again as a Colab reader runs it
# (scripts/colab.py: Colab's package versions, mvlib installed by the chapters' first cell, which
# must replace none of them). Each chapter trains once, one per core; trained results are shared
# through the cache (mvlib.cache), which trains each once, so the Colab-like run reads them. One
# chapter alone, for development:
#   MVLIB_PRESET=ci python -m pytest --nbval-lax --nbval-current-env book/05_distillation.ipynb
set -euo pipefail
cd "$(dirname "$0")/.."
export MVLIB_PRESET="${MVLIB_PRESET:-ci}"
ruff check .
ruff format --check .
# The unit tests run beside the build, on one torch thread: they take the core the build leaves
# idle while its last chapters finish (the ci results some of them check are trained once, by
# whichever asks first; the other waits on the cache's lock). Their report follows the build's.
mkdir -p _build
OMP_NUM_THREADS=1 python -m pytest tests --ignore tests/test_site.py >_build/unit-tests.log 2>&1 &
tests=$!
trap 'kill "$tests" 2>/dev/null || true' EXIT
# A failing chapter fails the build, but the site is still written: check it either way, so the
# report names what is wrong, then fail with the build's and the unit tests' status.
build=0
python scripts/build_book.py || build=$?
unit=0
wait "$tests" || unit=$?
cat _build/unit-tests.log
python -m pytest tests/test_site.py
# After a failed build the result cache is not warm: the Colab-like run would train cold.
colab=0
if [ "$build" = 0 ]; then
    python scripts/colab.py || colab=$?
else
    echo "scripts/colab.py: skipped, the book build failed"
fi
[ "$build" = 0 ] && [ "$unit" = 0 ] && [ "$colab" = 0 ]
