"""What the core hands every face: the open services, the graph registry and the run manager.

The binding (`citadel.runtime`) opens them (`open_services`, `open_core`) and closes them; faces and
CLI commands receive them as these typed values and never open their own."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from citadel.agents.deps import AgentDeps
from citadel.core.registry import GraphRegistry
from citadel.core.runs import RunManager
from citadel.memory.app_store import AppStore
from citadel.memory.cache import ByteCache
from citadel.memory.persistence import Persistence
from citadel.settings import Settings
from citadel.tools.embeddings import EmbeddingService
from citadel.tools.llm_router import LLMRouter
from citadel.tools.vector_store import VectorStore


@dataclass
class Services:
    settings: Settings
    cache: ByteCache
    embeddings: EmbeddingService
    vectors: VectorStore
    llm: LLMRouter
    engine: AsyncEngine | None
    """The app database (threads, runs); None for commands that need no state."""
    app_store: AppStore | None
    persistence: Persistence | None

    def agent_deps(self) -> AgentDeps:
        """What the specialist agents and built-in graphs need of these services."""
        return AgentDeps(
            settings=self.settings,
            embeddings=self.embeddings,
            vectors=self.vectors,
            llm=self.llm,
            tool_model=self.llm.tool_model if self.llm is not None else lambda: None,
        )


ServicesOpener = Callable[..., AbstractAsyncContextManager[Services]]
"""`open_services(settings, *, llm=True, state=False)`, handed down by the binding to what opens its own
services with settings of its own (the evals)."""


@dataclass(frozen=True)
class Core:
    """The services, the graphs compiled on the shared checkpointer and store, and the runs."""

    services: Services
    registry: GraphRegistry
    runs: RunManager

    @property
    def settings(self) -> Settings:
        return self.services.settings
