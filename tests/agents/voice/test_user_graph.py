"""Voice on a project's own graph (`CITADEL_VOICE_GRAPH` naming one of `examples/research_agent`),
in LiveKit's text-mode harness: the graph has none of Citadel's tags, and what is spoken is the text
of its AI messages, never its tool calls or tool results; its `interrupt()` is asked aloud and the
spoken yes resumes it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from citadel.agents.voice.conversation import Caller
from citadel.agents.voice.llm import SEARCHING
from citadel.settings import Settings
from tests.agents.voice.conftest import DEADLINE, spoken, text_session, thread_messages, voice_runtime

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "research_agent" / "langgraph.json"


def project_settings(voice_settings: Settings, graph: str) -> Settings:
    return voice_settings.model_copy(update={"config": EXAMPLE, "voice_graph": graph})


async def test_the_agents_answer_is_spoken_not_its_tool_calls(voice_settings: Settings) -> None:
    settings = project_settings(voice_settings, "research_agent")
    async with voice_runtime(settings) as runtime, text_session(settings, runtime, Caller("alice")) as opened:
        session, conversation = opened
        async with asyncio.timeout(DEADLINE):
            result = await session.run(user_input="How efficient are solar panels?")
        said = spoken(result)
        messages = await thread_messages(runtime, conversation)
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]  # the search call, its result, the answer
    # Its search call is announced (tool notices after 0 s here), then only the answer is spoken.
    assert said.startswith(SEARCHING)
    assert said.removeprefix(SEARCHING).strip() == messages[-1].text


async def test_an_interrupt_is_asked_and_answered_aloud(voice_settings: Settings) -> None:
    settings = project_settings(voice_settings, "publish")
    async with voice_runtime(settings) as runtime, text_session(settings, runtime, Caller("bob")) as opened:
        session, conversation = opened
        async with asyncio.timeout(DEADLINE):
            asked = spoken(await session.run(user_input="Tell me about wind power."))
        assert asked.endswith("Publish this draft? Please say yes or no.")
        async with asyncio.timeout(DEADLINE):
            answered = spoken(await session.run(user_input="Yes."))
        values: dict[str, Any] = await runtime.values("bob", conversation.thread_id)
    assert values["status"] == "published"
    assert answered == values["draft"]
