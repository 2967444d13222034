"""Real services on the embedded defaults (MiniLM embeddings, SmolLM2, local Qdrant), with short
answers to keep the tiny model quick, and the graphs compiled with in-memory persistence."""

from __future__ import annotations

import pytest

from citadel.core.services import Services
from tests.graphs.run_inputs import DOCS


@pytest.fixture
async def docs(services: Services) -> str:
    """The `docs` collection (the default one), holding DOCS."""
    await services.vectors.create_collection("docs")
    await services.vectors.upsert("docs", DOCS)
    return "docs"
