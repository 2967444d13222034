"""What the MCP server's handlers work with: the services, the graph registry and the run manager.

Inside the HTTP app they are the app's own (its lifespan opens them and hands them to the MCP
session manager); `citadel mcp` over stdio opens its own with `open_state`, exactly as the app's
lifespan does. Handlers reach them as the MCP lifespan context (`state_of(ctx)`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context

from graphs.registry import GraphRegistry
from runtime.core import open_core
from runtime.run_manager import RunManager
from runtime.services import Services
from runtime.settings import Settings


@dataclass(frozen=True)
class ServerState:
    services: Services
    registry: GraphRegistry
    runs: RunManager

    @property
    def settings(self) -> Settings:
        return self.services.settings


StateProvider = Callable[[], AbstractAsyncContextManager[ServerState]]
"""Called once per MCP lifespan (a stdio session, or the HTTP session manager's run)."""


@contextlib.asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[ServerState]:
    """Open everything a Citadel process needs to run graphs, as the HTTP app's lifespan does."""
    async with open_core(settings) as core:
        yield ServerState(services=core.services, registry=core.registry, runs=core.runs)


def shared_state(state: ServerState) -> StateProvider:
    """A provider handing out state that someone else opened (and will close)."""

    @contextlib.asynccontextmanager
    async def provide() -> AsyncIterator[ServerState]:
        yield state

    return provide


def state_of(ctx: Context[ServerState, Any]) -> ServerState:
    return ctx.request_context.lifespan_context
