# The two entry points are `make demo` and `make test`; both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_INSTANCES ?= 3

.PHONY: setup system venv test test-fast lint demo bench clean

setup: system $(STAMP)

system:
	@scripts/setup-system.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)
	@echo "setup: virtual environment ready in $(VENV)"

venv: $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

test-fast: setup
	$(BIN)/python -m pytest -m 'not slow' -q

demo: setup
	$(BIN)/locotui demo --instances $(DEMO_INSTANCES)

bench: setup
	$(BIN)/python -m bench.bench_emulator
	$(BIN)/python -m bench.bench_backend
	$(BIN)/python -m bench.bench_tui

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
