#!/usr/bin/env bash
# The GPU check: on a machine with CUDA, the tests marked `cuda` (every method family once on the GPU,
# equal to the CPU within float tolerance, no host-device copies in the hot loops, memory freed after
# each call), then the benchmarks' GPU rows (ours and the peer on the same GPU, ratios printed).
# Budget: under 8 minutes on one GPU. Without CUDA it says so and exits 0.
# Usage: bash scripts/gpu-check.sh [--tests-only | --benchmarks-only]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu-check: no CUDA device here (torch.cuda.is_available() is False); nothing to check, exit 0"
  exit 0
fi
"$PYTHON" -c "import torch; print('gpu-check:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| CUDA', torch.version.cuda)"
export XW_REQUIRE_PEERS=${XW_REQUIRE_PEERS:-1}
start=$SECONDS
status=0

if [[ "${1:-}" != "--benchmarks-only" ]]; then
  echo "== cuda tests"
  "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py || status=1
fi

if [[ "${1:-}" != "--tests-only" ]]; then
  # each benchmark has its own time limit so the whole check stays under 8 minutes
  bench() {
    local limit=$1; shift
    echo "== benchmarks/$1 ${*:2} --device cuda (limit ${limit}s)"
    timeout "$limit" "$PYTHON" "benchmarks/$1" "${@:2}" --device cuda || { echo "   (exit $?)"; status=1; }
  }
  bench 120 gradients.py --batches 1 8 --repeats 3
  bench 90 cams.py --repeats 3
  bench 90 relevance.py --batches 1 8 --repeats 3
  bench 60 metrics.py --reps 3
fi
echo "gpu-check: $((SECONDS - start)) s, $([[ $status == 0 ]] && echo passed || echo FAILED)"
exit $status
