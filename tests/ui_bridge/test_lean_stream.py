"""The text window of `LeanStream` (`CITADEL_AGUI_TEXT_BATCH_MS`) on scripted event sources: a
message's first delta goes at once, deltas coming within the window are joined and go when it ends
(whether or not anything else comes) or before the next other event, a delta after a pause goes at
once, and a client going away stops the agent; the events ready together go as one burst, and an
agent started before its response is sent is stopped if the response never is. The HTTP tests
(`test_agui.py`) run with the default window; these pin its behaviour without depending on a
model's speed. Every wait has a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ag_ui.core import BaseEvent, EventType, TextMessageContentEvent, TextMessageEndEvent, TextMessageStartEvent
from sse_starlette import ServerSentEvent

from citadel.settings import Settings
from citadel.ui_bridge.stream import LeanStream, encode, sse_frames

DEADLINE = 30.0
LONG_WINDOW_MS = 1000.0  # far longer than a scripted source takes between two deltas
SHORT_WINDOW_MS = 20.0


def start(message_id: str = "m") -> TextMessageStartEvent:
    return TextMessageStartEvent(type=EventType.TEXT_MESSAGE_START, message_id=message_id, role="assistant")


def delta(text: str, message_id: str = "m") -> TextMessageContentEvent:
    return TextMessageContentEvent(type=EventType.TEXT_MESSAGE_CONTENT, message_id=message_id, delta=text)


def end(message_id: str = "m") -> TextMessageEndEvent:
    return TextMessageEndEvent(type=EventType.TEXT_MESSAGE_END, message_id=message_id)


async def script(*events: BaseEvent) -> AsyncIterator[BaseEvent]:
    for event in events:
        yield event


async def collect(stream: AsyncIterator[BaseEvent]) -> list[tuple[str, str]]:
    async with asyncio.timeout(DEADLINE):
        return [(e.type.value, getattr(e, "delta", "")) async for e in stream]


def test_the_window_is_on_by_default() -> None:
    assert Settings(_env_file=None).agui_text_batch_ms > 0  # type: ignore[call-arg]


async def test_the_first_delta_goes_at_once_and_the_rest_of_the_window_together() -> None:
    lean = LeanStream(LONG_WINDOW_MS)
    events = await collect(lean(script(start(), delta("Hel"), delta("lo"), delta(" there"), end())))
    assert events == [
        ("TEXT_MESSAGE_START", ""),
        ("TEXT_MESSAGE_CONTENT", "Hel"),
        ("TEXT_MESSAGE_CONTENT", "lo there"),
        ("TEXT_MESSAGE_END", ""),
    ]


async def test_each_message_has_its_first_delta_sent_at_once() -> None:
    lean = LeanStream(LONG_WINDOW_MS)
    source = script(start("a"), delta("A1", "a"), delta("A2", "a"), start("b"), delta("B1", "b"), delta("B2", "b"))
    events = await collect(lean(source))
    assert [d for kind, d in events if kind == "TEXT_MESSAGE_CONTENT"] == ["A1", "A2", "B1", "B2"]


async def test_held_text_goes_when_its_window_ends_while_the_agent_is_quiet() -> None:
    more = asyncio.Event()

    async def agent() -> AsyncIterator[BaseEvent]:
        yield start()
        yield delta("one")
        yield delta(" two")
        yield delta(" three")
        await more.wait()  # a model thinking: nothing comes until the client has the held text
        yield end()

    stream = LeanStream(SHORT_WINDOW_MS)(agent())
    async with asyncio.timeout(DEADLINE):
        assert (await anext(stream)).type == EventType.TEXT_MESSAGE_START
        assert (await anext(stream)).delta == "one"  # type: ignore[attr-defined]
        assert (await anext(stream)).delta == " two three"  # type: ignore[attr-defined]
        more.set()
        assert (await anext(stream)).type == EventType.TEXT_MESSAGE_END
        with pytest.raises(StopAsyncIteration):
            await anext(stream)


async def test_a_slow_model_streams_token_by_token() -> None:
    async def slow() -> AsyncIterator[BaseEvent]:
        yield start()
        for token in ("a", "b", "c"):
            yield delta(token)
            await asyncio.sleep(2 * SHORT_WINDOW_MS / 1000)  # a pause longer than the window
        yield end()

    events = await collect(LeanStream(SHORT_WINDOW_MS)(slow()))
    assert [d for kind, d in events if kind == "TEXT_MESSAGE_CONTENT"] == ["a", "b", "c"]


async def test_a_zero_window_sends_one_event_per_delta() -> None:
    events = await collect(LeanStream(0)(script(start(), delta("a"), delta("b"), end())))
    assert [d for kind, d in events if kind == "TEXT_MESSAGE_CONTENT"] == ["a", "b"]


async def test_the_client_going_away_stops_the_agent() -> None:
    stopped = asyncio.Event()

    async def agent() -> AsyncIterator[BaseEvent]:
        try:
            yield start()
            yield delta("first")
            await asyncio.Event().wait()  # a run that would go on
        finally:
            stopped.set()

    stream = LeanStream(LONG_WINDOW_MS)(agent())
    async with asyncio.timeout(DEADLINE):
        await anext(stream)
        await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        await stopped.wait()


async def test_an_agent_error_reaches_the_stream_after_the_text_held() -> None:
    async def failing() -> AsyncIterator[BaseEvent]:
        yield start()
        yield delta("a")
        yield delta("b")
        raise RuntimeError("the agent broke")

    received: list[tuple[str, str]] = []

    async def read() -> None:
        async with asyncio.timeout(DEADLINE):
            async for event in LeanStream(LONG_WINDOW_MS)(failing()):
                received.append((event.type.value, getattr(event, "delta", "")))

    with pytest.raises(RuntimeError, match="the agent broke"):
        await read()
    assert received == [("TEXT_MESSAGE_START", ""), ("TEXT_MESSAGE_CONTENT", "a"), ("TEXT_MESSAGE_CONTENT", "b")]


async def test_events_ready_together_go_as_one_burst() -> None:
    more = asyncio.Event()

    async def agent() -> AsyncIterator[BaseEvent]:
        yield start()
        yield delta("Hel")  # a message's START and first delta come from one model chunk
        await more.wait()
        yield delta("lo")
        yield end()

    bursts = LeanStream(LONG_WINDOW_MS).batches(agent())
    async with asyncio.timeout(DEADLINE):
        first = await anext(bursts)
        assert [(e.type, getattr(e, "delta", "")) for e in first] == [
            (EventType.TEXT_MESSAGE_START, ""),
            (EventType.TEXT_MESSAGE_CONTENT, "Hel"),
        ]
        more.set()
        rest = [e async for burst in bursts for e in burst]
    assert [(e.type, getattr(e, "delta", "")) for e in rest] == [
        (EventType.TEXT_MESSAGE_CONTENT, "lo"),
        (EventType.TEXT_MESSAGE_END, ""),
    ]


async def test_a_started_stream_stops_its_agent_when_closed_before_it_is_read() -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def agent() -> AsyncIterator[BaseEvent]:
        try:
            started.set()
            yield start()
            await asyncio.Event().wait()  # a run that would go on
        finally:
            stopped.set()

    lean = LeanStream(0)
    lean.start(agent())  # the route starts the agent before its response is sent
    async with asyncio.timeout(DEADLINE):
        await started.wait()
        await lean.close()  # the response was never sent
        await stopped.wait()


async def test_a_started_stream_sends_what_its_agent_made_meanwhile() -> None:
    lean = LeanStream(0)
    lean.start(script(start(), delta("a"), delta("b"), end()))
    async with asyncio.timeout(DEADLINE):
        events = [e async for burst in lean.batches() for e in burst]
    assert [getattr(e, "delta", e.type.value) for e in events] == ["TEXT_MESSAGE_START", "a", "b", "TEXT_MESSAGE_END"]


def test_a_burst_is_the_sse_frames_of_its_events_one_after_another() -> None:
    events: list[BaseEvent] = [start(), delta('line\none "quoted"'), end()]
    one_by_one = b"".join(ServerSentEvent(data=encode(e), sep="\n").encode() for e in events)
    assert sse_frames(events) == one_by_one
