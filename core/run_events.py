"""A run's events: what its execution publishes, read by every client following it (the one that
started it, and any that join later or reconnect).

Each run has one log of entries `(id, event, data)`, ids increasing, ending with an `end` entry that
carries how the run ended (`RunEnd`: its status, its error, and a stateless run's final values,
whose thread is deleted). A reader names the last id it has (`after`, an SSE `Last-Event-ID`) and
gets every entry after it once, in order, live until the end.

Two logs, chosen by the binding:
- `LocalRunEvents` (here): in this process's memory, for embedded mode, where runs execute in the
  process that serves them. A log is kept a while after its run ends (late joiners), then dropped.
- `RedisRunEvents` (`redis_run_events.py`): Redis Streams, one per run, shared by every replica and
  worker: any replica streams any run live and finds a stateless run's result.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from citadel.errors import InvalidRequest

END = "end"
RunEvent = tuple[str, str, Any]
"""(id, event, data): one entry of a run's log."""


@dataclass(frozen=True)
class RunEnd:
    """The `end` entry: how the run ended."""

    status: str
    error: str | None = None
    values: dict[str, Any] | None = None
    """The thread's values as the run ended (read by its executor; a stateless run's thread is gone
    by then); None after an error, or when the end was learnt from the database."""

    def to_data(self) -> dict[str, Any]:
        # Not dataclasses.asdict: that deep-copies the values (every message of the thread), 2% of
        # the server's CPU a create + join run in a profile; nothing changes them once they are read.
        return {"status": self.status, "error": self.error, "values": self.values}

    @classmethod
    def from_data(cls, data: Any) -> RunEnd:
        data = data if isinstance(data, dict) else {}
        return cls(status=str(data.get("status") or "error"), error=data.get("error"), values=data.get("values"))


class StreamGap(Exception):
    """Entries after the reader's `after` were dropped (the log keeps a run's newest entries only):
    the reader has missed some, and should take a fresh snapshot of the thread."""


class NotHere(Exception):
    """The run is not executing in this process, whose log is its own (it runs elsewhere)."""


def bad_event_id(event_id: str) -> InvalidRequest:
    return InvalidRequest(f"Last-Event-ID {event_id[:64]!r} is not an event id of this run", param="Last-Event-ID")


class RunEventLog(Protocol):
    shared: bool
    """Whether every process reads the same log (then a run is followed live from any replica)."""

    def open(self, run_id: str) -> None:
        """Before a run is handed to its executor: readers from now on wait for its events here."""
        ...

    def has(self, run_id: str) -> bool:
        """Whether this process can follow the run here (always, for a shared log)."""
        ...

    async def publish(self, run_id: str, event: str, data: Any) -> str:
        """Append an entry; its id."""
        ...

    async def end(self, run_id: str, end: RunEnd) -> None:
        """The last entry: readers stop at the first `end`."""
        ...

    def discard(self, run_id: str) -> None:
        """The run turned out to execute elsewhere: readers here stop following it (`NotHere`)."""
        ...

    def check_id(self, event_id: str) -> None:
        """InvalidRequest unless `event_id` has the form of this log's ids."""
        ...

    def read(self, run_id: str, after: str | None, *, idle: float) -> AsyncIterator[RunEvent | None]:
        """Entries after `after` (from the first when None) through the `end` entry, live; None after
        each `idle` seconds without any, so the reader can check on the run. InvalidRequest for an
        `after` that is no id of this log, StreamGap when entries after it were dropped."""
        ...

    async def wait_end(self, run_id: str, seconds: float) -> RunEnd | None:
        """The run's end, waiting up to `seconds` for it (None if it has not come)."""
        ...

    async def aclose(self) -> None: ...


class _Log:
    """One run's entries in memory: ids are 1, 2, 3… as text; the oldest dropped past `maxlen`."""

    def __init__(self, maxlen: int) -> None:
        self.entries: deque[tuple[int, str, Any]] = deque(maxlen=maxlen)
        self.count = 0
        self.end: RunEnd | None = None
        self.moved = False
        self._changed = asyncio.Event()

    def append(self, event: str, data: Any) -> str:
        self.count += 1
        self.entries.append((self.count, event, data))
        self.wake()
        return str(self.count)

    def wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def after(self, position: int) -> list[tuple[int, str, Any]]:
        if not self.entries or position >= self.entries[-1][0]:
            return []
        first = self.entries[0][0]
        return list(self.entries)[max(position - first + 1, 0) :]

    async def changed(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._changed.wait()
                return True
        return False


class LocalRunEvents:
    """Run events in this process's memory (embedded mode)."""

    shared = False

    def __init__(self, *, keep_seconds: float = 300.0, maxlen: int = 20_000) -> None:
        self._logs: dict[str, _Log] = {}
        self._keep = keep_seconds
        self._maxlen = maxlen

    def __len__(self) -> int:
        """How many runs' logs are held (running here, or ended less than `keep_seconds` ago)."""
        return len(self._logs)

    def open(self, run_id: str) -> None:
        self._log(run_id)

    def has(self, run_id: str) -> bool:
        return run_id in self._logs

    def _log(self, run_id: str) -> _Log:
        log = self._logs.get(run_id)
        if log is None:  # never replaced: whoever opened it first (accept or recovery), all share it
            log = self._logs[run_id] = _Log(self._maxlen)
        return log

    async def publish(self, run_id: str, event: str, data: Any) -> str:
        return self._log(run_id).append(event, data)

    async def end(self, run_id: str, end: RunEnd) -> None:
        log = self._log(run_id)
        if log.end is not None:
            return
        log.end = end
        log.append(END, end.to_data())
        asyncio.get_running_loop().call_later(self._keep, self._drop, run_id, log)

    def discard(self, run_id: str) -> None:
        log = self._logs.pop(run_id, None)
        if log is not None and log.end is None:
            log.moved = True
            log.wake()

    def _drop(self, run_id: str, log: _Log) -> None:
        if self._logs.get(run_id) is log:
            del self._logs[run_id]

    def check_id(self, event_id: str) -> None:
        if not (event_id.isascii() and event_id.isdigit() and len(event_id) <= 20):
            raise bad_event_id(event_id)

    async def read(self, run_id: str, after: str | None, *, idle: float) -> AsyncIterator[RunEvent | None]:
        if after is not None:
            self.check_id(after)
        log = self._logs.get(run_id)
        if log is None:
            raise NotHere(run_id)
        position = int(after or 0)
        if log.entries and position < log.entries[0][0] - 1:
            raise StreamGap(after)
        while True:
            for number, event, data in log.after(position):
                position = number
                yield str(number), event, data
                if event == END:
                    return
            if log.moved:
                raise NotHere(run_id)
            if not await log.changed(idle) and not log.after(position):
                yield None

    async def wait_end(self, run_id: str, seconds: float) -> RunEnd | None:
        log = self._logs.get(run_id)
        if log is None:
            raise NotHere(run_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while log.end is None:
                    if log.moved:
                        raise NotHere(run_id)
                    await log.changed(seconds)
        return log.end

    async def aclose(self) -> None:
        self._logs.clear()
