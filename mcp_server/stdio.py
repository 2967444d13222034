"""`citadel mcp`: MCP on stdin/stdout, for the clients that start a server themselves (desktop
assistants, IDEs, the MCP Inspector).

The Citadel server owns the embedded stores (the local Qdrant, the SQLite files), so while one runs
`citadel mcp` is its client: `run_bridge` relays every JSON-RPC message, both ways, between stdio and
the server's streamable HTTP endpoint `/mcp` (`CITADEL_URL`, with `CITADEL_TOKEN` as bearer token
when the server has auth on). Tools, graph runs, progress, cancellation and elicitation are then the
server's own, and threads started here are the server's threads. Only when no server answers does
`run_stdio` serve from services of its own (the binding hands it their opener).

stdout carries only the protocol: logs go to stderr, and while it serves the SDK points file
descriptor 1 at stderr, so nothing a library prints can corrupt the stream. When the client closes
stdin the session ends and the process leaves at once: clients give a server about two seconds
before they kill it, and the interpreter's own teardown of the native model runtimes takes longer
than that, with nothing left to save.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterable
from typing import Any

import anyio
from mcp.client.streamable_http import streamable_http_client
from mcp.server.stdio import stdio_server
from mcp.shared._httpx_utils import create_mcp_http_client

from citadel.mcp_server.state import StateProvider
from citadel.settings import Settings

log = logging.getLogger(__name__)


def run_stdio(settings: Settings, open_state: StateProvider) -> None:
    """Serve from services of its own until the client closes stdin; `open_state` opens the core,
    whose registry (the built-in graphs and the project's) gives the graph tools."""
    anyio.run(_serve_stdio, settings, open_state)
    _leave()


async def _serve_stdio(settings: Settings, open_state: StateProvider) -> None:
    from citadel.mcp_server.server import create_server
    from citadel.mcp_server.state import shared_state

    async with open_state() as state:
        server = create_server(settings, shared_state(state), [entry.spec for entry in state.registry.list()])
        await server.run_stdio_async()


def run_bridge(url: str, token: str | None) -> None:
    """Relay stdio to the MCP endpoint at `url` until the client closes stdin."""
    anyio.run(_bridge, url, token)
    _leave()


async def _bridge(url: str, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    log.info("citadel mcp: relaying to the Citadel server at %s", url)
    async with (
        create_mcp_http_client(headers=headers) as http,
        stdio_server() as (from_client, to_client),
        streamable_http_client(url, http_client=http) as (from_server, to_server),
        anyio.create_task_group() as relays,
    ):

        async def client_to_server() -> None:
            await _relay(from_client, to_server, "client")
            relays.cancel_scope.cancel()  # stdin closed: the session is over

        relays.start_soon(client_to_server)
        relays.start_soon(_relay, from_server, to_client, "server")


async def _relay(source: AsyncIterable[Any], sink: Any, side: str) -> None:
    async for message in source:
        if isinstance(message, Exception):  # a transport error already answered as a JSON-RPC error
            log.warning("citadel mcp: %s side: %s", side, message)
            continue
        await sink.send(message)


def _leave() -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
