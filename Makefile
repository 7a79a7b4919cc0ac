# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-sqlite test-postgres fuzz system-deps lint bench clean docs screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/pip install --quiet -e . --group dev
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/journal serve --host $(HOST) --port $(PORT)

system-deps:
	bash scripts/system-deps.sh

# The whole suite on SQLite, then the tests that use a database again on PostgreSQL (a server per
# test process, started by tests/pgserver.py; the other tests would only repeat themselves).
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)
	JOURNAL_TEST_DB=postgresql $(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

test-sqlite: $(STAMP) system-deps
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

test-postgres: $(STAMP) system-deps
	JOURNAL_TEST_DB=postgresql $(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

# The property-based sweep of tests/test_sweep.py with many more examples than `make test` runs.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/test_sweep.py -p no:xdist $(PYTEST_ARGS)

# ruff (lint and format) everywhere; mypy strict on journal/, looser on tests/ (pyproject.toml says how).
lint: $(STAMP)
	$(BIN)/ruff check journal tests bench scripts
	$(BIN)/ruff format --check journal tests bench scripts
	$(BIN)/mypy journal tests scripts

# docs/cli.md from the click commands (tests/test_cli_docs.py fails when it is out of date).
docs: $(STAMP)
	$(BIN)/python scripts/cli_docs.py

# docs/img/*.png for the user guide, taken by a browser test against a real `journal serve`.
screenshots: $(STAMP)
	JOURNAL_SCREENSHOTS=docs/img $(BIN)/python -m pytest -p no:xdist -q tests/test_browser_screenshots.py

bench: $(STAMP)
	$(BIN)/python bench/import.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
