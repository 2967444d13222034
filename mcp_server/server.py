"""Citadel's MCP server: one `MCPServer` (the `mcp` SDK 2.x) with the tools, graph tools, resources
and prompts, over whatever state `provide` opens. Served over stdio (`citadel mcp`, `stdio.py`) and
streamable HTTP at `/mcp` in the FastAPI app (`http.py`); both speak the handshake-era revisions and
the stateless 2026-07-28 one.

    server = create_server(settings, lambda: open_core(settings))
    async with Client(server) as client:          # in memory, as the tests do
        await client.call_tool("ask_rag", {"messages": [{"role": "user", "content": "..."}]})
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from importlib.metadata import version

from mcp.server.mcpserver import MCPServer
from mcp.server.request_state import RequestStateSecurity

from citadel.core.registry import SPECS
from citadel.core.services import Core
from citadel.graphs.spec import ServedGraph
from citadel.mcp_server import graph_tools, resources, tools
from citadel.mcp_server.state import StateProvider
from citadel.settings import Settings

NAME = "citadel"
INSTRUCTIONS = """\
Citadel serves embeddings, semantic search over document collections, LLM generation routed across \
several backends, and multi-agent graphs.
- To answer from documents: list_collections, then ask_rag (an answer citing its sources), or search \
for the raw passages.
- ask_assistant routes each turn to a researcher, a document analyst (pass document), a generalist, or \
remembers a fact for you; run_workflow runs a list of embedding / vector_search / llm_query steps.
- Graph tools return a thread_id: pass it back to continue the conversation; get_thread reads a thread. \
A run that pauses for approval asks you (elicitation) or returns status awaiting_approval: answer it \
with resume_thread.
- Resources: citadel://graphs, citadel://collections, citadel://threads/{thread_id}."""


class _Current:
    """The state of the running lifespan, for the few handlers the SDK gives no Context (static
    resources)."""

    def __init__(self) -> None:
        self.state: Core | None = None

    def __call__(self) -> Core:
        if self.state is None:
            raise RuntimeError("the MCP server is not running")
        return self.state


def create_server(settings: Settings, provide: StateProvider, specs: Sequence[ServedGraph] = SPECS) -> MCPServer[Core]:
    current = _Current()

    @contextlib.asynccontextmanager
    async def lifespan(_: MCPServer[Core]) -> AsyncIterator[Core]:
        async with provide() as state:
            # Entered once by each HTTP session manager (the streaming one and the JSON one, http.py):
            # the first to leave hands back what the other still runs on.
            previous, current.state = current.state, state
            try:
                yield state
            finally:
                current.state = previous

    key = settings.mcp_request_state_key
    server: MCPServer[Core] = MCPServer(
        NAME,
        title="Citadel",
        version=version("citadel"),
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        tools=graph_tools.graph_tools(specs),
        request_state_security=RequestStateSecurity(keys=[key.get_secret_value()]) if key else None,
        log_level=settings.log_level.upper(),  # type: ignore[arg-type]
    )
    tools.register(server)
    graph_tools.register(server)
    resources.register(server, specs, current)
    return server
