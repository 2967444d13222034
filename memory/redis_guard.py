"""Keeping requests fast while Redis is slow or gone.

Redis holds only what Citadel can do without for a while (cached embeddings, rate-limit windows),
so a request never waits on it for long: each call is given `CITADEL_REDIS_TIMEOUT`, and once one
fails or times out, Redis is skipped at once (callers go on without it) while a background task
pings it every `CITADEL_REDIS_RETRY_SECONDS`; the first answer lets calls through again. A frozen
Redis (one that accepts connections and never answers) thus costs one timeout, not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

T = TypeVar("T")


class RedisSkipped(Exception):
    """Redis is not used for this call: it failed or timed out lately and has not answered since."""


class RedisGuard:
    def __init__(
        self,
        name: str,
        ping: Callable[[], Awaitable[Any]],
        *,
        timeout: float,
        retry_seconds: float,
        failures: tuple[type[Exception], ...] = (),
    ) -> None:
        """`ping` proves Redis answers; `failures`: errors besides Redis's own that mean it failed."""
        self.name = name
        self._ping = ping
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._failures: tuple[type[Exception], ...] = (RedisError, OSError, *failures)  # TimeoutError: an OSError
        self._skipping_since: float | None = None
        self._probe: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        return self._skipping_since is None

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation()` within the timeout; RedisSkipped if Redis is being skipped or fails now."""
        if self._skipping_since is not None:
            raise RedisSkipped(f"{self.name}: Redis did not answer; skipped until it does")
        try:
            async with asyncio.timeout(self.timeout):
                return await operation()
        except self._failures as error:
            self._skip(error)
            raise RedisSkipped(f"{self.name}: {type(error).__name__}: {error}") from error

    async def ping(self) -> None:
        """For readiness: raises at once while skipping, else pings within the timeout."""
        await self.call(self._ping)

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe

    def _skip(self, error: Exception) -> None:
        if self._skipping_since is not None:
            return
        self._skipping_since = time.monotonic()
        log.warning(
            "%s: Redis failed (%s: %s); going on without it, pinging it every %g s",
            self.name, type(error).__name__, error, self.retry_seconds,
        )  # fmt: skip
        self._probe = asyncio.create_task(self._wait_for_redis(), name=f"redis-probe:{self.name}")

    async def _wait_for_redis(self) -> None:
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                async with asyncio.timeout(self.timeout):
                    await self._ping()
            except self._failures:
                continue
            assert self._skipping_since is not None
            log.warning("%s: Redis answers again after %.1f s", self.name, time.monotonic() - self._skipping_since)
            self._skipping_since = None
            return
