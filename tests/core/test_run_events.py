"""The run event logs, in memory and on Redis Streams (the real Redis): entries with ids, read from any
point after an id once and in order, live until the `end` entry; a bad id refused; a log that has
dropped what a reader missed says so."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from citadel.core.redis_run_events import RedisRunEvents
from citadel.core.run_events import LocalRunEvents, RunEnd, RunEventLog, StreamGap
from citadel.errors import InvalidRequest


@pytest.fixture(params=["memory", "redis"])
async def log(request: pytest.FixtureRequest) -> AsyncIterator[RunEventLog]:
    if request.param == "memory":
        yield LocalRunEvents(keep_seconds=60, maxlen=50)
        return
    shared = RedisRunEvents(request.getfixturevalue("redis_url"), maxlen=50, ended_ttl=60)
    try:
        yield shared
    finally:
        await shared.aclose()


async def entries(log: RunEventLog, run_id: str, after: str | None = None) -> list[tuple[str, str, Any]]:
    found = []
    async with asyncio.timeout(30):
        async for item in log.read(run_id, after, idle=0.2):
            if item is not None:
                found.append(item)
    return found


async def test_readers_get_every_entry_after_their_id_once_in_order_live(log: RunEventLog) -> None:
    run_id = str(uuid.uuid4())
    log.open(run_id)
    ids = [await log.publish(run_id, "updates", {"step": i}) for i in range(3)]
    live = asyncio.create_task(entries(log, run_id))  # a reader from the start, still running
    await asyncio.sleep(0)
    ids += [await log.publish(run_id, "updates", {"step": i}) for i in range(3, 6)]
    await log.end(run_id, RunEnd("success", values={"done": True}))

    everything = await live
    resumed = await entries(log, run_id, ids[2])  # as a client reconnecting with Last-Event-ID
    assert [data for _, event, data in everything if event == "updates"] == [{"step": i} for i in range(6)]
    assert [entry_id for entry_id, _, _ in everything][:6] == ids
    assert everything[-1][1] == "end"
    assert resumed == everything[3:]
    assert await log.wait_end(run_id, 1) == RunEnd("success", values={"done": True})


async def test_a_bad_id_is_refused_and_a_dropped_one_is_a_gap(log: RunEventLog) -> None:
    run_id = str(uuid.uuid4())
    log.open(run_id)
    first = await log.publish(run_id, "updates", {"step": 0})
    with pytest.raises(InvalidRequest, match="Last-Event-ID"):
        log.check_id("not-an-id; drop table")
    for i in range(400):  # past the cap of 50: the oldest entries are dropped
        await log.publish(run_id, "updates", {"step": i})
    await log.end(run_id, RunEnd("success"))
    with pytest.raises(StreamGap):
        await entries(log, run_id, first)


async def test_no_end_within_the_wait_is_none(log: RunEventLog) -> None:
    run_id = str(uuid.uuid4())
    log.open(run_id)
    await log.publish(run_id, "metadata", {"run_id": run_id})
    assert await log.wait_end(run_id, 0.2) is None
