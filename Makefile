# wonderforge: the two commands are `make demo` and `make test`; each sets everything up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export WONDERFORGE_HOME ?= $(CURDIR)/.wonderforge
export DAGSTER_HOME ?= $(WONDERFORGE_HOME)/dagster
export PYTHONUNBUFFERED := 1

.PHONY: setup demo test test-fast lint format ui info bench clean

setup:
	@scripts/setup.sh

demo: setup
	@$(VENV)/bin/wonderforge demo

test: setup lint
	@$(PY) -m pytest -q

test-fast: setup
	@$(PY) -m pytest -q -m "not slow"

lint: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

format: setup
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

ui: setup
	@$(VENV)/bin/wonderforge ui

info: setup
	@$(VENV)/bin/wonderforge info

clean:
	rm -rf $(WONDERFORGE_HOME) .pytest_cache .ruff_cache
