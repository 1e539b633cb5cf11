# Facade: `make run` serves the demo config offline; `make test` installs and runs every test.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench openapi screenshot clean chromium

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH (or make PY=python3)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# The `facade` command in .venv/bin, running this checkout's code (dependencies above).
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/pytest

# The page tests drive Debian's chromium (Playwright never downloads a browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && apt-get install -y chromium; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m bench

openapi: $(STAMP)
	$(BIN)/flask --app wsgi openapi write --format=json openapi/openapi.json

# Rewrites docs/dashboard.png, the README's picture of the dashboard (from the page test).
screenshot: $(STAMP) chromium
	FACADE_UPDATE_SCREENSHOT=1 $(BIN)/pytest -q tests/e2e/test_pages.py -k admin_api_numbers

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache var
