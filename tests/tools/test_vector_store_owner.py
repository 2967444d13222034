"""Local mode's directory has one owner, claimed at start, though Qdrant's client opens on first use:
a second store on the same directory fails at once, naming the way out, and the directory is free
again once the owner closes. Both stores here are in this process, which `flock` keeps apart as it
would two processes (a lock belongs to its open file, not to the process)."""

from __future__ import annotations

from typing import Any

import pytest

from citadel.runtime.services import Services, open_services
from citadel.tools.vector_store import Document, VectorStore


async def test_a_second_store_on_the_directory_fails_at_start(services: Services) -> None:
    second = VectorStore(services.settings, services.embeddings)
    with pytest.raises(RuntimeError, match="in use by another Citadel process"):
        await second.start()
    await second.aclose()


async def test_the_client_opens_on_first_use_and_the_claim_ends_with_the_store(make_settings: Any) -> None:
    settings = make_settings()
    async with open_services(settings, llm=False) as services:
        await services.vectors.ping()  # local mode is not opened to be probed
        assert services.vectors._client is None
        await services.vectors.create_collection("notes")
        await services.vectors.upsert("notes", [Document("a", "Basalt is a volcanic rock.")])
        (hit,) = await services.vectors.search("notes", query="volcanic rock", k=1)
        assert hit.id == "a"
    # Closed: the next owner starts, and finds what the first one stored.
    async with open_services(settings, llm=False) as services:
        assert (await services.vectors.info("notes")).chunks == 1
