"""Voice tests run the voice agent beside a running Citadel server on the embedded defaults (MiniLM,
SmolLM2, local Qdrant, SQLite app tables and checkpoints): the server is the app under uvicorn,
reached over real HTTP, and the voice side holds only what a job process holds, the server's
thread/run API (`ServerAPI`), with LiveKit's own `AgentSession`.

`voice_runtime(settings, tool_model=...)` starts that server, with an optional scripted tool-calling
model in its graphs (standing in for a capable Ollama backend; the embedded model cannot call tools).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, convert_to_messages

from citadel.agents.deps import AgentDeps
from citadel.memory.app_store import AppStore
from citadel.memory.database import create_engine
from citadel.settings import Settings
from tests.graphs.run_inputs import DOCS
from tests.live_server import LiveServer

pytest.importorskip("livekit.agents", reason="the voice extra is not installed (uv sync --extra voice)")

from citadel.agents.voice.agent import build_session
from citadel.agents.voice.conversation import Caller, Conversation, open_conversation
from citadel.agents.voice.server_api import ACT_FOR_HEADER, ServerAPI

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


@dataclass
class VoiceRuntime:
    """The running server, the API client a voice job holds, and what the tests read over HTTP."""

    settings: Settings
    url: str
    api: ServerAPI
    http: httpx.AsyncClient

    async def get(self, user: str, path: str) -> Any:
        response = await self.http.get(path, headers={ACT_FOR_HEADER: user})
        response.raise_for_status()
        return response.json()

    async def post(self, user: str, path: str, body: dict[str, Any]) -> Any:
        response = await self.http.post(path, json=body, headers={ACT_FOR_HEADER: user})
        response.raise_for_status()
        return response.json()

    async def thread(self, user: str, thread_id: str) -> dict[str, Any]:
        return await self.get(user, f"/threads/{thread_id}")  # type: ignore[no-any-return]

    async def values(self, user: str, thread_id: str) -> dict[str, Any]:
        return (await self.get(user, f"/threads/{thread_id}/state"))["values"]  # type: ignore[no-any-return]

    async def mark_busy(self, thread_id: str) -> bool:
        """As a run started elsewhere (say, the chat page) holds the thread: straight in the app tables."""
        engine = create_engine(self.settings)
        try:
            async with AppStore(engine) as store:
                return await store.try_mark_busy(thread_id)
        finally:
            await engine.dispose()


@contextlib.contextmanager
def _server(settings: Settings, tool_model: Callable[[], BaseChatModel | None] | None) -> Iterator[LiveServer]:
    adjust: Callable[[AgentDeps], AgentDeps] | None = None
    if tool_model is not None:
        adjust = lambda deps: replace(deps, tool_model=tool_model)  # noqa: E731
    with LiveServer.start(settings, 120, adjust_deps=adjust) as server:
        documents = [{"id": d.id, "text": d.text, "metadata": d.metadata} for d in DOCS]
        with httpx.Client(base_url=server.url, timeout=120) as http:
            http.post("/v1/collections", json={"name": "docs"}).raise_for_status()
            http.post("/v1/collections/docs/points", json={"documents": documents}).raise_for_status()
        yield server


@contextlib.asynccontextmanager
async def voice_runtime(
    settings: Settings, *, tool_model: Callable[[], BaseChatModel | None] | None = None
) -> AsyncIterator[VoiceRuntime]:
    """A server on the embedded defaults with the `docs` collection, and a voice job's client of it."""
    with _server(settings, tool_model) as server:
        api = ServerAPI(server.url)
        async with httpx.AsyncClient(base_url=server.url, timeout=DEADLINE) as http:
            try:
                yield VoiceRuntime(settings, server.url, api, http)
            finally:
                await api.aclose()


@pytest.fixture
async def runtime(voice_settings: Settings) -> AsyncIterator[VoiceRuntime]:
    async with voice_runtime(voice_settings) as opened:
        yield opened


@contextlib.asynccontextmanager
async def text_session(
    settings: Settings, runtime: VoiceRuntime, caller: Caller, **options: Any
) -> AsyncIterator[tuple[Any, Conversation]]:
    """A started text-mode `AgentSession` on the caller's conversation (LiveKit's test harness)."""
    conversation = await open_conversation(runtime.api, caller, settings.voice_graph)
    session, agent = build_session(settings, runtime.api, conversation, tool_notice_seconds=0, **options)
    async with session:
        await session.start(agent)
        yield session, conversation


async def thread_messages(runtime: VoiceRuntime, conversation: Conversation) -> list[BaseMessage]:
    values = await runtime.values(conversation.user_id, conversation.thread_id)
    return convert_to_messages(values.get("messages", []))


def spoken(result: Any) -> str:
    """The one assistant message a run produced (asserting there is exactly one), as text."""
    message = result.expect.next_event().is_message(role="assistant")
    result.expect.no_more_events()
    return str(message.event().item.text_content)
