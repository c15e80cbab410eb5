# The two entry points are `make demo` and `make test`; both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_INSTANCES ?= 3
# The dependency sets of pyproject.toml, each exported from uv.lock to requirements/SET.txt.
LOCK_SETS := emulator backend console dev
# `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest release that fits.
LOCK_FLAGS ?=

.PHONY: setup system venv test test-fast lint lock demo bench soak clean

setup: system $(STAMP)

system:
	@scripts/setup-system.sh

# Exactly the locked versions (with their hashes), then the project itself on top.
$(STAMP): pyproject.toml requirements/dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --require-hashes -r requirements/dev.txt
	@$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)
	@echo "setup: virtual environment ready in $(VENV)"

venv: $(STAMP)

# Resolves pyproject.toml's dependencies again into uv.lock (keeping the pins that still fit)
# and exports each set for pip; tests/deploy/test_lock.py fails until this has been run.
lock: $(STAMP)
	$(BIN)/uv lock $(LOCK_FLAGS)
	@for set in $(LOCK_SETS); do \
	  $(BIN)/uv export -q --frozen --no-emit-project --extra $$set -o requirements/$$set.txt; \
	done

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

# Every benchmark, each bounded, on loopback; the figures go into docs/performance.md.
bench: setup
	$(BIN)/python -m bench.run

# A local fleet under continuous faults (not in CI): SOAK_MINUTES=10 make soak
SOAK_MINUTES ?= 30
soak: setup
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES) --doc

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
