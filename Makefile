# Two commands do everything on a fresh machine:
#   make run    set up (Python venv, dashboard build), then run the main job: driftloop demo
#   make test   set up, then run every check and test (what CI runs, via .ci/run)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV := .venv-bench
BENTOML_VENV := .venv-bentoml
EXAMPLE := artifacts/example
PYTEST_WORKERS ?= 2
DASHBOARD := dashboard
NODE_STAMP := $(DASHBOARD)/node_modules/.installed
STATIC := src/driftloop/serving/static/index.html
DASHBOARD_SOURCES := $(shell find $(DASHBOARD)/src $(DASHBOARD)/index.html \
                       $(DASHBOARD)/vite.config.ts $(DASHBOARD)/tsconfig.json -type f 2>/dev/null)

.PHONY: setup run example test test-torch lint docs dashboard contract bench clean

# pip shows its progress: a first install takes minutes and must not look stuck.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "setting up $(VENV) (first time: a few minutes)"
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -e '.[dev]'
	touch $(STAMP)

# The dashboard: npm ci from the lockfile, and a build whenever its sources change.
$(NODE_STAMP): $(DASHBOARD)/package-lock.json
	cd $(DASHBOARD) && npm ci --no-audit --no-fund
	touch $@

$(STATIC): $(NODE_STAMP) $(DASHBOARD_SOURCES)
	cd $(DASHBOARD) && npm run build

dashboard: $(STATIC)

# The HTTP/WebSocket contract's generated files (serving/schemas.py -> JSON Schema and the
# dashboard's fixtures -> TypeScript); tests/serving/test_contract.py fails while stale.
contract: $(STAMP) $(NODE_STAMP)
	$(BIN)/python scripts/gen_contract.py

setup: $(STAMP) $(STATIC)

run: setup
	$(BIN)/driftloop demo $(DEMO_ARGS)

# The batch drift report on bundled example data (the first issue's main job).
example: $(STAMP)
	$(BIN)/driftloop example-data $(EXAMPLE)
	$(BIN)/driftloop drift-report $(EXAMPLE)/reference.parquet $(EXAMPLE)/current.parquet -o $(EXAMPLE)/drift-report.html
	$(BIN)/driftloop drift-report $(EXAMPLE)/reference.parquet $(EXAMPLE)/current.parquet

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts hatch_build.py
	$(BIN)/mypy

# The documentation site (docs/, mkdocs.yml): any warning, a broken link or anchor, a page
# missing from the navigation, fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# pytest exits 5 when it collects no tests: that is not a failure of the suite.
# PYTEST_WORKERS pytest-xdist processes share the tests (work stealing): most end-to-end tests
# wait on servers, subprocesses and the clock, so two processes finish the suite in far less
# time even on two cores. Every test has its own folder, port and PostgreSQL schema.
# PYTEST_WORKERS=0 runs them in this one process.
test: lint docs $(STATIC)
	scripts/services.sh
	scripts/browser.sh
	scripts/deploy_tools.sh
	cd $(DASHBOARD) && npm test
	DASHBOARD_E2E_REQUIRED=1 DEPLOY_TOOLS_REQUIRED=1 $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$status

# The optional PyTorch trainer's tests (skipped by `make test` when torch is absent). On a
# machine without a local CPU wheel, pick the build yourself first (see pytorch.org's
# install matrix); plain `torch` on Linux pulls CUDA wheels of several GB.
test-torch: $(STAMP)
	$(BIN)/pip install --disable-pip-version-check -e '.[torch]'
	$(BIN)/python -m pytest tests/training/test_torch_mlp.py $(PYTEST_ARGS)

# Benchmarks compare against peers (Evidently, alibi-detect) that pin older numpy, so they
# get their own environment and never touch the runtime one.
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[bench]'
	touch $@

# BentoML, the serving peer of serve_bench.py, pins its own web stack (cattrs < 23.2,
# OpenTelemetry 0.41b): an environment of its own, with the scikit-learn of .venv so the
# served model's skops file loads the same in both.
$(BENTOML_VENV)/.installed: $(STAMP)
	$(PYTHON) -m venv $(BENTOML_VENV)
	$(BENTOML_VENV)/bin/pip install --quiet --disable-pip-version-check bentoml skops pandas \
	    "scikit-learn==$$($(BIN)/python -c 'import sklearn; print(sklearn.__version__)')"
	touch $@

bench: $(BENCH_VENV)/.installed $(BENTOML_VENV)/.installed $(STAMP)
	scripts/services.sh
	$(BENCH_VENV)/bin/python benchmarks/drift_bench.py $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python benchmarks/registry_bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/serve_bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/hotswap_bench.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/loop_bench.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(BENTOML_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis \
	       $(DASHBOARD)/node_modules src/driftloop/serving/static
