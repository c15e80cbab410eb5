# The two entry points are `make demo` and `make test`; both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_INSTANCES ?= 3

.PHONY: setup system venv test test-fast lint demo bench clean \
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

bench: setup
	$(BIN)/python -m bench.bench_emulator
	$(BIN)/python -m bench.bench_backend
	$(BIN)/python -m bench.bench_tui

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
