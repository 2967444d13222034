"""Byte caches: Redis when configured (shared by every replica), an in-process LRU otherwise.

A cache is an optimisation, never a source of truth: when Redis fails or is slow, reads miss and
writes are dropped, and the request goes on; after one failure Redis is skipped until it answers a
background ping again (`RedisGuard`), so a frozen Redis does not slow every request down.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as redis

from citadel.memory.redis_guard import RedisGuard, RedisSkipped


class ByteCache(Protocol):
    name: str

    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    async def set_many(self, items: dict[str, bytes]) -> None: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class MemoryCache:
    """A bounded LRU in this process's memory."""

    name = "memory"

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._data: OrderedDict[str, bytes] = OrderedDict()

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        found: list[bytes | None] = []
        for key in keys:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            found.append(value)
        return found

    async def set_many(self, items: dict[str, bytes]) -> None:
        if self._max == 0:
            return
        for key, value in items.items():
            self._data[key] = value
            self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._data.clear()


class RedisCache:
    """Redis, with a TTL on every entry. Failures and timeouts degrade to misses; `ping` raises so
    health can tell."""

    name = "redis"

    def __init__(self, url: str, ttl_seconds: int, *, timeout: float = 0.5, retry_seconds: float = 5.0) -> None:
        self._client = redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._ttl = ttl_seconds or None
        self.guard = RedisGuard("cache", self._client.ping, timeout=timeout, retry_seconds=retry_seconds)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = await self.guard.call(lambda: self._client.mget(keys))
        except RedisSkipped:
            return [None] * len(keys)
        return [v if isinstance(v, bytes) else None for v in values]

    async def set_many(self, items: dict[str, bytes]) -> None:
        if not items:
            return

        async def write() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, ex=self._ttl)
                await pipe.execute()

        with contextlib.suppress(RedisSkipped):
            await self.guard.call(write)

    async def ping(self) -> None:
        await self.guard.ping()

    async def aclose(self) -> None:
        await self.guard.aclose()
        await self._client.aclose()
