"""A small AG-UI client for the tests: posts a `RunAgentInput` to /agui/{graph} over real HTTP and
parses the SSE stream with ag-ui-protocol's own event types."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonpatch
from ag_ui.core import BaseEvent, Event, EventType
from pydantic import TypeAdapter

EVENTS: TypeAdapter[Any] = TypeAdapter(Event)


def user(text: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "role": "user", "content": text}


def run_input(thread_id: str, messages: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "threadId": thread_id,
        "runId": str(uuid.uuid4()),
        "messages": messages or [],
        "state": fields.pop("state", {}),
        "tools": fields.pop("tools", []),
        "context": [],
        "forwardedProps": fields.pop("forwardedProps", {}),
        **fields,
    }


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    events: list[BaseEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    body: str = ""

    @property
    def types(self) -> list[EventType]:
        return [e.type for e in self.events]

    def of(self, kind: EventType) -> list[Any]:
        return [e for e in self.events if e.type == kind]

    def text(self, message_id: str) -> str:
        return "".join(e.delta for e in self.of(EventType.TEXT_MESSAGE_CONTENT) if e.message_id == message_id)

    def state(self, start: dict[str, Any] | None = None) -> dict[str, Any]:
        """The client's state after the stream: snapshots replace it, deltas patch it."""
        state = dict(start or {})
        for event in self.events:
            if event.type == EventType.STATE_SNAPSHOT:
                state = event.snapshot  # type: ignore[attr-defined]
            elif event.type == EventType.STATE_DELTA:
                operations = [_operation(op) for op in event.delta]  # type: ignore[attr-defined]
                state = jsonpatch.apply_patch(state, operations)
        return state


def _operation(op: Any) -> Any:
    return op.model_dump(mode="json", by_alias=True, exclude_unset=True) if hasattr(op, "model_dump") else op


def post_run(
    client: httpx.Client,
    graph: str,
    body: dict[str, Any],
    *,
    stop_after: EventType | None = None,
    headers: dict[str, str] | None = None,
) -> Stream:
    headers = {"accept": "text/event-stream", **(headers or {})}
    with client.stream("POST", f"/agui/{graph}", json=body, headers=headers) as response:
        stream = Stream(response.status_code, response.headers)
        if response.status_code != 200:
            stream.body = response.read().decode()
            return stream
        for line in response.iter_lines():
            if line.startswith(":"):
                stream.comments.append(line)
            elif line.startswith("data: "):
                event = EVENTS.validate_json(line.removeprefix("data: "))
                stream.events.append(event)
                if stop_after is not None and event.type == stop_after:
                    break  # leaving the block closes the connection
    return stream
