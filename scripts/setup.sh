#!/usr/bin/env bash
# Installs everything xaiwidgets needs into the current Python: torch, the front-end build, the package
# with the given extras (default: demo,lab). Idempotent: what is already there is not reinstalled.
#   bash scripts/setup.sh            # the notebook setup
#   bash scripts/setup.sh test       # plus the test tools, the peers and Debian's chromium
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${1:-demo,lab}
[ "$EXTRAS" = "test" ] && EXTRAS="demo,lab,test"

# torch: the pinned CPU/CUDA wheels this project is tested with (pip takes them from local disk where
# the machine provides them). Override with TORCH_SPEC="torch==X torchvision==Y".
if ! "$PYTHON" -c "import torch, torchvision" >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  "$PYTHON" -m pip install ${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
fi

# the front end: TypeScript bundle built into xaiwidgets/static/ (the wheel build does the same)
command -v npm >/dev/null || { echo "npm is missing: install Node.js 20.19+ with npm" >&2; exit 1; }
npm --prefix js ci --no-audit --no-fund --loglevel=error
npm --prefix js run build --silent

"$PYTHON" -m pip install -q -e ".[${EXTRAS}]"

if [[ "$EXTRAS" == *test* ]]; then
  # peers whose pins do not admit our torch: installed without their dependencies (which the test
  # extra provides), see docs/decisions.md
  "$PYTHON" -m pip install -q --no-deps "torch-lucent==0.1.8"
fi

if [[ "$EXTRAS" == *test* ]] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -q && apt-get install -y -q chromium
  else
    echo "Browser tests need Debian's chromium: sudo apt-get install -y chromium" >&2
    exit 1
  fi
fi
