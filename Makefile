# The two commands a newcomer needs are `make run` and `make test`; the rest are their parts.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test test-slow lint audit format install system-deps services admin-password bench clean help

help:
	@echo "make run     install, migrate and start the whole system on embedded PostgreSQL+Valkey (or DATABASE_URL/REDIS_URL)"
	@echo "make test    lint + the whole suite against real PostgreSQL and Redis (started if not given)"
	@echo "make lint    ruff, ruff format --check, mypy, hadolint, bandit, import-linter contracts"
	@echo "make audit   known vulnerabilities in the locked dependencies (fails if it cannot check)"
	@echo "make bench   throughput, latency and memory of the real stack (docs/benchmarks.md)"
	@echo "make services  start throwaway PostgreSQL and Redis and print their URLs"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The virtualenv is rebuilt from the lock file whenever the lock changes.
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.synced

system-deps:
	@bash scripts/system-deps.sh

run: install
	$(PY) scripts/run.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/bandit -c .bandit.yml -r src config -q
	$(VENV)/bin/lint-imports --no-cache

# pip-audit of uv.lock: exit 0 clean, 1 vulnerable, 2 could not check (scripts/audit.py). make test only warns
# when the vulnerability service is out of reach; this target and CI's audit job fail.
audit: install
	$(PY) scripts/audit.py

test: install system-deps lint
	$(PY) scripts/audit.py --unchecked-ok
	$(PY) scripts/testenv.py -- $(VENV)/bin/pytest $(PYTEST_ARGS)

# The same suite with the proof tests' long profile (more examples, mutants, threads): for nightly runs.
test-slow: install system-deps lint
	$(PY) scripts/audit.py --unchecked-ok
	PROOF_PROFILE=slow $(PY) scripts/testenv.py -- $(VENV)/bin/pytest $(PYTEST_ARGS)

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Benchmarks of the real stack against baselines measured in the same run (not part of make test).
bench: install system-deps
	$(PY) benchmarks/run.py $(BENCH_ARGS)

services: install system-deps
	$(PY) scripts/testenv.py --shell

admin-password: install
	$(PY) manage.py ensure_admin --new-password

clean:
	rm -rf .run staticfiles
