# Citadel: `make run` starts the server on embedded defaults; `make test` runs everything CI runs.
# Both install what they need first (uv, the locked dependencies, the embedded models).

SHELL := /bin/bash
UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
# llama-cpp-python has no wheel on PyPI: it compiles once (about 5 minutes on 2 cores), portable
# (no -march=native), and uv caches the wheel for later installs.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
export UV_LINK_MODE ?= copy
RUN := $(UV) run --no-sync

.PHONY: install run test lint typecheck unit eval bench clean

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra local-llm
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

unit: install
	$(RUN) pytest

# Routing accuracy of the assistant's supervisor on a labelled set, then retrieval quality on
# SciFact with the embedded model (the first run embeds the corpus: ~4-5 min;
# later runs reuse the collection cached under ~/.cache/citadel).
eval: install
	$(RUN) python -m evals.routing --min-accuracy 0.95
	$(RUN) python -m evals.scifact --min-ndcg 0.62

test: lint typecheck unit eval

bench: install
	$(RUN) python -m benchmarks.embeddings
	$(RUN) python -m benchmarks.router
	$(RUN) python -m benchmarks.checkpoints

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
