# Developer entry points. Needs only Python 3.11 with pip and venv;
# `make lock` also needs uv, a maintainer tool (`pip install uv`).

PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-postgres lint schema lock bench clean

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when the lock or the project metadata changed.
$(STAMP): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

run: install
	$(BIN)/media-gateway serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

# The tests whose database is the suite's fixture, again against a throwaway PostgreSQL
# cluster (tests/support/postgres.py); the others start their own SQLite-backed servers.
POSTGRES_TESTS ?= tests/http tests/properties tests/storage tests/support
test-postgres: install
	MEDIA_GATEWAY_TEST_POSTGRES=1 $(BIN)/pytest $(PYTEST_ARGS) $(POSTGRES_TESTS)

# vulture: no dead code in gateway schema storage (settings and whitelist in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gateway schema storage
	$(BIN)/vulture

schema: install
	$(BIN)/media-gateway export-schema > schema.graphql.tmp
	mv schema.graphql.tmp schema.graphql

# The gateway against bench/reference_server.py (README "Performance"); installs Debian's wrk
# when missing and run as root. BENCH_SECONDS, BENCH_RUNS, BENCH_CONNECTIONS, BENCH_SCENARIOS.
bench: install
	$(BIN)/python bench/http_bench.py

# requirements.lock: what the service runs on (the Docker image); requirements-dev.lock adds
# the test and lint tools (make install).
lock:
	uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --universal -o requirements.lock
	uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 --universal -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build dist test-artifacts *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
