# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest install clean browser bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml apps/pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./apps
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m nightcrew_apps.demo

lint: $(STAMP)
	$(BIN)/ruff check src apps tests bench
	$(BIN)/ruff format --check src apps tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The browser tests need Debian's Chromium; installed here when we may (root), else they
# skip with a loud message.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& apt-get install -y -qq chromium; } \
		|| echo 'WARNING: chromium is not installed: the browser tests will be SKIPPED'

# The fast tier first (no database, seconds), then the real-Postgres and fault tiers.
pytest: $(STAMP) browser
	$(BIN)/pytest tests/unit
	$(BIN)/pytest --ignore=tests/unit

test: lint typecheck pytest

clean:
	rm -rf $(VENV)

# Every figure of issue 21 beside PgQueuer (its own venv) and the floors, medians of 3
# interleaved rounds, one table (bench/README.md). Long (15-30 min); not part of `make test`.
BENCH_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
bench: $(STAMP)
	cd bench && ../$(BIN)/python suite.py --database-url $(BENCH_URL) $(BENCH_ARGS)
