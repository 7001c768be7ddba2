# watchium-db developer commands. Everything runs from the project's virtualenv (.venv),
# which the targets create on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv demo up down status test test-slow test-all lint schema docs bench clean

help:
	@echo "make demo      start the local database, migrate it and play out a watch party"
	@echo "make test      run the test suite (lint, types, tests not marked slow)"
	@echo "make test-all  run every test, the slow reliability suite included"
	@echo "make schema    regenerate schema/ from the migrated database"
	@echo "make docs      regenerate docs/schema.md from the migrated database"
	@echo "make bench     run the benchmarks against the seed's reference SQL"

# The runtime alone (what an app installs), for make demo / up / down / status.
RUNTIME := $(VENV)/.runtime-installed

$(RUNTIME): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[binary]'
	@touch $(RUNTIME)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP) $(RUNTIME)

venv: $(STAMP)

demo: $(RUNTIME)
	$(BIN)/watchium-db demo

up: $(RUNTIME)
	$(BIN)/watchium-db up

down: $(RUNTIME)
	$(BIN)/watchium-db down

status: $(RUNTIME)
	$(BIN)/watchium-db status

lint: $(STAMP)
	$(BIN)/ruff check $(wildcard watchium_db tests bench migrations)
	$(BIN)/ruff format --check watchium_db
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -m "not slow"

# pytest exits 5 when no test is marked slow; that is not a failure here.
test-slow: $(STAMP)
	$(BIN)/pytest -m slow || [ $$? -eq 5 ]

test-all: lint
	$(BIN)/pytest

schema: $(STAMP)
	$(BIN)/python -m watchium_db.devtools.schema_dump write

docs: $(STAMP)
	$(BIN)/python -m watchium_db.devtools.schema_docs

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m watchium_db.devtools.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache dist
