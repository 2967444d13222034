"""Keeping an AG-UI stream lean, between the agent and the wire.

- State: ag-ui-langgraph sends the whole state after every node; this sends what changed, as a
  STATE_DELTA (an RFC 6902 JSON Patch against what the client already has: the state it sent with
  its run, then each state sent since), an unchanged state not at all, and a STATE_SNAPSHOT only
  when the client sent no state to patch (a restore always sends one).
- Text (`CITADEL_AGUI_TEXT_BATCH_MS`, the window): a message's first delta goes at once, and so
  does a delta coming a window or more after the message's last one (a slow model streams token
  by token); deltas coming sooner are held and joined, and go as one TEXT_MESSAGE_CONTENT when the
  window ends (whether or not another event comes), or before any other event (the message's END
  among them). 0 sends one TEXT_MESSAGE_CONTENT per token.
- Encoding: `data: <json>` with camelCase keys, unset fields left out; the events ready together
  go to the wire together (`LeanStream.batches`, `sse_frames`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import jsonpatch
from ag_ui.core import BaseEvent, EventType, StateDeltaEvent, TextMessageContentEvent

READ_AHEAD = 64
"""Events the agent may run ahead of the wire while a text delta is held."""


def encode(event: BaseEvent) -> str:
    # The event models leave out their own unset fields; `exclude_none` would also strip the nulls
    # inside a payload (a JSON Patch `"value": null`, a state key set to null).
    return event.model_dump_json(by_alias=True)


def sse_frames(batch: list[BaseEvent]) -> bytes:
    """SSE frames, one `data:` line each (JSON has no raw line breaks), ended by a blank line
    written as "\\n\\n" (what @ag-ui/client splits events on)."""
    return "".join([f"data: {encode(event)}\n\n" for event in batch]).encode()


@dataclass
class _End:
    error: Exception | None = None


async def _read(events: AsyncIterator[BaseEvent], queue: asyncio.Queue[BaseEvent | _End]) -> None:
    try:
        async for event in events:
            await queue.put(event)
    except Exception as error:  # handed to the reader of the queue, raised there
        await queue.put(_End(error))
    else:
        await queue.put(_End())


class LeanStream:
    def __init__(self, text_batch_ms: float = 0.0, client_state: Any = None) -> None:
        """`client_state`: the state the client sent with its run (what a delta may patch)."""
        self._window = text_batch_ms / 1000
        self._state: Any = copy.deepcopy(client_state) if isinstance(client_state, dict) else None
        self._held: TextMessageContentEvent | None = None
        self._due = 0.0
        """When the held delta goes out: its message's last delta sent, plus the window."""
        self._last_sent: dict[str, float] = {}
        self._queue: asyncio.Queue[BaseEvent | _End] | None = None
        self._reader: asyncio.Task[None] | None = None

    def start(self, events: AsyncIterator[BaseEvent]) -> None:
        """Read the agent from now on, in a task of its own, rather than from the first `batches()`:
        its run is accepted and started while the response is still being set up. `close()` stops
        it, should the response never be sent."""
        self._queue = asyncio.Queue(READ_AHEAD)
        self._reader = asyncio.create_task(_read(events, self._queue))

    async def close(self) -> None:
        """Stop the agent (and with it the run), if it still goes on."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def __call__(self, events: AsyncIterator[BaseEvent]) -> AsyncIterator[BaseEvent]:
        async for batch in self.batches(events):
            for event in batch:
                yield event

    async def batches(self, events: AsyncIterator[BaseEvent] | None = None) -> AsyncIterator[list[BaseEvent]]:
        """The lean events in bursts: with a reader task (a window, or `start`), each burst is every
        event ready when the wire can take one (what the agent produced from one graph event, a
        message's START with its first delta), so that it goes out as one write, one compressed
        block, one read. `events`: the agent, unless `start` was given it."""
        if self._reader is None:
            assert events is not None, "batches() needs the agent's events, or start() first"
            if self._window <= 0:
                async for event in events:
                    ready = list(self._lean(event))
                    if ready:
                        yield ready
                return
            # The agent runs in a task of its own, so that a held delta goes out when its window
            # ends even while the agent has nothing new.
            self.start(events)
        queue = self._queue
        assert queue is not None
        try:
            while True:
                if self._held is None:
                    item = await queue.get()
                else:
                    try:
                        item = await asyncio.wait_for(queue.get(), max(0.0, self._due - time.monotonic()))
                    except TimeoutError:  # the window ended with nothing new: the held delta goes
                        yield [self._release()]
                        continue
                batch: list[BaseEvent] = []
                while not isinstance(item, _End):
                    batch.extend(self._lean(item))
                    if queue.empty():
                        break
                    item = queue.get_nowait()
                else:  # the agent is done
                    assert isinstance(item, _End)
                    if self._held is not None:
                        batch.append(self._release())
                    if batch:
                        yield batch
                    if item.error is not None:
                        raise item.error
                    return
                if batch:
                    yield batch
        finally:
            await self.close()  # the client went away: the agent stops (and with it the run)

    def _lean(self, event: BaseEvent) -> Iterator[BaseEvent]:
        if event.type == EventType.TEXT_MESSAGE_CONTENT and self._window > 0:
            yield from self._text(event)  # type: ignore[arg-type]
            return
        if self._held is not None:
            yield self._release()
        lean = self._lean_state(event)
        if lean is not None:
            yield lean

    def _text(self, event: TextMessageContentEvent) -> Iterator[TextMessageContentEvent]:
        if self._held is not None:
            if self._held.message_id == event.message_id:
                self._held.delta += event.delta  # goes when the window ends
                return
            yield self._release()
        now = time.monotonic()
        last = self._last_sent.get(event.message_id)
        if last is None or now - last >= self._window:
            self._last_sent[event.message_id] = now
            yield event
        else:
            self._held, self._due = event.model_copy(), last + self._window

    def _release(self) -> TextMessageContentEvent:
        held, self._held = self._held, None
        assert held is not None
        self._last_sent[held.message_id] = time.monotonic()
        return held

    def _lean_state(self, event: BaseEvent) -> BaseEvent | None:
        if event.type == EventType.STATE_SNAPSHOT:
            snapshot = event.snapshot  # type: ignore[attr-defined]
            previous, self._state = self._state, copy.deepcopy(snapshot)
            if previous is None or not isinstance(previous, dict) or not isinstance(snapshot, dict):
                return event
            patch = jsonpatch.make_patch(previous, snapshot).patch
            return StateDeltaEvent(type=EventType.STATE_DELTA, delta=patch) if patch else None
        elif event.type == EventType.STATE_DELTA and self._state is not None:
            self._state = jsonpatch.apply_patch(self._state, event.delta)  # type: ignore[attr-defined]
        return event
