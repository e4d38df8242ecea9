# Developer commands. `make run` and `make test` work on a fresh machine with only Python 3.11:
# they create .venv and install the project (again only when pyproject.toml changed).
#
#   make run                   web + worker + beat (+ embedded Redis) at http://127.0.0.1:8000
#   make test                  system packages, lint, typecheck, the suite on SQLite and on
#                              PostgreSQL (`cad`, `db_independent` on SQLite only), each timed
#   make test-unit             fast tests only, less schemathesis (DB=postgres: on PostgreSQL)
#   make test-integration      Redis + Celery worker tests (DB=postgres likewise)
#   make lint / make fmt       ruff; make contracts: app boundaries (import-linter)
#   make typecheck             mypy --strict (config in pyproject.toml)
#   make worker                one more Celery worker, joining `make run`'s Redis unless
#                              REDIS_URL is set (QUEUES=geometry CONCURRENCY=1 ...)
#   make clean                 caches and build leftovers (keeps .venv and var/)
#
# Extra pytest arguments: make test PYTEST_ARGS="-x -k traveler"; PYTEST_WORKERS=0 runs the
# tests in one process (for pdb), PYTEST_WORKERS=N in N (default: one per CPU).

SHELL := /bin/bash
.DEFAULT_GOAL := help
export PIP_DISABLE_PIP_VERSION_CHECK := 1

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The first of python3.11 and python3 that is Python 3.11 (pyproject.toml requires it).
PYTHON ?= $(firstword $(foreach candidate,python3.11 python3,$(shell $(candidate) -c \
	'import sys; sys.version_info[:2] == (3, 11) and print(sys.executable)' 2>/dev/null)))

QUEUES ?= geometry,toolpath,documents,routing,estimators
CONCURRENCY ?= 2
PYTEST_ARGS ?=
# pytest-xdist: the tests spread over this many processes, each with its own test database
# (pytest-django suffixes its name per worker) and its own Redis. --dist loadgroup keeps the
# tests marked xdist_group(NAME) in one process (the two sharing one OctoPrint server).
# `logical`: one per CPU the kernel shows (with psutil installed, `auto` would count physical
# cores only, and halve the workers on a machine with SMT).
PYTEST_WORKERS ?= logical
XDIST = -n $(PYTEST_WORKERS) --dist loadgroup
# Tests marked `postgres` need PostgreSQL; those marked `cad` (heavy geometry that never
# touches the database) or `db_independent` (no database, or faults of processes the database
# plays no part in; tests/conftest.py) run on SQLite only: on PostgreSQL they would only cost time.
ONCE := not cad and not db_independent
DB ?= sqlite
ifeq ($(DB),postgres)
WITH_DB := bash scripts/with-postgres.sh
DB_MARKS := and $(ONCE)
else
WITH_DB :=
DB_MARKS := and not postgres
endif
TIMED := bash scripts/timed.sh
# What `make test` does with a pytest pass's exit status, just after the pass. Exit 5 is
# pytest's "no test selected": a failure when the whole suite was asked for (something is
# broken), but expected when PYTEST_ARGS narrows the run, as `-k traveler` selects nothing on
# PostgreSQL where no `cad` test runs. Both passes empty still fails (see the target).
PYTEST_STATUS = code=$$?; \
	if [ $$code -eq 5 ] && [ "$(if $(strip $(PYTEST_ARGS)),narrowed)" = narrowed ]; then \
		empty=$$((empty + 1)); echo "    (no test of this pass matched PYTEST_ARGS)"; \
	elif [ $$code -ne 0 ]; then status=1; fi

# A .venv that is missing, broken (its interpreter moved) or not Python 3.11 is made anew,
# and everything reinstalled into it.
ifneq ($(shell $(PY) -c 'import sys; print(sys.version_info[:2] == (3, 11))' 2>/dev/null),True)
$(PY): FORCE
$(shell rm -f $(STAMP))
endif

.PHONY: help install system-packages bench-packages run test test-unit test-integration lint typecheck fmt worker \
	clean FORCE contracts

help:
	@sed -n '1,16p' Makefile | sed 's/^# \{0,1\}//'

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

bench-packages:  # also CuraEngine for benchmarks/toolpath/compare.py (no test needs it)
	bash scripts/install-system-packages.sh --benchmarks

run: $(STAMP)
	exec $(PY) scripts/run.py

# Every pass runs even when one before it failed; the target fails if any did. Each pass says
# how long it took, and all the durations are repeated at the end, then every failed test of
# every pass (tests/conftest.py writes them to MF_FAILED_TESTS).
test: system-packages $(STAMP)
	@status=0; empty=0; summary=$$(mktemp); export TIMED_SUMMARY=$$summary; \
	failed=$$(mktemp); export MF_FAILED_TESTS=$$failed; \
	$(TIMED) "lint (ruff)" \
		bash -c '$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .' || status=1; \
	$(TIMED) "contracts (import-linter)" $(VENV)/bin/lint-imports || status=1; \
	$(TIMED) "typecheck (mypy)" $(PY) -m mypy || status=1; \
	$(TIMED) "dependency audit (pip-audit, npm audit)" $(PY) scripts/audit.py || status=1; \
	MF_FAILED_TESTS_PASS=SQLite $(TIMED) "test suite on SQLite" \
		$(PY) -m pytest $(XDIST) -m "not postgres" $(PYTEST_ARGS); \
	$(PYTEST_STATUS); \
	MF_FAILED_TESTS_PASS=PostgreSQL $(TIMED) "test suite on PostgreSQL" bash scripts/with-postgres.sh \
		$(PY) -m pytest $(XDIST) -m "$(ONCE)" $(PYTEST_ARGS); \
	$(PYTEST_STATUS); \
	if [ $$empty -eq 2 ]; then \
		echo "make test: no test matched PYTEST_ARGS in either pass" >&2; status=1; \
	fi; \
	echo "==> durations"; sed 's/^==> /    /' "$$summary"; rm -f "$$summary"; \
	if [ -s "$$failed" ]; then \
		echo "==> failed tests, every pass ($$(wc -l < "$$failed"))"; \
		head -n 40 "$$failed" | cut -c 1-300 | sed 's/^/    /'; \
	fi; \
	rm -f "$$failed"; \
	exit $$status

test-unit: $(STAMP)
	$(WITH_DB) $(PY) -m pytest $(XDIST) -m "not integration and not fuzz $(DB_MARKS)" $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(WITH_DB) $(PY) -m pytest $(XDIST) -m "integration $(DB_MARKS)" $(PYTEST_ARGS)

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

# One more worker against the same Redis and database, under a node name of its own: the
# Redis of REDIS_URL, else the one the `make run` going on in this checkout uses (var/run.json);
# with neither, scripts/worker.py says so and fails.
worker: $(STAMP)
	exec $(PY) scripts/worker.py -Q $(QUEUES) --concurrency $(CONCURRENCY) -l info \
		-n worker-$$$$@%h

clean:
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info var/static
