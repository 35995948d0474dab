# Two commands do everything on a fresh machine:
#   make run    set up, then run the main job
#   make test   set up, then run every check and test (what CI runs, via .ci/run)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV := .venv-bench
EXAMPLE := artifacts/example

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/driftloop example-data $(EXAMPLE)
	$(BIN)/driftloop drift-report $(EXAMPLE)/reference.parquet $(EXAMPLE)/current.parquet -o $(EXAMPLE)/drift-report.html
	$(BIN)/driftloop drift-report $(EXAMPLE)/reference.parquet $(EXAMPLE)/current.parquet

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

# pytest exits 5 when it collects no tests: that is not a failure of the suite.
test: lint
	scripts/services.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$status

# Benchmarks compare against peers (Evidently, alibi-detect) that pin older numpy, so they
# get their own environment and never touch the runtime one.
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[bench]'
	touch $@

bench: $(BENCH_VENV)/.installed
	scripts/services.sh
	$(BENCH_VENV)/bin/python benchmarks/drift_bench.py $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python benchmarks/registry_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
