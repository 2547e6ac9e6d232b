#!/usr/bin/env bash
# Sets up xaiwidgets and opens the quickstart notebook in JupyterLab (the demo model ships offline).
# Extra arguments go to `jupyter lab` (e.g. --no-browser --port=8890). The URL it prints (and the server's
# root) opens the quickstart too, for machines without a browser. As root (a container, a course machine)
# Jupyter refuses to start without --allow-root: it is passed then. XW_SKIP_SETUP=1 skips the setup (a second
# start, or a test of the server command).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${XW_SKIP_SETUP:-0}" = "1" ] || bash scripts/setup.sh demo,lab
args=(--LabApp.default_url=/lab/tree/quickstart.ipynb)
[ "$(id -u)" = "0" ] && args+=(--allow-root)
exec "${PYTHON:-python3}" -m jupyter lab notebooks/quickstart.ipynb ${args[@]+"${args[@]}"} "$@"
