"""The one place that bounds what a request may carry, before any face parses or works on it.

- The body: at most `CITADEL_MAX_BODY_BYTES`, by its Content-Length or as it streams in (413).
- The longest text in a JSON body: at most `CITADEL_MAX_MESSAGE_CHARS` characters for any one
  string (a chat message, a document handed to a run, a metadata value), on every face (REST runs,
  chat completions, AG-UI, MCP, voice tokens); 413 naming the field and the limit. Embedding and
  collection requests are exempt: their texts are bounded by the model's tokens and chunked.

Only a body longer than the text limit can hold a text longer than it, so only such bodies are
parsed here, in a worker thread (a multi-megabyte JSON document must not hold up the event loop);
the body is then handed on unchanged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from citadel.errors import error_body
from citadel.runtime.rate_limits import route_class

WITH_BODY = ("POST", "PUT", "PATCH")


class BodyTooLarge(Exception):
    pass


def longest_text(document: Any, limit: int) -> tuple[str, int] | None:
    """(where, length) of the first string (or key) in `document` longer than `limit`, else None."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if len(value) > limit:
                return where or "body", len(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                path = f"{where}.{key}" if where else str(key)
                if len(key) > limit:
                    return path[:200], len(key)
                stack.append((path, item))
        elif isinstance(value, list):
            stack.extend((f"{where}.{index}" if where else str(index), item) for index, item in enumerate(value))
    return None


def _too_long_in(body: bytes, limit: int) -> tuple[str, int] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None  # malformed JSON: the face answers that, as it always does
    return longest_text(document, limit)


def _is_json(headers: Mapping[bytes, bytes]) -> bool:
    content_type = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
    return content_type == b"application/json" or content_type.endswith(b"+json")


class InputLimits:
    """The request pipeline's step after the rate limit: the body within its limits."""

    def __init__(self, *, max_body_bytes: int, max_text_chars: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_text_chars = max_text_chars

    async def admit(self, scope: Scope, headers: Mapping[bytes, bytes], receive: Receive, send: Send) -> Receive | None:
        """The `receive` to hand the app (the body checked, or counted as it streams in: `BodyTooLarge`
        past the limit), or None if the request was answered here (413) or its client went away."""
        declared = headers.get(b"content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        if length is not None and length > self.max_body_bytes:
            await self.refuse_body(send)
            return None
        if length is not None and length <= self.max_text_chars:
            # The server delivers exactly the declared length, and no text is longer than the body
            # that holds it: nothing to check, nothing to wrap (most requests).
            return receive
        checked = (
            scope["method"] in WITH_BODY
            and route_class(scope["method"], scope["path"]) != "embeddings"
            and _is_json(headers)
        )
        if checked:
            return await self._checked(receive, send)
        return self._counted(receive)

    async def _checked(self, receive: Receive, send: Send) -> Receive | None:
        """Read the whole body, check its texts, then hand it on."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self.refuse_body(send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if len(body) > self.max_text_chars:
            too_long = await asyncio.to_thread(_too_long_in, body, self.max_text_chars)
            if too_long is not None:
                await self._refuse_text(send, *too_long)
                return None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # from here on: the disconnect a streaming response waits for

        return replay

    def _counted(self, receive: Receive) -> Receive:
        """Hand the body on as it streams in, raising `BodyTooLarge` once it passes the limit (the
        pipeline answers 413 if the response has not started)."""
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        return counted

    async def refuse_body(self, send: Send) -> None:
        message = f"request body is larger than {self.max_body_bytes} bytes (CITADEL_MAX_BODY_BYTES)"
        await _send_413(send, error_body(message, "payload_too_large", "payload_too_large"))

    async def _refuse_text(self, send: Send, where: str, length: int) -> None:
        message = (
            f"{where} is {length:,} characters long; a request's texts may be at most "
            f"{self.max_text_chars:,} characters each (CITADEL_MAX_MESSAGE_CHARS)"
        )
        await _send_413(send, error_body(message, "message_too_large", "message_too_large", where))


async def _send_413(send: Send, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
