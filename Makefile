# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv and runs the full curriculum on the embedded default through the `avatar` flow
#   make test   creates .venv and runs the test suite
VENV   ?= .venv
PY     := $(VENV)/bin/python
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Test workers (pytest-xdist): one per core. A file runs whole on one worker, so a module's
# fixtures are built once; `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= auto
XDIST := -n $(TEST_WORKERS) --dist loadfile

.PHONY: setup demo test test-fast lint bench clean

setup:
	@bash scripts/bootstrap.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q -m "not gpu" $(XDIST) $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -q -m "not gpu and not e2e and not slow" $(XDIST) $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	$(PY) benchmarks/bench_loss.py

clean:
	rm -rf data checkpoints results runs .pytest_cache
