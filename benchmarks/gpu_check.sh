#!/usr/bin/env bash
# One unattended GPU check (< 8 minutes): AMP training on synthetic data + inference timing.
# Usage: bash benchmarks/gpu_check.sh [extra args for gpu_check.py, e.g. --steps 200]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total --format=csv || true
timeout 470 "$PY" benchmarks/gpu_check.py "$@"
