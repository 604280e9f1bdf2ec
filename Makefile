# Peerlink: `make up` runs the platform, `make test` runs every test. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: install up demo test test-unit test-integration test-e2e lint typecheck schemas bench deploy-check clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# The dashboard's browser test drives Debian's Chromium (no browser download of its own).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "Install Debian's chromium package for the dashboard browser test:"; \
		echo "  sudo apt-get install chromium"; \
	fi

up: $(STAMP)
	$(BIN)/peerlink up

demo: $(STAMP)
	$(BIN)/peerlink up --demo

lint: $(STAMP)
	$(BIN)/ruff check shared services tests

typecheck: $(STAMP)
	$(BIN)/mypy shared services

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test-integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

test-e2e: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest tests/e2e -q

test: $(STAMP) $(CHROMIUM) lint typecheck
	$(BIN)/pytest tests -q

schemas: $(STAMP)
	$(BIN)/python -m shared.events.export

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
