"""Opening the core every face serves: the services, the graph registry compiled on the shared
checkpointer and store, and the run manager. The HTTP app's lifespan opens it, and so do
`citadel mcp` (stdio) and each voice job."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from citadel.core.registry import build_registry
from citadel.core.runs import RunManager
from citadel.core.services import Core
from citadel.runtime.services import open_services
from citadel.settings import Settings


@contextlib.asynccontextmanager
async def open_core(settings: Settings, *, recovery: bool = True) -> AsyncIterator[Core]:
    """`recovery=False` for a process that runs only its own turns (a voice job) and leaves runs
    abandoned elsewhere to the server processes."""
    async with open_services(settings, state=True) as services:
        assert services.persistence is not None
        assert services.app_store is not None
        registry = build_registry(services.agent_deps(), services.persistence.checkpointer, services.persistence.store)
        runs = RunManager(settings, services.app_store, registry)
        if recovery:
            await runs.start()
        try:
            yield Core(services=services, registry=registry, runs=runs)
        finally:
            await runs.aclose()
