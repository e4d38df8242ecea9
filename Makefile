# Developer commands. `make run` and `make test` work on a fresh machine with only Python 3.11:
# they create .venv and install the project (again only when pyproject.toml changed).
#
#   make run                   web + worker + beat (+ embedded Redis) at http://127.0.0.1:8000
#   make test                  system packages, then the whole suite on SQLite and on PostgreSQL
#   make test-unit             fast tests only (DB=postgres to run them on PostgreSQL)
#   make test-integration      Redis + Celery worker tests (DB=postgres likewise)
#   make lint / make fmt       ruff; make contracts: app boundaries (import-linter)
#   make typecheck             mypy --strict (config in pyproject.toml)
#   make worker                one more Celery worker (QUEUES=geometry CONCURRENCY=1 ...)
#   make clean                 caches and build leftovers (keeps .venv and var/)
#
# Extra pytest arguments: make test PYTEST_ARGS="-x -k traveler"

SHELL := /bin/bash
.DEFAULT_GOAL := help
export PIP_DISABLE_PIP_VERSION_CHECK := 1

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The first of python3.11 and python3 that is Python 3.11 (pyproject.toml requires it).
PYTHON ?= $(firstword $(foreach candidate,python3.11 python3,$(shell $(candidate) -c \
	'import sys; sys.version_info[:2] == (3, 11) and print(sys.executable)' 2>/dev/null)))

QUEUES ?= geometry,toolpath,documents,routing
CONCURRENCY ?= 2
PYTEST_ARGS ?=
DB ?= sqlite
ifeq ($(DB),postgres)
WITH_DB := bash scripts/with-postgres.sh
NOT_POSTGRES :=
else
WITH_DB :=
NOT_POSTGRES := and not postgres
endif

# A .venv that is missing, broken (its interpreter moved) or not Python 3.11 is made anew,
# and everything reinstalled into it.
ifneq ($(shell $(PY) -c 'import sys; print(sys.version_info[:2] == (3, 11))' 2>/dev/null),True)
$(PY): FORCE
$(shell rm -f $(STAMP))
endif

.PHONY: help install system-packages run test test-unit test-integration lint typecheck fmt worker \
	clean FORCE contracts

help:
	@sed -n '1,12p' Makefile | sed 's/^# \{0,1\}//'

$(PY):
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (as python3.11 or python3)" >&2; exit 1; }
	$(PYTHON) -m venv --clear $(VENV)

$(STAMP): pyproject.toml package.json package-lock.json scripts/build-assets.sh | $(PY)
	$(PY) -m pip install -e ".[dev]"
	bash scripts/build-assets.sh  # three.js and htmx from npm into microfactory/static/vendor/
	touch $@

install: $(STAMP)

system-packages:
	bash scripts/install-system-packages.sh

run: $(STAMP)
	exec $(PY) scripts/run.py

# Both passes run even when the first fails; the target fails if either did.
test: system-packages $(STAMP)
	@status=0; \
	echo "==> lint (ruff)"; \
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . || status=1; \
	echo "==> contracts (import-linter)"; \
	$(VENV)/bin/lint-imports || status=1; \
	echo "==> typecheck (mypy)"; \
	$(PY) -m mypy || status=1; \
	echo "==> test suite on SQLite"; \
	$(PY) -m pytest -m "not postgres" $(PYTEST_ARGS) || status=1; \
	echo "==> test suite on PostgreSQL"; \
	bash scripts/with-postgres.sh $(PY) -m pytest $(PYTEST_ARGS) || status=1; \
	exit $$status

test-unit: $(STAMP)
	$(WITH_DB) $(PY) -m pytest -m "not integration $(NOT_POSTGRES)" $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(WITH_DB) $(PY) -m pytest -m "integration $(NOT_POSTGRES)" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The import contracts between apps, in pyproject.toml's [tool.importlinter].
contracts: $(STAMP)
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(PY) -m mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# One more worker against the same Redis and database (the one `make run` started, say),
# under a node name of its own.
worker: $(STAMP)
	exec $(VENV)/bin/celery -A microfactory worker -Q $(QUEUES) --concurrency $(CONCURRENCY) \
		-l info -n worker-$$$$@%h

clean:
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info var/static
