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

.PHONY: setup system venv test test-fast lint lock demo bench soak clean \
	setup-cluster cluster cluster-down cluster-prepare demo-cluster

setup: system $(STAMP)

system:
	@scripts/setup-system.sh

# The local Kubernetes cluster (deploy/localcluster): its system packages only when asked.
setup-cluster: setup
	@scripts/setup-system.sh --cluster

# Builds the cluster's components (cached by version) and images (cached by input hash).
cluster-prepare: setup-cluster
	$(BIN)/python -m localcluster prepare

cluster: setup-cluster
	$(BIN)/python -m localcluster up

cluster-down: $(STAMP)
	$(BIN)/python -m localcluster down

demo-cluster: setup-cluster
	$(BIN)/locotui demo --cluster

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

# As root the cluster tests' components and images are built first (progress shown); as
# another user those tests are skipped, with the reason in the summary. The cluster tests
# run after the rest, not beside it: a cluster and its emulator pods would take the CPU
# the QEMU tests' deadlines count on. Both runs always happen; either failing fails.
test: setup
	$(BIN)/ruff check .
	@if [ "$$(id -u)" -eq 0 ]; then $(MAKE) --no-print-directory cluster-prepare; fi
	@$(BIN)/python -m pytest -n 2 --dist loadgroup -q -m 'not cluster'; rest=$$?; \
	$(BIN)/python -m pytest -q -m cluster; cluster=$$?; \
	exit $$(( rest || cluster ))

test-fast: setup
	$(BIN)/python -m pytest -m 'not slow' -q

demo: setup
	$(BIN)/locotui demo --instances $(DEMO_INSTANCES)

# Every benchmark, each bounded, on loopback; the figures go into docs/performance.md.
bench: setup
	$(BIN)/python -m bench.run

# A local fleet under continuous faults (not in CI): SOAK_MINUTES=10 make soak
# SOAK_CLUSTER=1: the chart on the local Kubernetes instead (as root; started if need be).
SOAK_MINUTES ?= 30
SOAK_CLUSTER ?=
soak: $(if $(SOAK_CLUSTER),setup-cluster,setup)
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)$(if $(SOAK_CLUSTER), --cluster) --doc

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
