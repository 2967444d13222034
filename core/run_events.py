"""The events of one run, fanned out to every client watching it (the one that started it, and any
that join later, who first get what they missed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

MAX_REPLAY = 20_000


class RunEvents:
    def __init__(self) -> None:
        self._history: list[tuple[str, Any]] = []
        self._listeners: set[asyncio.Queue[tuple[str, Any] | None]] = set()
        self.done = asyncio.Event()

    def publish(self, event: str, data: Any) -> None:
        if len(self._history) < MAX_REPLAY:
            self._history.append((event, data))
        for queue in self._listeners:
            queue.put_nowait((event, data))

    def close(self) -> None:
        self.done.set()
        for queue in self._listeners:
            queue.put_nowait(None)

    async def subscribe(self) -> AsyncIterator[tuple[str, Any]]:
        """Everything published so far, then each new event until the run ends."""
        queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        for past in self._history:
            queue.put_nowait(past)
        if self.done.is_set():
            queue.put_nowait(None)
        else:
            self._listeners.add(queue)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            self._listeners.discard(queue)
