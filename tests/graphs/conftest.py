"""Real services on the embedded defaults (MiniLM embeddings, SmolLM2, local Qdrant), with short
answers to keep the tiny model quick, and the graphs compiled with in-memory persistence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from agents.deps import AgentDeps
from graphs.registry import GraphRegistry, build_registry
from runtime.services import Services, open_services
from tests.graphs.run_inputs import DOCS


@pytest.fixture
async def services(make_settings: Any) -> AsyncIterator[Services]:
    async with open_services(make_settings(llm_max_tokens=32), state=False) as opened:
        yield opened


@pytest.fixture
def deps(services: Services) -> AgentDeps:
    return AgentDeps.from_services(services)


@pytest.fixture
async def docs(services: Services) -> str:
    """The `docs` collection (the default one), holding DOCS."""
    await services.vectors.create_collection("docs")
    await services.vectors.upsert("docs", DOCS)
    return "docs"


@pytest.fixture
def registry(deps: AgentDeps) -> GraphRegistry:
    return build_registry(deps, InMemorySaver(), InMemoryStore())
