"""The REST face, one router: the OpenAI-compatible API, collections, the plan's `/api/v1` API, the
LangGraph Platform threads/runs/assistants API, workflows, health and admin. The app factory mounts it."""

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

router = APIRouter()
for part in (admin, health, openai_compat, collections, plan_api, assistants, threads, runs, workflows):
    router.include_router(part.router)
