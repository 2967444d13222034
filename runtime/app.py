"""The FastAPI app factory: the one place the faces meet. Its lifespan opens the core (`open_core`)
and closes it on shutdown; handlers receive its parts as typed state. The request pipeline (metrics,
rate limits, auth, audit, input limits, errors, CORS) wraps every face alike."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citadel import metrics
from citadel.agents.voice import routes as voice_routes
from citadel.mcp_server.http import MCPEndpoint
from citadel.memory.audit import AuditLog
from citadel.rest_api import routes as rest_routes
from citadel.runtime.auth import AuthMiddleware
from citadel.runtime.core import DepsAdjuster, open_core
from citadel.runtime.http_errors import ErrorMiddleware, install_error_handlers
from citadel.runtime.input_limits import InputLimitMiddleware
from citadel.runtime.rate_limits import RateLimiter, RateLimitMiddleware
from citadel.runtime.request_audit import AuditMiddleware
from citadel.settings import Settings
from citadel.ui_bridge import routes as agui_routes


class MetricsMiddleware:
    """Counts requests and their latency by route template (not raw path, to bound label values)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            metrics.HTTP_REQUESTS.labels(template, scope["method"], str(status)).inc()
            metrics.HTTP_LATENCY.labels(template, scope["method"]).observe(time.perf_counter() - started)


def create_app(settings: Settings | None = None, *, adjust_deps: DepsAdjuster | None = None) -> FastAPI:
    """`adjust_deps` swaps what the graphs are built with (the tests' scripted tool-calling model)."""
    settings = settings or Settings()
    mcp_endpoint = MCPEndpoint(settings)  # the MCP face (mcp_server/): tools and graphs at /mcp

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_core(settings, adjust_deps=adjust_deps) as core:
            services, registry, runs = core.services, core.registry, core.runs
            assert services.engine is not None
            audit = AuditLog(services.engine)
            await audit.start()
            limiter = RateLimiter(settings)
            try:
                async with mcp_endpoint.serve(core):  # runs the MCP session manager
                    yield {"services": services, "registry": registry, "runs": runs, "audit": audit, "limiter": limiter}
            finally:
                await runs.aclose()
                await audit.aclose()  # after the runs: their last requests are recorded too
                await limiter.aclose()

    app = FastAPI(
        title="Citadel",
        version="0.1.0",
        description="Agent runtime: embeddings, vector search and routed LLMs; graphs over MCP, AG-UI and voice.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Middleware, innermost first: each one added wraps the ones before it.
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RateLimitMiddleware)  # needs the identity the auth middleware sets
    app.add_middleware(AuthMiddleware, settings=settings)
    app.add_middleware(AuditMiddleware)  # sees refusals (401, 413, 429) too
    app.add_middleware(
        InputLimitMiddleware, max_body_bytes=settings.max_body_bytes, max_text_chars=settings.max_message_chars
    )
    app.add_middleware(ErrorMiddleware)  # the last resort: answers, and keeps the connection
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Content-Location", "X-Citadel-Backend", "X-Citadel-Model", "X-Citadel-Route"],
    )
    app.include_router(rest_routes.router)  # REST face (rest_api)
    app.include_router(voice_routes.router)  # voice face: POST /voice/token (agents/voice)
    app.include_router(agui_routes.router)  # AG-UI face (ui_bridge)
    app.router.routes.insert(0, mcp_endpoint.route())  # MCP face (mcp_server), matched before the REST routes
    return app
