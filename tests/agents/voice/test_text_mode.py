"""The voice agent in LiveKit's own test harness, text mode (`session.run(user_input=...)` and its
`expect` assertions), with the assistant graph as its LLM, run by a Citadel server on the embedded
defaults beside it (the voice side holds only the server's thread/run API)."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from livekit.agents import llm

from citadel.agents.voice.conversation import Caller
from citadel.agents.voice.llm import BUSY, SEARCHING, UNCLEAR, WORKING
from citadel.errors import CitadelError
from citadel.settings import Settings
from tests.agents.scripted_model import ScriptedChatModel, tool_call
from tests.agents.voice.conftest import DEADLINE, spoken, text_session, thread_messages, voice_runtime

pytestmark = pytest.mark.slow


async def test_it_answers_with_the_graphs_answer(voice_settings: Settings, runtime) -> None:  # type: ignore[no-untyped-def]
    async with text_session(voice_settings, runtime, Caller("alice")) as (session, conversation):
        async with asyncio.timeout(DEADLINE):
            result = await session.run(user_input="What is the capital of France?")
    said = spoken(result)
    messages = await thread_messages(runtime, conversation)
    assert [m.type for m in messages] == ["human", "ai"]
    assert messages[0].text == "What is the capital of France?"
    assert said
    assert said == messages[1].text
    thread = await runtime.thread("alice", conversation.thread_id)  # alice's: found when acting for her
    metadata = thread["metadata"]
    assert metadata.pop("graph_id") == "assistant"
    assert metadata.pop("assistant_id") == "assistant"
    assert thread["status"] == "idle"
    assert metadata == {"source": "voice"}


async def test_only_the_final_answer_is_spoken(voice_settings: Settings, runtime) -> None:  # type: ignore[no-untyped-def]
    # "ok" leaves the semantic router unsure: the supervisor asks the LLM (a call tagged internal,
    # whose tokens stream like any other) before the generalist answers.
    async with text_session(voice_settings, runtime, Caller("alice")) as (session, conversation):
        async with asyncio.timeout(DEADLINE):
            result = await session.run(user_input="ok")
    said = spoken(result)
    state = await runtime.values("alice", conversation.thread_id)
    assert "LLM" in state["route_reason"], state["route_reason"]  # the supervisor did call the LLM
    assert said == (await thread_messages(runtime, conversation))[-1].text


async def test_a_search_is_announced_then_answered_with_sources(voice_settings: Settings, runtime) -> None:  # type: ignore[no-untyped-def]
    async with text_session(voice_settings, runtime, Caller("alice")) as (session, conversation):
        async with asyncio.timeout(DEADLINE):
            result = await session.run(user_input="What do my documents say about solar panels?")
    said = spoken(result)
    answer = (await thread_messages(runtime, conversation))[-1].text
    assert said.startswith(SEARCHING)
    # The answer as streamed: the researcher adds a sources line to the stored answer when the
    # model cited none, and that line is for reading, not for hearing.
    assert said.removeprefix(SEARCHING).strip()
    assert answer.startswith(said.removeprefix(SEARCHING).strip())


async def test_a_tool_call_is_announced_and_only_the_final_answer_spoken(voice_settings: Settings) -> None:
    model = ScriptedChatModel(
        responses=[tool_call("embed_texts", {"texts": ["hello world"]}), AIMessage("I embedded it: 384 numbers.")]
    )
    async with (
        voice_runtime(voice_settings, tool_model=lambda: model) as runtime,
        text_session(voice_settings, runtime, Caller("alice")) as (session, conversation),
    ):
        async with asyncio.timeout(DEADLINE):
            result = await session.run(user_input="Hi there! How are you doing?")
        said = spoken(result)
        messages = await thread_messages(runtime, conversation)
    assert said == f"{WORKING} I embedded it: 384 numbers."
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert isinstance(messages[2], ToolMessage)
    assert messages[2].name == "embed_texts"
    assert '"dims": 384' in messages[2].text


async def test_a_made_up_citation_is_never_spoken(voice_settings: Settings) -> None:
    """A capable backend (a scripted model) citing a source the search did not find: the voice face
    speaks the answer without it (`tests/agents/test_verified_citations.py` covers the other faces)."""
    model = ScriptedChatModel(responses=[AIMessage("Panels convert about 20 percent [solar-101] [Solar-102].")])
    async with (
        voice_runtime(voice_settings, tool_model=lambda: model) as runtime,
        text_session(voice_settings, runtime, Caller("alice")) as (session, conversation),
    ):
        async with asyncio.timeout(DEADLINE):
            result = await session.run(user_input="What do my documents say about solar panel efficiency?")
        said = spoken(result)
        answer = (await thread_messages(runtime, conversation))[-1].text
    assert "Solar-102" not in said
    assert "Solar-102" not in answer
    assert "[solar-101]" in said


async def test_the_thread_persists_across_two_sessions(voice_settings: Settings, runtime) -> None:  # type: ignore[no-untyped-def]
    async with text_session(voice_settings, runtime, Caller("alice")) as (session, first):
        async with asyncio.timeout(DEADLINE):
            said = spoken(await session.run(user_input="Please remember that my cat is called Tom."))
    assert said == "Got it: I'll remember that your cat is called Tom."

    # A second session (say, tomorrow's call) on the same thread, as the token's metadata names it.
    async with text_session(voice_settings, runtime, Caller("alice", thread_id=first.thread_id)) as (session, second):
        assert second.thread_id == first.thread_id
        async with asyncio.timeout(DEADLINE):
            said = spoken(await session.run(user_input="Remember that I live in Lyon."))
    assert said == "Got it: I'll remember that you live in Lyon."
    messages = await thread_messages(runtime, second)
    assert [m.text for m in messages if m.type == "human"] == [
        "Please remember that my cat is called Tom.",
        "Remember that I live in Lyon.",
    ]
    assert len(messages) == 4
    # The thread is alice's, on every face: listed for her, and refused to anyone else.
    threads = await runtime.post("alice", "/threads/search", {})
    assert [t["thread_id"] for t in threads] == [first.thread_id]
    with pytest.raises(CitadelError):
        async with text_session(voice_settings, runtime, Caller("bob", thread_id=first.thread_id)):
            pass


async def test_an_approval_is_asked_aloud_and_answered_by_voice(voice_settings: Settings, runtime) -> None:  # type: ignore[no-untyped-def]
    document = (
        "Please analyse this document.\n\n# Costs\nThe project costs 2 million euros over three years.\n\n"
        "# Risks\nThe main risk is a late delivery of the turbines."
    )
    async with text_session(voice_settings, runtime, Caller("alice")) as (session, conversation):
        async with asyncio.timeout(DEADLINE):
            question = spoken(await session.run(user_input=document))
            assert question.startswith("The document has 2 sections")
            assert question.endswith("Please say yes or no.")
            assert conversation.pending_approval is not None

            unclear = spoken(await session.run(user_input="Hmm, what was that about?"))
            assert unclear.startswith(UNCLEAR)
            assert unclear.endswith("Please say yes or no.")

            report = spoken(await session.run(user_input="Yes, go ahead."))
    messages = await thread_messages(runtime, conversation)
    assert conversation.pending_approval is None
    assert report == messages[-1].text  # the merged report, not the per-section findings behind it
    assert report.startswith("# Analysis report (2 sections)")
    assert [m.text for m in messages if m.type == "human"] == [document]  # "yes" resumed; it is no turn


async def test_a_thread_paused_in_chat_asks_again_when_voice_joins(voice_settings: Settings, runtime) -> None:  # type: ignore[no-untyped-def]
    document = "Please analyse this document.\n\n# One\nThe first part.\n\n# Two\nThe second part."
    body = {
        "assistant_id": "assistant",
        "if_not_exists": "create",
        "input": {"messages": [{"role": "user", "content": document}]},
    }
    async with asyncio.timeout(DEADLINE):
        paused = await runtime.post("alice", "/threads/chat-thread/runs/wait", body)  # as the chat page does
    assert paused["__interrupt__"]
    caller = Caller("alice", thread_id="chat-thread")
    async with text_session(voice_settings, runtime, caller) as (session, conversation):
        assert conversation.pending_approval is not None
        async with asyncio.timeout(DEADLINE):
            said = spoken(await session.run(user_input="No, don't."))
        asked = [m.text_content for m in session.history.messages() if m.role == "assistant"]
    assert asked[0] is not None
    assert asked[0].startswith("The document has 2 sections")
    assert said.startswith("Understood: I did not analyse the document")


async def test_a_busy_thread_is_said_so(voice_settings: Settings, runtime) -> None:  # type: ignore[no-untyped-def]
    async with text_session(voice_settings, runtime, Caller("alice")) as (session, conversation):
        assert await runtime.mark_busy(conversation.thread_id)  # a chat run holds it
        async with asyncio.timeout(DEADLINE):
            said = spoken(await session.run(user_input="What time is it?"))
    assert said == BUSY


async def test_barge_in_cancels_the_run(voice_settings: Settings, runtime) -> None:  # type: ignore[no-untyped-def]
    async with text_session(voice_settings, runtime, Caller("alice")) as (session, conversation):
        graph_llm = session.current_agent.llm
        chat = llm.ChatContext()
        chat.add_message(role="user", content="Tell me a long story about the sea.")
        async with asyncio.timeout(DEADLINE):
            stream = graph_llm.chat(chat_ctx=chat)
            first = await anext(aiter(stream))  # the answer has started...
            assert first.delta is not None
            assert first.delta.content
            await stream.aclose()  # ...and the user talks over it
            runs = await runtime.get("alice", f"/threads/{conversation.thread_id}/runs")
            assert [r["status"] for r in runs] == ["interrupted"]
            thread = await runtime.thread("alice", conversation.thread_id)
            assert thread["status"] == "idle"  # free for the user's next turn
            said = spoken(await session.run(user_input="Please remember that I like short stories."))
    assert said == "Got it: I'll remember that you like short stories."
