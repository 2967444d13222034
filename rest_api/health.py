"""`/health` (the process is up), `/health/ready` (each dependency), `/health/detailed` (the same,
with collections, runs in flight and the process's age: the plan's API) and `/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from citadel.core.dependencies import RunsDep, ServicesDep
from citadel.core.services import Services
from citadel.memory.database import ping
from citadel.tools.circuit_breaker import State
from citadel.tools.llm_router import LLMRouter

router = APIRouter(tags=["health"])
STARTED = time.monotonic()


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


PROBE_TIMEOUT = 3.0
"""Seconds a dependency may take to answer a readiness probe before it counts as down."""
LLM_HEALTH_MAX_AGE = 2.0
"""Readiness re-checks the LLM backends when their last health check is older than this."""


async def _probe(check: Callable[[], Awaitable[Any]], where: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await check()
    except TimeoutError:
        return {"status": "down", "where": where, "error": f"no answer within {PROBE_TIMEOUT:g} s"}
    except Exception as error:  # a probe reports any failure as `down`, with its reason
        return {"status": "down", "where": where, "error": f"{type(error).__name__}: {error}"[:300]}
    return {"status": "ok", "where": where, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _llm_checks(llm: LLMRouter | None) -> dict[str, dict[str, Any]]:
    """Each LLM backend by its health check (run now if the last one is stale) and its circuit: down
    when the check fails or the circuit is open, whatever the circuit's half-open state says."""
    if llm is None or not llm.backends:
        return {}
    health = await llm.fresh_health(LLM_HEALTH_MAX_AGE)
    checks: dict[str, dict[str, Any]] = {}
    for backend in llm.backends:
        healthy, detail = health[backend.name]
        state = llm.breakers[backend.name].state
        up = healthy and state is not State.OPEN
        status = ("ok" if state is State.CLOSED else "degraded") if up else "down"
        checks[f"llm:{backend.name}"] = {
            "status": status,
            "health": detail,
            "circuit": state.value,
            "models": backend.models,
        }
    return checks


async def _readiness(services: Services) -> tuple[str, dict[str, dict[str, Any]]]:
    """(overall status, checks): ready means the vector store and the database answer and, when any
    LLM backend is configured, at least one of them is reachable. A deployment without LLMs is ready
    without them."""
    settings = services.settings
    probes = {
        "vectors": _probe(services.vectors.ping, "qdrant server" if settings.qdrant_url else "local mode"),
        "cache": _probe(services.cache.ping, services.cache.name),
    }
    if services.engine is not None:
        engine = services.engine
        probes["database"] = _probe(lambda: ping(engine), "postgresql" if settings.database_url else "sqlite")
    # All at once: readiness answers within the slowest probe's bound, not the sum of them.
    *answers, llm = await asyncio.gather(*probes.values(), _llm_checks(services.llm))
    checks: dict[str, dict[str, Any]] = dict(zip(probes, answers, strict=True))
    for model in services.embeddings.models():
        states = services.embeddings.providers(model.name)
        up = [name for name, state in states if state is not State.OPEN]
        checks[f"embeddings:{model.name}"] = {
            "status": "ok" if len(up) == len(states) else ("degraded" if up else "down"),
            "providers": {name: state.value for name, state in states},
        }
    checks.update(llm)
    llm_down = bool(llm) and all(check["status"] == "down" for check in llm.values())
    essential_down = (
        checks["vectors"]["status"] == "down" or llm_down or checks.get("database", {}).get("status") == "down"
    )
    statuses = {c["status"] for c in checks.values()}
    overall = "down" if essential_down else ("degraded" if statuses != {"ok"} else "ok")
    return overall, checks


def _down(response: Response) -> None:
    response.status_code = 503
    response.headers["Retry-After"] = str(int(LLM_HEALTH_MAX_AGE + 1))


@router.get("/health/ready")
async def ready(services: ServicesDep, response: Response) -> dict[str, Any]:
    """Ready means: the vector store and the database answer and, when any LLM backend is configured,
    at least one of them is reachable. A deployment without LLMs is ready without them."""
    overall, checks = await _readiness(services)
    if overall == "down":
        _down(response)
    return {"status": overall, "checks": checks}


@router.get("/health/detailed")
async def detailed(services: ServicesDep, runs: RunsDep, response: Response) -> dict[str, Any]:
    """Readiness, plus what the process holds: collections, runs in flight, its age and version."""
    overall, checks = await _readiness(services)
    details: dict[str, Any] = {"collections": None, "runs_in_flight": None}
    if checks["vectors"]["status"] != "down":
        details["collections"] = [asdict(info) for info in await services.vectors.list_collections()]
    if checks.get("database", {}).get("status") != "down":
        details["runs_in_flight"] = await runs.store.count_active_runs()
    if overall == "down":
        _down(response)
    return {
        "status": overall,
        "checks": checks,
        **details,
        "version": version("citadel"),
        "uptime_seconds": round(time.monotonic() - STARTED, 1),
        "answer_mode": services.settings.answer_mode,
        "embedding_model": services.embeddings.default_model,
    }


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
