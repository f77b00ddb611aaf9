# Suanwang: `make up` runs the whole stack, `make test` runs every test. Both set up what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

ROOT := $(CURDIR)
PY := $(ROOT)/.venv/bin/python
BPY := $(ROOT)/.venv-brownie/bin/python
BROWNIE := $(BPY) $(ROOT)/tools/run_brownie.py
export SOLCX_BINARY_PATH := $(ROOT)/.toolchain/solcx
export PATH := $(ROOT)/node_modules/@foundry-rs/anvil-linux-amd64/bin:$(ROOT)/node_modules/@foundry-rs/forge-linux-amd64/bin:$(ROOT)/node_modules/.bin:$(ROOT)/.venv/bin:$(PATH)
export PYTHONDONTWRITEBYTECODE := 1
SOLC_VERSION := 0.8.28
BENCHES := $(patsubst bench/%.py,%,$(wildcard bench/*.py))

.PHONY: help setup up test lint compile test-contracts test-backend test-browser frontend bench fuzz mutants clean
help:
	@echo "make up      run the whole stack (Anvil, contracts, backend, web app) on the embedded defaults"
	@echo "make test    lint, compile, and run the contract, backend and browser tests"
	@echo "make bench   run every benchmark under bench/ (make bench-<name> runs one)"
	@echo "make fuzz    the long invariant campaign (100,000 calls per invariant)"
	@echo "make mutants check that every invariant catches its deliberately broken contract"
	@echo "make reliability  every issue-9 campaign: reliability-contracts, reliability-api, fuzz, faults (RUNS=100)"

# ---- set-up: each step reruns only when its inputs change -------------------------------------
setup: .venv/.installed .venv-brownie/.installed node_modules/.installed .toolchain/solcx/solc-v$(SOLC_VERSION)

.venv/.installed: pyproject.toml requirements/backend.lock
	@test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check -c requirements/backend.lock -e ".[dev]"
	@touch $@

.venv-brownie/.installed: requirements/brownie.lock
	@test -x .venv-brownie/bin/python || python3 -m venv .venv-brownie
	.venv-brownie/bin/pip install -q --disable-pip-version-check -r requirements/brownie.lock
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.toolchain/solcx/solc-v$(SOLC_VERSION): tools/solc-wrapper.cjs node_modules/.installed
	@mkdir -p $(@D)
	ln -sf $(ROOT)/tools/solc-wrapper.cjs $@
	@$@ --version | grep -q "Version: $(SOLC_VERSION)" || (echo "solc wrapper does not report $(SOLC_VERSION)" >&2; exit 1)

# ---- build ----------------------------------------------------------------------------------------
compile: setup
	# brownie recompiles changed sources only: a changed compiler setting (brownie-config.yaml) needs --all.
	$(BROWNIE) compile $$([ brownie-config.yaml -nt build/contracts/Market.json ] && echo --all)

frontend: setup
	$(PY) -m suanwang.api.openapi_dump frontend/openapi.json
	npm run --silent gen:api
	npm run --silent typecheck:web
	npm run --silent build:web

# ---- the main job ----------------------------------------------------------------------------------
up: compile frontend
	$(PY) -m suanwang up

# ---- tests ------------------------------------------------------------------------------------------
test: setup lint compile test-contracts test-backend frontend test-browser
	@echo "make test: all parts passed"

lint: setup
	$(PY) -m ruff check backend tests bench scripts tools
	$(PY) -m mypy
	$(PY) tools/check_code_shape.py

test-contracts: compile
	SUANWANG_CHAIN_PORT=$$($(PY) tools/free_port.py) $(BROWNIE) test tests/contracts -q
	@echo "== invariants (Foundry): 256 runs x 100 calls = 25,600 calls per invariant"
	forge test --root $(ROOT) -vv
	@echo "== fee-split proofs (halmos on the bytecode, z3 on the integer model)"
	$(PY) tests/formal/prove_splits.py --no-record
	@echo "== slither: fails on any high or medium finding"
	$(ROOT)/.venv/bin/slither . --compile-force-framework foundry --filter-paths "node_modules|tests/|contracts/test/" --fail-medium

test-backend: compile
	tools/apt-ensure.sh postgresql slurm-wlm munge slurmdbd mariadb-server
	$(PY) -m pytest tests/backend -q -rs

test-browser: setup
	tools/apt-ensure.sh chromium
	$(PY) -m pytest tests/browser -q -rs

# ---- long campaigns ----------------------------------------------------------------------------------
mutants: compile
	tests/invariants/run_mutants.sh

bench: $(addprefix bench-,$(BENCHES))

bench-gas: compile
	$(BPY) bench/gas.py

# Anvil, the service, the provider's agent and the one-host Slurm cluster with slurmdbd (root).
bench-delivery: compile
	tools/apt-ensure.sh slurm-wlm munge slurmdbd mariadb-server
	$(PY) bench/delivery.py

bench-%: setup
	$(PY) bench/$*.py

# ---- reliability: hostile input to the service (issue 9) -------------------------------------------
# schemathesis with negative cases over every operation, a loopback flood above the rate limit, 1,000
# concurrent POSTs under one Idempotency-Key, and the malformed-input corpus (GraphML, scenarios, OpenB
# traces, peering files, API bodies); figures in bench/results/reliability.json (api_attacks, malformed_input).
.PHONY: reliability-api
reliability-api: compile
	$(PY) bench/reliability_api.py

# ---- fault campaign (issue 9): randomized runs of the whole service under faults ----------------------
# make faults RUNS=100 SEED=1 runs seeds SEED..SEED+RUNS-1 and writes the "faults" section of
# bench/results/reliability.json; make faults RUNS=1 SEED=<seed> replays one run's plan.
RUNS ?= 100
SEED ?= 1
.PHONY: faults
faults: compile
	tools/apt-ensure.sh slurm-wlm munge slurmdbd mariadb-server
	FAULT_RUNS=$(RUNS) FAULT_SEED=$(SEED) $(PY) -m pytest tests/faults -q -rs -p no:cacheprovider

# ---- reliability: the contracts (issue 9) ------------------------------------------------------------
# reliability-contracts: the access-control table (every state-changing function x role x stage), the
# signed-order attacks and issue 14's economic and governance attacks, on Anvil, then slither's findings by impact; fuzz: every Foundry invariant at 1,000 runs x 100 calls, then the fee-split
# proofs (halmos on the bytecode, z3 on the integer model). Figures in bench/results/reliability.json
# (access_control, signed_orders, slither, invariants, formal); docs/security.md explains them.
.PHONY: reliability-contracts
reliability-contracts: compile
	SUANWANG_RECORD_RELIABILITY=1 SUANWANG_CHAIN_PORT=$$($(PY) tools/free_port.py) $(BROWNIE) test \
		tests/contracts/test_access_control.py tests/contracts/test_signed_order_attacks.py \
		tests/contracts/test_economic_attacks.py tests/contracts/test_governance_attacks.py -q
	$(PY) tests/formal/report_slither.py

fuzz: compile
	$(PY) tests/invariants/report_fuzz.py
	$(PY) tests/formal/prove_splits.py

# ---- all of issue 9's campaigns, each writing its sections of bench/results/reliability.json -------------
.PHONY: reliability
reliability: reliability-contracts reliability-api fuzz faults

clean:
	rm -rf build frontend/dist test-results reports .pytest_cache .mypy_cache .ruff_cache
