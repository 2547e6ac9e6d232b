#!/usr/bin/env bash
# Sets up xaiwidgets and opens the quickstart notebook in JupyterLab (the demo model ships offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo,lab
exec "${PYTHON:-python3}" -m jupyter lab notebooks/quickstart.ipynb "$@"
