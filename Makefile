# ichkit — every target bootstraps .venv by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.setup-stamp
# torch: a CUDA build installed beforehand is kept; otherwise the CPU build 2.13.0
# (a local file on the project's machines) is installed.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
ICHKIT_DEMO_DIR ?= demo-output

.PHONY: setup test test-all lint demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[model,dev]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

demo: setup
	ICHKIT_DEMO_DIR="$(ICHKIT_DEMO_DIR)" bash scripts/demo.sh

# Each script prints its figures and the ratio to its baseline; see benchmarks/RESULTS.md.
bench: setup
	$(PIP) install -q -e ".[bench]"
	$(PY) benchmarks/bench_score.py
	$(PY) benchmarks/bench_header_scan.py --files 3000
	$(PY) benchmarks/bench_synth.py
	$(PY) benchmarks/bench_deid.py --files 720 --repeat 3
	$(PY) benchmarks/bench_dataset.py --files 4000 --exams 25000
	rm -rf .bench-data && $(VENV)/bin/ichkit synth .bench-data --exams 40 --seed 1 --size 128 \
	  --masks --workers 2 --no-progress
	$(PY) benchmarks/bench_cache.py .bench-data --exams 40 --workers 2 --blas-baseline
	$(PY) benchmarks/bench_encoder.py
	$(PY) benchmarks/bench_compile.py
	$(PY) benchmarks/bench_model.py
	@if [ -f $(ICHKIT_DEMO_DIR)/model/best.ckpt ]; then \
	  $(PY) benchmarks/bench_heatmaps.py --model $(ICHKIT_DEMO_DIR)/model/best.ckpt --data .bench-data; \
	else echo "bench_heatmaps: skipped (run make demo first: it needs a trained model)"; fi
	rm -rf .bench-data

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .bench-data $(ICHKIT_DEMO_DIR)
