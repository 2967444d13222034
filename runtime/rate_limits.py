"""Rate limits per caller and route class, as a sliding window counter (the `limits` library's
approximation of a moving window from two fixed-window counts: O(1) per request, where the exact
moving window keeps a timestamp per request and expires them in a worker thread),
shared by every replica through Redis when `CITADEL_REDIS_URL` is set, in-process otherwise.

A caller is the authenticated user, or the client IP when anonymous. Over the limit: 429 with
`Retry-After`. Limits fail open: while Redis fails or does not answer within `CITADEL_REDIS_TIMEOUT`,
requests are not limited, and Redis is skipped until it answers again (`RedisGuard`).

In-process, expired counters are dropped by one sweeper task for the limiter's lifetime. `limits`'
async `MemoryStorage` starts an expiry task from every hit when none is running (its `timer`), and
each ends after one pass: a task per request. The sweeper is that `timer` while it runs, so the
storage starts none of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time

import redis.asyncio as redis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from starlette.types import Scope, Send

from citadel.core.identity import Identity
from citadel.memory.redis_guard import RedisGuard, RedisSkipped
from citadel.settings import Settings

EMBEDDING_PREFIXES = ("/v1/embeddings", "/v1/collections")
CHAT_PREFIXES = ("/v1/chat/", "/agui/", "/voice/")


def route_class(method: str, path: str) -> str | None:
    """Which limit a request counts against; None for probes (health, metrics, CORS preflight)."""
    if path.startswith(("/health", "/metrics")) or method == "OPTIONS":
        return None
    if path.startswith("/mcp"):
        return "mcp"
    if path.startswith(EMBEDDING_PREFIXES):
        return "embeddings"
    starts_a_run = method == "POST" and ("/runs" in path or path == "/api/v1/workflows")
    if path.startswith(CHAT_PREFIXES) or starts_a_run:
        return "chat"
    return "default"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.storage: Storage
        self._pool: redis.ConnectionPool | None = None
        self.guard: RedisGuard | None = None
        if settings.redis_url:
            # Our own pool, so that we can close it: `limits` offers no close of its own.
            self._pool = redis.ConnectionPool.from_url(
                settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
            )
            self.storage = RedisStorage(
                f"async+{settings.redis_url}",
                implementation="redispy",
                wrap_exceptions=True,
                connection_pool=self._pool,  # type: ignore[arg-type]  # handed on to redis-py
            )
            self.where = "redis"
            self.guard = RedisGuard(
                "rate limits",
                redis.Redis(connection_pool=self._pool).ping,
                timeout=settings.redis_timeout,
                retry_seconds=settings.redis_retry_seconds,
                failures=(StorageError,),
            )
        else:
            self.storage = MemoryStorage()
            self.where = "memory"
        self._sweeper: asyncio.Task[None] | None = None
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)
        self.limits: dict[str, RateLimitItem] = {
            "chat": parse(settings.rate_limit_chat),
            "embeddings": parse(settings.rate_limit_embeddings),
            "mcp": parse(settings.rate_limit_mcp),
            "default": parse(settings.rate_limit_default),
        }

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.guard is not None:
            await self.guard.aclose()
        if self._pool is not None:
            await self._pool.aclose()

    async def check(self, kind: str, caller: str) -> float | None:
        """None if the call may go ahead, else seconds until it may."""
        limit = self.limits[kind]

        async def hit() -> float | None:
            if await self.strategy.hit(limit, kind, caller):
                return None
            stats = await self.strategy.get_window_stats(limit, kind, caller)
            return max(1.0, stats.reset_time - time.time())

        if self.guard is None:
            if self._sweeper is None:
                self._sweeper = self._start_sweeper()
            return await hit()
        try:
            return await self.guard.call(hit)
        except RedisSkipped:  # limits fail open: a Redis outage must not stop the service
            return None

    def _start_sweeper(self) -> asyncio.Task[None]:
        assert isinstance(self.storage, MemoryStorage)
        task = asyncio.create_task(_sweep(self.storage), name="rate-limit-sweeper")
        self.storage.timer = task  # the storage's expiry task while it runs: it starts none of its own
        return task

    async def admit(self, scope: Scope, identity: Identity | None, send: Send) -> bool:
        """The request pipeline's step after auth: True if the request may go on, else it was answered
        429 with `Retry-After`."""
        kind = route_class(scope["method"], scope["path"])
        if kind is None:
            return True
        if identity is not None and identity.kind != "local":
            caller = f"user:{identity.user_id}"
        else:
            caller = f"ip:{(scope.get('client') or ('unknown', 0))[0]}"
        wait = await self.check(kind, caller)
        if wait is None:
            return True
        message = f"rate limit for {kind} requests exceeded ({self.limits[kind]}); retry later"
        body = json.dumps({"error": {"message": message, "type": "rate_limited", "code": "rate_limited"}})
        headers = [(b"content-type", b"application/json"), (b"retry-after", str(math.ceil(wait)).encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body.encode()})
        return False


SWEEP_SECONDS = 10.0


async def _sweep(storage: MemoryStorage) -> None:
    """Drop the counters whose window has passed, every `SWEEP_SECONDS` (`get` drops an expired one)."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        for key in list(storage.expirations):
            await storage.get(key)
