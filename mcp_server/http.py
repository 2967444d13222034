"""Streamable HTTP at `/mcp`, inside Citadel's FastAPI app.

    endpoint = MCPEndpoint(settings)                  # at app creation
    app.router.routes.append(endpoint.route())
    async with endpoint.serve(state):                 # in the app's lifespan, around its `yield`:
        ...                                           # a tool per graph of state.registry
        ...

One route answers every revision: 2026-07-28 clients send self-contained POSTs (no session, any
replica can answer); handshake-era clients get a session (`Mcp-Session-Id`), or none with
`CITADEL_MCP_STATELESS=true` for replicas behind a load balancer.

DNS-rebinding protection: when the server binds to loopback, requests whose Host is not a
loopback name, or whose Origin is not a loopback origin, are refused (421 / 403), so a web page
cannot reach a local Citadel through a name it controls. `CITADEL_MCP_ALLOWED_HOSTS` /
`_ORIGINS` extend the lists, and turn the check on for any bind address.

Sessions: one idle (no request in flight) for `CITADEL_MCP_SESSION_IDLE_SECONDS` is closed; with
`CITADEL_MCP_MAX_SESSIONS` open, a new one is refused with 503, to which this endpoint adds the
`Retry-After` the SDK leaves out. Header values are trimmed of surrounding whitespace before the SDK
compares them with the body (RFC 9110 §5.5: a field value excludes it; uvicorn's httptools parser
hands it on as sent).

Answered at once: a 2026-07-28 request for a listing, a prompt, a resource, or a call of a tool that
reads what the server holds (`tools.ANSWERED_AT_ONCE`: no model runs, no progress to report) is
served by a second session manager of the same server in JSON-response mode. Its answer is the same
single JSON response the SDK's SSE mode sends when a handler finishes without a notification, without
what that mode sets up on every request to be able to stream (a task group with the handler and a
disconnect watcher as sibling tasks, a memory stream, a timer): on a trivial call, driven in process,
that set-up was 140 of the SDK's 340 us of CPU. Everything else (graph runs, generation, embedding,
progress) streams as before, and a handshake-era request always goes to the first manager, which
holds the sessions. The choice is made on the routing headers (`Mcp-Method`, `Mcp-Name`), which the
SDK checks against the body: a request whose headers claim a quick tool and whose body calls another
is refused (HEADER_MISMATCH).

The `mcp` SDK is imported and the server built in the background once the app has started (it
costs 0.7-0.8 s of CPU): the app answers `/health` at once, and a request to `/mcp` that comes
before the server is ready waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citadel.core.services import Core
from citadel.errors import Unavailable
from citadel.graphs.spec import ServedGraph
from citadel.settings import Settings

if TYPE_CHECKING:  # the SDK is imported when the server is built, off the start-up path
    from mcp.server.mcpserver import MCPServer
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings

    from citadel.mcp_server.auth import BearerAuth

log = logging.getLogger(__name__)

PATH = "/mcp"
OWS = b" \t"
LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
LOOPBACK_ORIGINS = [f"http{tls}://{host}" for tls in ("", "s") for host in LOOPBACK_HOSTS]
AT_ONCE_METHODS = frozenset(
    {b"tools/list", b"prompts/list", b"prompts/get", b"resources/list", b"resources/templates/list", b"resources/read"}
)
"""2026-07-28 methods whose answer is one JSON object at once, whatever they name."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    from mcp.server.transport_security import TransportSecuritySettings

    loopback = is_loopback(settings.host)
    if not loopback and not settings.mcp_allowed_hosts and not settings.mcp_allowed_origins:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    hosts = [*LOOPBACK_HOSTS, *settings.mcp_allowed_hosts] if loopback else list(settings.mcp_allowed_hosts)
    origins = [*LOOPBACK_ORIGINS, *settings.mcp_allowed_origins] if loopback else list(settings.mcp_allowed_origins)
    if not hosts:  # only origins were configured: check those, accept any Host
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


class AnsweredAtOnce:
    """Tells whether a request is a 2026-07-28 one (not of a handshake-era revision) whose routing
    headers name a method answered at once, or a call of one of `quick_tools`."""

    def __init__(self, quick_tools: frozenset[str]) -> None:
        from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

        self._quick_tools = frozenset(name.encode() for name in quick_tools)
        self._handshake_versions = frozenset(version.encode() for version in HANDSHAKE_PROTOCOL_VERSIONS)

    def __call__(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        version = method = name = None
        for key, value in headers:
            if key == b"mcp-protocol-version":
                version = value
            elif key == b"mcp-method":
                method = value
            elif key == b"mcp-name":
                name = value
        if version is None or version in self._handshake_versions:
            return False
        if method == b"tools/call":
            return name in self._quick_tools
        return method in AT_ONCE_METHODS


class MCPEndpoint:
    """The MCP server as an ASGI app for `/mcp`, its session managers run by the app's lifespan."""

    def __init__(self, settings: Settings, *, auth: BearerAuth | None = None) -> None:
        self._settings = settings
        self._auth = auth
        self._state: Core | None = None
        self.server: MCPServer[Core] | None = None
        self._at_once: StreamableHTTPSessionManager | None = None  # JSON-response mode, for what is answered at once
        self._app: ASGIApp | None = None
        self._ready = asyncio.Event()  # set when the server is built (or failed to be)
        self._failure = ""  # why it failed to be
        # Sessions free up as idle ones are closed: a refused client is told to come back then, at most
        # a minute later.
        self._retry_after = str(max(1, math.ceil(min(settings.mcp_session_idle_seconds, 60.0)))).encode()

    def _build(self, specs: Sequence[ServedGraph]) -> None:
        """The MCP server for these graphs (one tool each), with its session manager (the Starlette
        app the SDK returns is not used: the route below serves the same session manager inside
        Citadel's app) and the JSON-response one for what is answered at once. It imports the SDK:
        called in a worker thread."""
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        from citadel.mcp_server.server import create_server
        from citadel.mcp_server.tools import ANSWERED_AT_ONCE

        settings = self._settings
        self.server = create_server(settings, self._provide, specs)
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=settings.mcp_stateless,
            transport_security=transport_security(settings),
            session_idle_timeout=settings.mcp_session_idle_seconds,
            max_sessions=settings.mcp_max_sessions,
        )
        streaming = self.server.session_manager
        at_once = StreamableHTTPSessionManager(
            app=streaming.app, json_response=True, stateless=True, security_settings=streaming.security_settings
        )
        self._at_once = at_once
        answered_at_once = AnsweredAtOnce(ANSWERED_AT_ONCE)

        async def transport(scope: Scope, receive: Receive, send: Send) -> None:
            if answered_at_once(scope["headers"]):
                await at_once.handle_request(scope, receive, send)
            else:  # only this manager opens sessions, and refuses one with 503 when at its maximum
                await streaming.handle_request(scope, receive, self._with_retry_after(send))

        self._app = self._auth.protect(transport) if self._auth is not None else transport

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "headers": [(name, value.strip(OWS)) for name, value in scope["headers"]]}
        if not self._ready.is_set():
            if self._state is None:
                raise RuntimeError("MCPEndpoint.serve() builds the MCP server; it was not entered")
            await self._ready.wait()
        if self._app is None:
            raise Unavailable(f"the MCP endpoint could not be built: {self._failure}", retry_after=60)
        await self._app(scope, receive, send)

    def _with_retry_after(self, send: Send) -> Send:
        async def with_retry_after(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    message = {**message, "headers": [*headers, (b"retry-after", self._retry_after)]}
            await send(message)

        return with_retry_after

    def route(self) -> Route:
        return Route(PATH, endpoint=self, include_in_schema=False)

    @contextlib.asynccontextmanager
    async def serve(self, state: Core) -> AsyncIterator[None]:
        """Run the MCP session managers over `state` (what the app's lifespan opened), with a tool per
        graph of its registry (the built-in graphs and the project's). Returns at once: the server is
        built and its session managers run by a task of its own, until the block exits."""
        self._state, self._app, self._ready = state, None, asyncio.Event()
        stop = asyncio.Event()
        task = asyncio.create_task(self._run([entry.spec for entry in state.registry.list()], stop))
        try:
            yield
        finally:
            stop.set()
            await task
            self._state = None

    async def _run(self, specs: Sequence[ServedGraph], stop: asyncio.Event) -> None:
        try:
            await asyncio.to_thread(self._build, specs)  # the event loop goes on answering meanwhile
            assert self.server is not None
            assert self._at_once is not None
            # Each manager enters the server's lifespan, which hands both the same core (`_provide`).
            async with self.server.session_manager.run(), self._at_once.run():
                self._ready.set()
                await stop.wait()
        except Exception as error:
            log.exception("the MCP endpoint could not be built")
            self._app, self._failure = None, f"{type(error).__name__}: {error}"
        finally:
            self._ready.set()

    @contextlib.asynccontextmanager
    async def _provide(self) -> AsyncIterator[Core]:
        if self._state is None:
            raise RuntimeError("MCPEndpoint.serve() provides the state; it was not entered")
        yield self._state
