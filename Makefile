# Two commands on a fresh machine: `make demo` (runs the whole graph) and `make test`.
# Everything else is set up here: the virtual environment, a current pip, the pinned dependencies.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The browser tests' Chromium (tests/ui); `make test CHROMIUM=/usr/bin/google-chrome` uses another build.
export CHROMIUM ?= /usr/bin/chromium
export WALDINGER_DATA_DIR ?= $(CURDIR)/.waldinger
export DAGSTER_HOME ?= $(WALDINGER_DATA_DIR)/dagster_home

.PHONY: install demo dev test lint validate stop warehouse-stop clean chromium

install: $(STAMP) $(CHROMIUM)

# pip 23.2 cannot resolve dagster + azure-ai-ml, hence the upgrade. requirements.lock pins every package with its
# hashes (`make lock` writes it; torch==2.13.0+cpu is the CPU build that lies on disk on these machines, CI takes it
# from PyTorch's CPU index). --no-deps: the lock is already the whole resolution, and pip's resolver would refuse
# one pin in it: the policy pack's pulumi-policy 1.21 wants protobuf 5.29 where Dagster's grpcio-health-checking
# needs 6 (the pack's code runs on 6, tested; `pulumi preview --policy-pack` installs the pack's own requirements.txt
# into its own virtualenv anyway). Then the two local packages themselves, editable, without dependencies.
$(STAMP): pyproject.toml runtime/pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; install Python 3.11 or run make PYTHON=python3.x"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e ./runtime -e .
	touch $(STAMP)

# Recompiles requirements.lock from requirements.in (both packages with the extras `make install` installs, and the
# policy pack's library) for Python 3.11 on Linux x86_64, keeping every pin it can; `make lock UPGRADE=--upgrade`
# moves every package to its newest allowed version. Then the orchestrator image's lock, the subset of it that
# waldinger_assets/platform/requirements.in names. torch's CPU build comes from TORCH_CPU_SOURCE: the wheel on disk
# where there is one, else PyTorch's CPU index (best match across both indexes: uv would otherwise take every package
# that index also has from it alone).
TORCH_CPU_SOURCE ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
LOCK_FLAGS = --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	$(TORCH_CPU_SOURCE) --no-emit-package waldinger --no-emit-package waldinger-runtime --custom-compile-command 'make lock'
.PHONY: lock
lock: $(STAMP)
	$(BIN)/uv pip compile requirements.in $(LOCK_FLAGS) --override requirements-overrides.txt $(UPGRADE) -o requirements.lock
	$(BIN)/uv pip compile waldinger_assets/platform/requirements.in $(LOCK_FLAGS) -o waldinger_assets/platform/requirements.lock

# The browser tests (tests/ui) drive Debian's Chromium through Playwright's Python package: `playwright install`
# downloads a browser build of its own, which these machines cannot fetch. Installed once, as root (sudo if there).
chromium: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "$(CHROMIUM) is missing and there is no apt-get: install Chromium so that $(CHROMIUM) runs it (the browser tests in tests/ui need it)"; exit 1; }
	@if [ "$$(id -u)" -eq 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; else \
		echo "$(CHROMIUM) is missing (the browser tests in tests/ui need it); as root, run: apt-get update && apt-get install -y --no-install-recommends chromium"; exit 1; fi; \
	set -x; $$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
	@test -x $(CHROMIUM) || { echo "apt-get installed chromium but $(CHROMIUM) is not there; the browser tests launch that path"; exit 1; }

$(DAGSTER_HOME):
	mkdir -p $(DAGSTER_HOME)
	touch $(DAGSTER_HOME)/dagster.yaml

demo: $(STAMP) $(DAGSTER_HOME)
	$(BIN)/waldinger warehouse start
	$(BIN)/waldinger warehouse seed
	@test -f schema_baseline/local.json || { echo "No schema baseline yet: recording the demo warehouse as it is now (review it in schema_baseline/local.json)"; $(BIN)/waldinger drift accept; }
	$(BIN)/dagster asset materialize -m waldinger_assets.definitions --select '*' --partition $$(date -u +%F)
	@echo
	@echo "Done. Where to look:"
	@$(BIN)/waldinger model list | tail -n 3
	@echo "  make dev                        the Dagster UI (asset graph, runs, metadata) on http://127.0.0.1:3000"
	@echo "  $(BIN)/waldinger drift report   drift against schema_baseline/local.json (accept with: waldinger drift accept)"
	@echo "  $(BIN)/waldinger warehouse status --json   how any Snowflake client reaches the embedded warehouse"
	@echo "  $(BIN)/waldinger serve status --json       the OpenAI-compatible endpoint serving the production model"
	@echo "  WALDINGER.LLM.BATCH_OUTPUTS       today's triage answers, one row per prompt: the completion, its parsed"
	@echo "                                    fields (ANSWER_CATEGORY, ANSWER_PRIORITY, ANSWER_ORDER_ID, PARSE_STATUS)"
	@echo "                                    and the model version, MLflow run and training dataset behind it"
	@echo "  $(BIN)/waldinger model list --json  each version's eval metrics (exact_match) and training lineage"
	@echo "  $(WALDINGER_DATA_DIR)/mlflow/mlflow.db   the MLflow tracking store of the training runs (sqlite)"
	@echo "  make stop                        stops the endpoint and the warehouse"
	@echo "  $(WALDINGER_DATA_DIR)   data: warehouse files, schema history, alerts outbox, Dagster runs"

dev: $(STAMP) $(DAGSTER_HOME)
	$(BIN)/waldinger warehouse start
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

validate: $(STAMP)
	$(BIN)/dagster definitions validate -w workspace.yaml

# The one command CI and developers use to materialize assets (.github/scripts/materialize.sh; the local
# embedded environment unless WALDINGER_ENV=prod is exported). SELECT, PARTITION and PARTITION_RANGE given on
# the command line reach the script through the environment (README "CI/CD: GitHub Actions"), e.g.
#   make materialize SELECT='waldinger/schema_drift/schema_snapshot,waldinger/schema_drift/drift_report'
.PHONY: materialize
materialize: $(STAMP) $(DAGSTER_HOME)
	DAGSTER_BIN=$(BIN)/dagster .github/scripts/materialize.sh

# Every benchmark script once, figures to docs/benchmarks.md (about 40 minutes; run it on an idle machine).
.PHONY: benchmarks
benchmarks: $(STAMP)
	$(BIN)/python benchmarks/report.py

# hadolint: both images' Dockerfiles (every rule it skips is an inline `# hadolint ignore=...` saying why).
DOCKERFILES := runtime/container/Dockerfile waldinger_assets/platform/Dockerfile
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .
	$(BIN)/hadolint $(DOCKERFILES)

# pytest exits 5 when it collected no test: that is a broken suite, not a pass. The suite runs on TEST_WORKERS
# pytest-xdist processes (2 by default, for 2 cores; TEST_WORKERS=0 runs it serially in one). --dist loadfile keeps
# a module's tests on one worker, in file order, so a module fixture is set up once; modules share no state, so
# any module may run on any worker. Not --dist loadgroup: with pytest 9.2 and pytest-xdist 3.8 it silently
# groups nothing (xdist still writes the "@group" suffix into item._nodeid, which pytest 9.2 no longer reads;
# pytest-xdist issue #1386) and spreads one module's tests over both workers.
TEST_WORKERS ?= 2
test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	@$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: the suite is broken"; exit 1; fi; \
	exit $$status

stop: $(STAMP)
	$(BIN)/waldinger serve stop
	$(BIN)/waldinger warehouse stop

warehouse-stop: $(STAMP)
	$(BIN)/waldinger warehouse stop

clean:
	-test -x $(BIN)/waldinger && $(BIN)/waldinger serve stop
	-test -x $(BIN)/waldinger && $(BIN)/waldinger warehouse stop
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
