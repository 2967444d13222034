"""`/health` (the process is up), `/health/ready` (each dependency) and `/metrics` (Prometheus)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from citadel.core.dependencies import ServicesDep
from citadel.memory.database import ping
from citadel.tools.circuit_breaker import State

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _probe(check: Callable[[], Awaitable[Any]], where: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await check()
    except Exception as error:  # a probe reports any failure as `down`, with its reason
        return {"status": "down", "where": where, "error": f"{type(error).__name__}: {error}"[:300]}
    return {"status": "ok", "where": where, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


@router.get("/health/ready")
async def ready(services: ServicesDep, response: Response) -> dict[str, Any]:
    settings = services.settings
    checks: dict[str, dict[str, Any]] = {}
    checks["vectors"] = await _probe(services.vectors.ping, "qdrant server" if settings.qdrant_url else "local mode")
    checks["cache"] = await _probe(services.cache.ping, services.cache.name)
    if services.engine is not None:
        engine = services.engine
        checks["database"] = await _probe(lambda: ping(engine), "postgresql" if settings.database_url else "sqlite")
    for model in services.embeddings.models():
        states = services.embeddings.providers(model.name)
        up = [name for name, state in states if state is not State.OPEN]
        checks[f"embeddings:{model.name}"] = {
            "status": "ok" if len(up) == len(states) else ("degraded" if up else "down"),
            "providers": {name: state.value for name, state in states},
        }
    for backend in services.llm.backends:
        healthy, detail = services.llm.health[backend.name]
        state = services.llm.breakers[backend.name].state
        status = (
            "ok"
            if healthy and state is State.CLOSED
            else ("down" if not healthy and state is State.OPEN else "degraded")
        )
        checks[f"llm:{backend.name}"] = {
            "status": status,
            "health": detail,
            "circuit": state.value,
            "models": backend.models,
        }
    llm_up = any(checks[f"llm:{b.name}"]["status"] != "down" for b in services.llm.backends)
    essential_down = (
        checks["vectors"]["status"] == "down" or not llm_up or checks.get("database", {}).get("status") == "down"
    )
    statuses = {c["status"] for c in checks.values()}
    overall = "down" if essential_down else ("degraded" if statuses != {"ok"} else "ok")
    if overall == "down":
        response.status_code = 503
    return {"status": overall, "checks": checks}


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
