"""Voice tests run Citadel's real graphs on the embedded defaults (MiniLM, SmolLM2, local Qdrant,
SQLite app tables and checkpoints) through the real `RunManager`, with LiveKit's own `AgentSession`.

`voice_runtime(tool_model=...)` opens what the worker opens per job, with an optional scripted
tool-calling model (standing in for a capable Ollama backend; the embedded model cannot call tools).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel

from citadel.core.registry import build_registry
from citadel.core.runs import RunManager
from citadel.runtime.services import open_services
from citadel.settings import Settings
from tests.graphs.run_inputs import DOCS
from tests.live_server import migrate_database

pytest.importorskip("livekit.agents", reason="the voice extra is not installed (uv sync --extra voice)")

from citadel.agents.voice.agent import build_session
from citadel.agents.voice.conversation import Caller, Conversation, open_conversation
from citadel.core.services import Core

DEADLINE = 120.0
"""Seconds any one voice turn may take on this 2-core machine (the tiny LLM, Whisper on the CPU)."""


@pytest.fixture
def voice_settings(make_settings: Any) -> Settings:
    return make_settings(  # type: ignore[no-any-return]
        llm_max_tokens=24,
        analyst_approval_sections=1,
        livekit_url="ws://127.0.0.1:7880",
        livekit_api_key="devkey",
        livekit_api_secret="secret-of-at-least-thirty-two-characters",
    )


@contextlib.asynccontextmanager
async def voice_runtime(
    settings: Settings, *, tool_model: Callable[[], BaseChatModel | None] | None = None
) -> AsyncIterator[Core]:
    """What a voice job opens (`open_core(settings, recovery=False)`), with the tool model swappable."""
    await migrate_database(settings)
    async with open_services(settings, state=True) as services:
        assert services.persistence is not None
        assert services.app_store is not None
        deps = services.agent_deps()
        if tool_model is not None:
            deps = replace(deps, tool_model=tool_model)
        await services.vectors.create_collection("docs")
        await services.vectors.upsert("docs", DOCS)
        registry = build_registry(deps, services.persistence.checkpointer, services.persistence.store)
        runs = RunManager(settings, services.app_store, registry)
        try:
            yield Core(services, registry, runs)
        finally:
            await runs.aclose()


@pytest.fixture
async def runtime(voice_settings: Settings) -> AsyncIterator[Core]:
    async with voice_runtime(voice_settings) as opened:
        yield opened


@contextlib.asynccontextmanager
async def text_session(
    settings: Settings, runtime: Core, caller: Caller, **options: Any
) -> AsyncIterator[tuple[Any, Conversation]]:
    """A started text-mode `AgentSession` on the caller's conversation (LiveKit's test harness)."""
    conversation = await open_conversation(runtime.runs, caller, settings.voice_graph)
    session, agent = build_session(settings, runtime.runs, conversation, tool_notice_seconds=0, **options)
    async with session:
        await session.start(agent)
        yield session, conversation


async def thread_messages(runtime: Core, conversation: Conversation) -> list[Any]:
    graph = runtime.registry.get(conversation.graph).graph
    state = await graph.aget_state({"configurable": {"thread_id": conversation.thread_id}})
    return list(state.values.get("messages", []))


def spoken(result: Any) -> str:
    """The one assistant message a run produced (asserting there is exactly one), as text."""
    message = result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()
    return str(message.event().item.text_content)
