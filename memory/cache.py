"""Byte caches: Redis when configured (shared by every replica), an in-process LRU otherwise.

A cache is an optimisation, never a source of truth: when Redis fails, reads miss and writes are
dropped, with a warning, and the request goes on.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


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
    """Redis, with a TTL on every entry. Errors degrade to misses; `ping` raises so health can tell."""

    name = "redis"

    def __init__(self, url: str, ttl_seconds: int) -> None:
        self._client = redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._ttl = ttl_seconds or None
        self._warned_at = 0.0

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = await self._client.mget(keys)
            return [v if isinstance(v, bytes) else None for v in values]
        except (RedisError, OSError) as error:
            self._warn(error)
            return [None] * len(keys)

    async def set_many(self, items: dict[str, bytes]) -> None:
        if not items:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, ex=self._ttl)
                await pipe.execute()
        except (RedisError, OSError) as error:
            self._warn(error)

    async def ping(self) -> None:
        await self._client.ping()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _warn(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > 30:
            self._warned_at = now
            log.warning("redis cache unavailable, serving without it: %s", error)
