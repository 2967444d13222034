"""The FastAPI app factory: the one place the faces meet. Its lifespan opens the core (`open_core`)
and closes it on shutdown; handlers receive its parts as typed state. The request pipeline (CORS,
auth, rate limits, input limits, the last-resort error answer, metrics, audit: one pass,
`request_pipeline.py`) wraps every face alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from citadel.agents.voice import routes as voice_routes
from citadel.mcp_server.http import MCPEndpoint
from citadel.memory.audit import AuditLog
from citadel.rest_api import openai_compat
from citadel.rest_api import routes as rest_routes
from citadel.runtime.core import DepsAdjuster, open_core
from citadel.runtime.heap import settled_heap
from citadel.runtime.http_errors import install_error_handlers
from citadel.runtime.rate_limits import RateLimiter
from citadel.runtime.request_pipeline import RequestPipeline
from citadel.settings import Settings
from citadel.ui_bridge import routes as agui_routes


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
                state = {"services": services, "registry": registry, "runs": runs, "audit": audit, "limiter": limiter}
                async with mcp_endpoint.serve(core):  # runs the MCP session manager
                    # Started: what start-up loaded is set aside from the garbage collector (runtime/heap.py).
                    with settled_heap(settings.gc_threshold):
                        yield state
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
    # The request pipeline (runtime/request_pipeline.py): CORS, auth, rate limits, input limits, the
    # last-resort error answer, metrics and audit, in one pass.
    mcp_route = mcp_endpoint.route()
    # /v1/embeddings and /v1/chat/completions are served past FastAPI's router too; their FastAPI
    # routes stay for the schema.
    app.add_middleware(RequestPipeline, settings=settings, direct=[mcp_route, *openai_compat.direct_routes()])
    # Each router on the app itself, the ones a run's requests take first: FastAPI tries every route
    # before the one a request wants (rest_api/routes.py).
    app.include_router(agui_routes.router)  # AG-UI face (ui_bridge)
    for router in rest_routes.routers:  # REST face (rest_api)
        app.include_router(router)
    app.include_router(voice_routes.router)  # voice face: POST /voice/token (agents/voice)
    app.router.routes.insert(0, mcp_route)  # MCP face (mcp_server): served by the pipeline, listed here too
    return app
