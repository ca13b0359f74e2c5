# Herold's commands. Every target bootstraps .venv from the pinned dependencies first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint migrate bench soak install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/herold migrate
	$(BIN)/herold serve

migrate: $(STAMP)
	$(BIN)/herold migrate

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check app tests bench alembic
	$(BIN)/ruff format --check app tests bench alembic
	$(BIN)/mypy app

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Not part of `test` or `bench`: 10 minutes of federation traffic against `herold serve` (bench/soak.py;
# SOAK_ARGS="--minutes 3" for a shorter one, "--postgres URL" for serve + worker on PostgreSQL).
soak: $(STAMP)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
