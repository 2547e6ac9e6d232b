#!/usr/bin/env bash
# Sets up and runs every test: lint, JS type check and unit tests, the notebooks, and the Python suite
# (unit, peers, browser in Debian's chromium, JupyterLab end to end, wheel contents).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
bash scripts/setup.sh test

# a peer or test dependency that cannot be imported fails its tests instead of skipping them
export XW_REQUIRE_PEERS=${XW_REQUIRE_PEERS:-1}

echo "== lint"
"$PYTHON" -m ruff check .
echo "== js: type check and unit tests"
npm --prefix js run typecheck --silent
npm --prefix js test --silent
echo "== notebooks (each executed once; its kernel's peak memory must stay under a Binder lab's 1.5 GiB)"
"$PYTHON" -m pytest -q -p no:cacheprovider -s tests/notebooks
echo "== python, peers and browser"
# tests marked slow (a 20-sentence anchors comparison) run with: bash scripts/test.sh -m slow
"$PYTHON" -m pytest -q -p no:cacheprovider -m "not slow" --ignore=tests/notebooks tests "$@"
