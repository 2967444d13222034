"""The REST face's routers: the OpenAI-compatible API, collections, the plan's `/api/v1` API, the
LangGraph Platform threads/runs/assistants API, workflows, health and admin. The app factory mounts
each on the app itself, the runs' and threads' first: FastAPI matches a request against every route
before the one it wants, once per level of nested routers and again to handle it (about 100 us a
level for a run's path when these were one router of routers)."""

from __future__ import annotations

from fastapi import APIRouter

from citadel.rest_api import (
    admin,
    assistants,
    collections,
    health,
    openai_compat,
    plan_api,
    runs,
    threads,
    workflows,
)

routers: tuple[APIRouter, ...] = tuple(
    part.router for part in (runs, threads, assistants, openai_compat, health, admin, collections, plan_api, workflows)
)
