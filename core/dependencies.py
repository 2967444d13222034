"""FastAPI dependencies that hand the lifespan's resources to route handlers (async: FastAPI runs a
plain function dependency in its thread pool, a hop per request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from citadel.core.registry import GraphRegistry
from citadel.core.runs import RunManager
from citadel.core.services import Services


async def get_services(request: Request) -> Services:
    return request.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_registry(request: Request) -> GraphRegistry:
    return request.state.registry  # type: ignore[no-any-return]


async def get_runs(request: Request) -> RunManager:
    return request.state.runs  # type: ignore[no-any-return]


RegistryDep = Annotated[GraphRegistry, Depends(get_registry)]
RunsDep = Annotated[RunManager, Depends(get_runs)]
