"""The REST face, one router: the OpenAI-compatible API, collections, the LangGraph Platform
threads/runs/assistants API, workflows, health and admin. The app factory mounts it."""

from __future__ import annotations

from fastapi import APIRouter

from citadel.rest_api import admin, assistants, collections, health, openai_compat, runs, threads, workflows

router = APIRouter()
for part in (admin, health, openai_compat, collections, assistants, threads, runs, workflows):
    router.include_router(part.router)
