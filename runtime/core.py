"""The core every face serves: the services, the graph registry compiled on the shared checkpointer
and store, and the run manager. The HTTP app's lifespan opens it, and so does `citadel mcp`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agents.deps import AgentDeps
from graphs.registry import GraphRegistry, build_registry
from runtime.run_manager import RunManager
from runtime.services import Services, open_services
from runtime.settings import Settings


@dataclass(frozen=True)
class Core:
    services: Services
    registry: GraphRegistry
    runs: RunManager


@contextlib.asynccontextmanager
async def open_core(settings: Settings) -> AsyncIterator[Core]:
    async with open_services(settings, state=True) as services:
        assert services.persistence is not None
        assert services.app_store is not None
        registry = build_registry(
            AgentDeps.from_services(services), services.persistence.checkpointer, services.persistence.store
        )
        runs = RunManager(settings, services.app_store, registry)
        await runs.start()
        try:
            yield Core(services=services, registry=registry, runs=runs)
        finally:
            await runs.aclose()
