"""Run events on Redis Streams, shared by every API replica and worker (production mode).

One stream per run, `citadel:run:{run_id}:events`, entries `{e: event, d: JSON data}`, capped at
about `maxlen` entries (`XADD … MAXLEN ~`, which never drops the newest) and expiring `ended_ttl`
seconds after the run's `end` entry (a day after its last entry if the end never comes).

Redis's entry ids (`1764230000123-0`: milliseconds and a sequence, assigned by Redis, increasing
within a stream) are the SSE event ids: `XREAD` from an id returns exactly the entries after it, so
a client reconnecting with `Last-Event-ID` to any replica gets every event it missed once, in order.
Readers never read from `$` (an entry added between two reads would be missed), always from an id.

Every blocked `XREAD` holds a connection: the pool waits for a free one instead of failing
(redis-py's default pool raises past its size), so size it for the live streams a replica serves.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis

from citadel.core.run_events import END, RunEnd, RunEvent, StreamGap, bad_event_id

LIVE_TTL = 24 * 3600
"""A run whose end is never written (its executor lost) still expires."""
MAX_BLOCK_SECONDS = 10.0
SOCKET_TIMEOUT = MAX_BLOCK_SECONDS + 10
_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def stream_key(run_id: str) -> str:
    return f"citadel:run:{run_id}:events"


def _block_ms(seconds: float) -> int:
    return max(int(min(seconds, MAX_BLOCK_SECONDS) * 1000), 1)


def _order(event_id: str) -> tuple[int, int]:
    milliseconds, sequence = event_id.split("-")
    return int(milliseconds), int(sequence)


class RedisRunEvents:
    shared = True

    def __init__(self, url: str, *, maxlen: int = 20_000, ended_ttl: int = 3600, max_connections: int = 500) -> None:
        pool = redis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            max_connections=max_connections,
            timeout=None,  # wait for a connection rather than fail
            socket_connect_timeout=5,
            socket_timeout=SOCKET_TIMEOUT,  # above the longest blocking read: a dead Redis still fails
            health_check_interval=30,
        )
        self.redis: Any = redis.Redis.from_pool(pool)  # owns the pool (closes it); decode_responses: str replies
        self._maxlen = maxlen
        self._ended_ttl = ended_ttl

    async def ping(self) -> None:
        await self.redis.ping()

    def open(self, run_id: str) -> None:
        """Nothing to prepare: a reader blocks on the stream until its first entry."""

    def has(self, run_id: str) -> bool:
        return True

    def discard(self, run_id: str) -> None:
        """Nothing to do: the executor elsewhere writes to the same stream."""

    async def publish(self, run_id: str, event: str, data: Any) -> str:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(stream_key(run_id), {"e": event, "d": json.dumps(data)}, maxlen=self._maxlen, approximate=True)
            pipe.expire(stream_key(run_id), LIVE_TTL)
            event_id, _ = await pipe.execute()
        return str(event_id)

    async def end(self, run_id: str, end: RunEnd) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                stream_key(run_id), {"e": END, "d": json.dumps(end.to_data())}, maxlen=self._maxlen, approximate=True
            )
            pipe.expire(stream_key(run_id), self._ended_ttl)
            await pipe.execute()

    def check_id(self, event_id: str) -> None:
        if not _ID.match(event_id):
            raise bad_event_id(event_id)

    async def read(self, run_id: str, after: str | None, *, idle: float) -> AsyncIterator[RunEvent | None]:
        key = stream_key(run_id)
        last = "0-0"
        if after is not None:
            self.check_id(after)
            oldest = await self.redis.xrange(key, "-", "+", count=1)
            if oldest and _order(oldest[0][0]) > _order(after) and _order(after) != (0, 0):
                raise StreamGap(after)
            last = after
        while True:
            reply = await self.redis.xread({key: last}, count=500, block=_block_ms(idle))
            if not reply:
                yield None
                continue
            for event_id, fields in reply[0][1]:
                last = event_id
                yield event_id, fields["e"], json.loads(fields["d"])
                if fields["e"] == END:
                    return

    async def wait_end(self, run_id: str, seconds: float) -> RunEnd | None:
        """One `XREVRANGE` (the end is the newest entry once written), else a blocking read from the
        newest entry on: only what comes after it is read, not the run's whole history."""
        key = stream_key(run_id)
        newest = await self.redis.xrevrange(key, "+", "-", count=1)
        if newest and newest[0][1]["e"] == END:
            return RunEnd.from_data(json.loads(newest[0][1]["d"]))
        last = newest[0][0] if newest else "0-0"
        clock = asyncio.get_running_loop()
        deadline = clock.time() + seconds
        while (left := deadline - clock.time()) > 0:
            reply = await self.redis.xread({key: last}, count=1000, block=_block_ms(left))
            if not reply:
                return None
            for event_id, fields in reply[0][1]:
                last = event_id
                if fields["e"] == END:
                    return RunEnd.from_data(json.loads(fields["d"]))
        return None

    async def aclose(self) -> None:
        await self.redis.aclose()
