# Every target builds its own virtual environment from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit sysdeps demo stress bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## test: lint, type-check, then the test suite with branch coverage
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests examples stress bench
	$(BIN)/ruff format --check src tests examples stress bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Child processes (the command-line tests run `python -m channels`) write
# coverage data files of their own: combine them before reporting.
unit: $(STAMP) sysdeps
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -q
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

## docs: the documentation site, warnings as errors and nitpicky references,
## into docs/_build/html (`make test` builds it too, into a temporary folder)
.PHONY: docs
docs: $(STAMP) sysdeps
	$(BIN)/python -m sphinx -W --keep-going -n -q -b html docs docs/_build/html

## sysdeps: socat and nc, the programs the command-line tests talk to; installed
## with apt-get when running as root, else the tests that need them skip
sysdeps:
	@if command -v socat >/dev/null && command -v nc >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq socat netcat-openbsd) \
			|| echo "notice: installing socat and netcat-openbsd failed; the tests that need them will skip"; \
	else \
		echo "notice: socat or nc is missing; install socat and netcat-openbsd, or the tests that need them skip"; \
	fi
	@# Graphviz's dot draws the docs' diagram; the docs test fails without it when run as root.
	@if command -v dot >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq graphviz) \
			|| echo "notice: installing graphviz failed; the docs build test will fail"; \
	else \
		echo "notice: Graphviz's dot is missing; install graphviz, or the docs build test skips"; \
	fi

## demo: `channels hub` on a Unix socket and two `channels relay` clients talking through it
demo: $(STAMP)
	$(BIN)/python examples/cli_demo.py

## stress: opt-in load and fault runs on loopback, each printing its figure
stress: $(STAMP)
	$(BIN)/python stress/run.py

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
## 10 minutes); writes bench/results/latest.{json,md,png}. The code that the
## committed results measured runs beside the working tree in the same run
## (rows ending in @before); BASELINE=REV names another revision, BASELINE=none
## measures the working tree alone.
BASELINE ?= auto
bench: $(BENCH_STAMP)
	$(BENCH_BIN)/python bench/run.py --baseline $(BASELINE)

## bench-quick: the same with fewer rounds and less data (under 2 minutes);
## writes bench/results/quick.{json,md,png}
bench-quick: $(BENCH_STAMP)
	$(BENCH_BIN)/python bench/run.py --quick --baseline $(BASELINE)
