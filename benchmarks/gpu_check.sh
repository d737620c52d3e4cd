#!/usr/bin/env bash
# One unattended GPU check: AMP training on synthetic data, inference timing, two-stage training.
# Usage: bash benchmarks/gpu_check.sh [args for gpu_check.py, e.g. --steps 200 --json F]
# (it runs from the repository root: give --json an absolute path)
#
# On the GPU machine there is no .venv: PY defaults to its python3 (which holds
# a CUDA torch), ichkit runs from src/, and the wheels it lacks travel in .whl/
# (made here by benchmarks/gpu_wheels.py; the device call carries .whl) and
# are installed into a scratch folder first. With a .venv, that is used.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${PY:-} ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
SITE=${ICHKIT_GPU_SITE:-/tmp/ichkit-gpu-site}
# install the travelled wheels only where ichkit's needs are missing (not in a .venv)
have_needs='import pydicom, monai, typer, sys; sys.exit(tuple(map(int, typer.__version__.split(".")[:2])) < (0, 29))'
if compgen -G ".whl/*.whl" >/dev/null && ! "$PY" -c "$have_needs" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .whl/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv || true
timeout 420 "$PY" benchmarks/gpu_check.py "$@"
