"""FastAPI dependencies that hand the lifespan's resources to route handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from runtime.services import Services


def get_services(request: Request) -> Services:
    return request.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]
