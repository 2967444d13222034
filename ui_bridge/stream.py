"""Keeping an AG-UI stream lean, between the agent and the wire.

- State: ag-ui-langgraph sends the whole state after every node; this sends what changed, as a
  STATE_DELTA (an RFC 6902 JSON Patch against what the client already has: the state it sent with
  its run, then each state sent since), an unchanged state not at all, and a STATE_SNAPSHOT only
  when the client sent no state to patch (a restore always sends one).
- Text: with `CITADEL_AGUI_TEXT_BATCH_MS` > 0, deltas that arrive within that many milliseconds of
  the last one sent are joined into one TEXT_MESSAGE_CONTENT (a message's first delta always goes
  at once, so the time to the first token is unchanged).
- Encoding: `data: <json>` with camelCase keys, unset fields left out.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jsonpatch
from ag_ui.core import BaseEvent, EventType, StateDeltaEvent, TextMessageContentEvent


def encode(event: BaseEvent) -> str:
    # The event models leave out their own unset fields; `exclude_none` would also strip the nulls
    # inside a payload (a JSON Patch `"value": null`, a state key set to null).
    return event.model_dump_json(by_alias=True)


class LeanStream:
    def __init__(self, text_batch_ms: float = 0.0, client_state: Any = None) -> None:
        """`client_state`: the state the client sent with its run (what a delta may patch)."""
        self._batch = text_batch_ms / 1000
        self._state: Any = copy.deepcopy(client_state) if isinstance(client_state, dict) else None
        self._pending: TextMessageContentEvent | None = None
        self._started: set[str] = set()
        self._last_sent = 0.0

    async def __call__(self, events: AsyncIterator[BaseEvent]) -> AsyncIterator[BaseEvent]:
        async for event in events:
            if event.type == EventType.TEXT_MESSAGE_CONTENT and self._batch > 0:
                for ready in self._text(event):  # type: ignore[arg-type]
                    yield ready
                continue
            if self._pending is not None:
                yield self._pending
                self._pending = None
            lean = self._lean_state(event)
            if lean is not None:
                yield lean
        if self._pending is not None:
            yield self._pending

    def _text(self, event: TextMessageContentEvent) -> Iterator[TextMessageContentEvent]:
        now = time.monotonic()
        if self._pending is not None and self._pending.message_id != event.message_id:
            yield self._pending
            self._pending = None
        if self._pending is None:
            if event.message_id not in self._started or now - self._last_sent >= self._batch:
                self._started.add(event.message_id)
                self._last_sent = now
                yield event
                return
            self._pending = event.model_copy()
        else:
            self._pending.delta += event.delta
        if now - self._last_sent >= self._batch:
            yield self._pending
            self._pending, self._last_sent = None, now

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
