"""Steady load from concurrent keep-alive clients, tallied the way an operator would: statuses,
503s without `Retry-After`, calls that got no answer, and dropped connections (a client whose
connection the server closed must open another: each client here uses one connection, so every TCP
connect beyond the first is one the server dropped)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Tally:
    workers: int
    statuses: Counter[int] = field(default_factory=Counter)
    by_call: dict[str, Counter[int]] = field(default_factory=dict)
    no_retry_after: int = 0
    unanswered: list[str] = field(default_factory=list)
    connects: int = 0
    slowest: float = 0.0
    slowest_by_call: dict[str, float] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + len(self.unanswered)

    @property
    def dropped_connections(self) -> int:
        return self.connects - self.workers

    def record(self, name: str, response: httpx.Response, seconds: float) -> None:
        self.statuses[response.status_code] += 1
        self.by_call.setdefault(name, Counter())[response.status_code] += 1
        self.slowest = max(self.slowest, seconds)
        self.slowest_by_call[name] = max(self.slowest_by_call.get(name, 0.0), seconds)
        if response.status_code == 503 and "retry-after" not in response.headers:
            self.no_retry_after += 1
        if response.status_code >= 500 and response.status_code != 503:
            self.server_errors.append(f"{name}: {response.status_code} {response.text[:300]}")

    def summary(self) -> str:
        return (
            f"requests={self.requests} statuses={dict(sorted(self.statuses.items()))} "
            f"500s={self.statuses[500]} 503s={self.statuses[503]} 503s_without_retry_after={self.no_retry_after} "
            f"unanswered={len(self.unanswered)} dropped_connections={self.dropped_connections} "
            f"slowest={self.slowest:.2f}s"
        )


async def steady_load(url: str, calls: dict[str, Call], *, workers: int, stop: asyncio.Event, deadline: float) -> Tally:
    """`workers` clients calling `calls` at random until `stop` is set; each call must be answered
    within `deadline` seconds, else it counts as unanswered."""
    tally = Tally(workers=workers)

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            tally.connects += 1

    async def worker(seed: int) -> None:
        chooser = random.Random(seed)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=deadline, limits=limits) as client:
            client.event_hooks["request"] = [_traced(trace)]
            while not stop.is_set():
                name = chooser.choice(sorted(calls))
                started = time.perf_counter()
                try:
                    response = await calls[name](client)
                except httpx.HTTPError as error:
                    tally.unanswered.append(f"{name}: {type(error).__name__}: {error}")
                    continue
                tally.record(name, response, time.perf_counter() - started)

    await asyncio.gather(*(worker(seed) for seed in range(workers)))
    return tally


def _traced(trace: Callable[[str, dict[str, Any]], Awaitable[None]]) -> Callable[[httpx.Request], Awaitable[None]]:
    async def hook(request: httpx.Request) -> None:
        request.extensions["trace"] = trace

    return hook
