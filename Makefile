# Two commands on a fresh machine: `make demo` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TRENDING_HOME ?= $(CURDIR)/data
export TRENDING_HOME
# dagster-dbt's prepare_if_dev() under `dagster dev` calls `dbt` by name
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export DAGSTER_HOME := $(TRENDING_HOME)/dagster
export TRENDING_WAREHOUSE := $(TRENDING_HOME)/warehouse.duckdb
export WANDB_MODE ?= offline
export DO_NOT_TRACK := 1
export DAGSTER_DISABLE_TELEMETRY := 1
# absolute: dbt records root_path from it, and dbt-duckdb reads seeds at root_path/... from dagster-dbt's cwd
DBT_FLAGS := --project-dir $(CURDIR)/dbt_project --profiles-dir $(CURDIR)/dbt_project

.PHONY: install manifest demo test dev bench clean

# torch first, from the local CPU wheel: an unpinned torch would pull a multi-GB CUDA build.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# dagster-dbt reads target/manifest.json at import time.
dbt_project/target/manifest.json: $(BIN)/.installed $(shell find dbt_project -name '*.sql' -o -name '*.yml' -o -name '*.csv' | grep -v target)
	$(BIN)/dbt parse $(DBT_FLAGS) --quiet
	touch $@

manifest: dbt_project/target/manifest.json

demo: manifest
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/trending demo

# Two workers, one test file each at a time: the daemon-driven demo test spends most of its ten minutes waiting on
# sensors and runs, and the rest of the suite runs beside it.
test: manifest
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

dev: manifest
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/python -c "from trending_assets import environment; environment.configure()"
	$(BIN)/dagster dev -w workspace.yaml

bench: manifest
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/retrain.py

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs
