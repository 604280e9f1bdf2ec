# Peerlink: `make up` runs the platform, `make test` runs every test. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian's packages the checks and tests drive: Chromium (dashboard), Prometheus (scrape test,
# promtool) and docker-compose (compose validation). kubectl (kustomize) comes with the image.
DEBIAN_TOOLS := /usr/bin/chromium /usr/bin/prometheus /usr/bin/docker-compose

.PHONY: install tools up demo test test-unit test-integration test-e2e lint typecheck schemas soak bench bench-quick screenshot deploy-check clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

tools: $(DEBIAN_TOOLS)

$(DEBIAN_TOOLS):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium prometheus docker-compose; \
	else \
		echo "Install Debian's packages for the browser, scrape and deploy checks:"; \
		echo "  sudo apt-get install chromium prometheus docker-compose"; \
	fi

up: $(STAMP)
	$(BIN)/peerlink up

demo: $(STAMP)
	$(BIN)/peerlink up --demo

lint: $(STAMP)
	$(BIN)/ruff check shared services ops tests deploy

typecheck: $(STAMP)
	$(BIN)/mypy shared services ops deploy/check.py

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test-integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

test-e2e: $(STAMP) tools
	$(BIN)/pytest tests/e2e -q

deploy-check: $(STAMP) tools
	$(BIN)/python deploy/check.py

test: $(STAMP) tools lint typecheck deploy-check
	$(BIN)/pytest tests -q

# The long forms of the fault, load and hostile-input tests (tests marked soak; their short
# forms run in `make test`). Figures go to docs/reliability.md.
soak: $(STAMP) tools
	PEERLINK_SOAK=1 $(BIN)/pytest tests -q -m soak

# Throughput and memory; figures go to docs/benchmarks.md. bench-quick: about 2 minutes.
# Each bench writes its rows to var/bench/<name>.json; the summary prints them as one table.
bench: $(STAMP)
	rm -rf var/bench && mkdir -p var/bench
	-PEERLINK_BENCH_OUT=var/bench/pipeline.json $(BIN)/python -m tests.bench.bench_pipeline
	-PEERLINK_BENCH_OUT=var/bench/stream.json $(BIN)/python -m tests.bench.bench_stream
	-PEERLINK_BENCH_OUT=var/bench/rebuild.json $(BIN)/python -m tests.bench.bench_rebuild
	-PEERLINK_BENCH_OUT=var/bench/platform.json $(BIN)/python -m tests.bench.bench_platform
	$(BIN)/python -m tests.bench.summary var/bench

bench-quick: $(STAMP)
	rm -rf var/bench && mkdir -p var/bench
	-PEERLINK_BENCH_OUT=var/bench/pipeline.json PEERLINK_BENCH_EVENTS=2000 \
		$(BIN)/python -m tests.bench.bench_pipeline
	-PEERLINK_BENCH_OUT=var/bench/stream.json PEERLINK_BENCH_STREAM_EVENTS=20000 \
		$(BIN)/python -m tests.bench.bench_stream
	-PEERLINK_BENCH_OUT=var/bench/rebuild.json PEERLINK_BENCH_REBUILD_EVENTS=20000 \
		$(BIN)/python -m tests.bench.bench_rebuild
	$(BIN)/python -m tests.bench.summary var/bench pipeline stream rebuild

# docs/dashboard.png from the real demo (its own broker, ports and var dir; a few minutes):
# waits until the funnel, coverage and wellbeing tables show figures. Not part of `make test`.
screenshot: $(STAMP) /usr/bin/chromium
	$(BIN)/python -m tests.support.dashboard_screenshot

schemas: $(STAMP)
	$(BIN)/python -m shared.events.export

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
