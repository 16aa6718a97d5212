# Every target builds its own virtual environment from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit demo bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## test: lint, type-check, then the test suite with branch coverage
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests examples
	$(BIN)/ruff format --check src tests examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -q
	$(BIN)/coverage report

## demo: a line hub on a Unix socket and two clients talking through it
demo: $(STAMP)
	$(BIN)/python examples/line_hub.py

clean:
	rm -rf $(VENV) .coverage .mypy_cache .pytest_cache .ruff_cache build dist

# The benchmarks get a virtual environment of their own: their peers (uvloop,
# Tornado, Twisted, pyperf, matplotlib) never enter the test environment.
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install --quiet --upgrade pip
	$(BENCH_BIN)/python -m pip install --quiet -e . -r bench/requirements.txt
	touch $(BENCH_STAMP)

## bench: every workload against every peer, interleaved and repeated (under
## 10 minutes); writes bench/results/latest.{json,md,png}
bench: $(BENCH_STAMP)
	$(BENCH_BIN)/python bench/run.py

## bench-quick: the same with fewer rounds and less data (under 2 minutes);
## writes bench/results/quick.{json,md,png}
bench-quick: $(BENCH_STAMP)
	$(BENCH_BIN)/python bench/run.py --quick
