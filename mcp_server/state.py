"""What the MCP server's handlers work with: the core (services, graph registry, run manager).

Inside the HTTP app it is the app's own (its lifespan opens it and hands it to the MCP session
manager); `citadel mcp` over stdio is handed one the binding opens for it. Handlers reach it as the
MCP lifespan context (`state_of(ctx)`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp.server.mcpserver import Context

from citadel.core.services import Core

StateProvider = Callable[[], AbstractAsyncContextManager[Core]]
"""Called once per MCP lifespan (a stdio session, or the HTTP session manager's run)."""


def shared_state(state: Core) -> StateProvider:
    """A provider handing out a core that someone else opened (and will close)."""

    @contextlib.asynccontextmanager
    async def provide() -> AsyncIterator[Core]:
        yield state

    return provide


def state_of(ctx: Context[Core, Any]) -> Core:
    return ctx.request_context.lifespan_context
