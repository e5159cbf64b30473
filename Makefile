# `make run` and `make test` are the two set-up commands: each creates .venv on first use
# (and again whenever pyproject.toml changes), so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch: on a machine with an NVIDIA driver, the newest release (CUDA wheels); without one,
# the oldest release we support, 2.13.0, which pip takes from a local wheel cache where one
# exists instead of downloading a multi-GB CUDA build it cannot use. Override with
# `make TORCH='torch==X.Y'` (or any pip requirement) as you like.
TORCH ?= $(if $(shell command -v nvidia-smi 2>/dev/null),torch>=2.13,torch==2.13.0)

.PHONY: run test bench lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The main job: the searches, replicates of each cell's best (5 seeds) and a window sweep, the report.
WINDOWS ?= 2,5,10,20,32,64
run: $(VENV)/.installed
	$(BIN)/harness launch studies/short_period.toml studies/long_period.toml
	$(BIN)/harness confirm --seeds 5 --windows $(WINDOWS) --workers 2
	$(BIN)/harness report

test: $(VENV)/.installed
	$(BIN)/ruff check harness tests
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(VENV)/.installed
	$(BIN)/pytest tests/benchmarks --benchmark-enable --benchmark-only \
		--benchmark-storage=results/benchmarks --benchmark-autosave --benchmark-columns=median,iqr,rounds

lint: $(VENV)/.installed
	$(BIN)/ruff check harness tests
	$(BIN)/ruff format --check harness tests
	$(BIN)/mypy
