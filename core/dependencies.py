"""FastAPI dependencies that hand the lifespan's resources to route handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from citadel.core.registry import GraphRegistry
from citadel.core.runs import RunManager
from citadel.core.services import Services


async def get_services(request: Request) -> Services:
    return request.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


def get_registry(request: Request) -> GraphRegistry:
    return request.state.registry  # type: ignore[no-any-return]


def get_runs(request: Request) -> RunManager:
    return request.state.runs  # type: ignore[no-any-return]


RegistryDep = Annotated[GraphRegistry, Depends(get_registry)]
RunsDep = Annotated[RunManager, Depends(get_runs)]
