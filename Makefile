# crmstats — every target creates .venv and installs the package when needed.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.crmstats-installed
PARAMS ?=

.PHONY: help install book studies test test-fast test-spark lint format lab data clean clean-book

help: ## List the targets with a line each
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv (if missing) and install crmstats with its dev extras

book: $(STAMP) ## Run every study with papermill and build the Jupyter Book (book/_build/html)
	$(BIN)/crmstats book build $(if $(PARAMS),--params $(PARAMS),)

test: $(STAMP) ## Run the full test suite (lint, unit, notebooks through papermill, book build)
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

test-fast: $(STAMP) ## Run the tests without the slow end-to-end ones
	$(BIN)/python -m pytest -m "not slow"

test-spark: $(STAMP) ## Run the backend tests on Spark in local mode (installs PySpark; needs Java 17)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]"
	$(BIN)/python -m pytest --spark -m spark tests/backends

lint: $(STAMP) ## Lint the package, tests and notebooks with ruff
	$(BIN)/ruff check src tests benchmarks notebooks

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks notebooks

lab: $(STAMP) ## Open JupyterLab on notebooks/ with the crmstats kernel registered
	$(BIN)/python -m ipykernel install --sys-prefix --name crmstats --display-name "Python (crmstats)"
	$(BIN)/jupyter lab --notebook-dir=notebooks

data: $(STAMP) ## Export the simulated demo CRM to data/demo/ as Parquet
	$(BIN)/crmstats data export demo data/demo

clean-book: ## Remove generated study notebooks and the built book
	rm -rf book/_build book/studies book/runs

clean: clean-book ## Remove the virtual environment and caches as well
	rm -rf $(VENV) .pytest_cache .ruff_cache
