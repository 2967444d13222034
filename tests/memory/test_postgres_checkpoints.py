"""The PostgreSQL checkpointer on its pool (real PostgreSQL): one run's checkpoint write that waits on
the database does not hold up another thread's reads and writes. LangGraph's saver takes a lock of
its own around every statement, which on a pool queued each checkpoint of every run behind the one
before (langgraph issue #7259)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from langgraph.checkpoint.base import empty_checkpoint

from citadel.memory.postgres_persistence import open_postgres_persistence
from citadel.settings import Settings

# The memory store opened beside the checkpointer is not used here: its index embeds nothing real.
NO_INDEX: Any = {"dims": 4, "embed": lambda texts: [[0.0] * 4 for _ in texts]}
WAIT = 10.0


def _config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


async def test_a_checkpoint_write_waiting_on_the_database_holds_up_no_other_thread(
    make_settings: Any, database_url: str
) -> None:
    settings: Settings = make_settings(database_url=database_url, database_pool_min=2, database_pool_max=4)
    async with open_postgres_persistence(settings, database_url, NO_INDEX) as persistence:
        saver = persistence.checkpointer
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": ["hello"]}
        checkpoint["channel_versions"] = {"messages": "1"}
        await saver.aput(_config("other"), checkpoint, {}, {"messages": "1"})
        async with await psycopg.AsyncConnection.connect(database_url) as blocker:
            # An uncommitted row with the key of the blob `held`'s write inserts: that write waits.
            await blocker.execute(
                "insert into checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)"
                " values ('held', '', 'messages', '1', 'empty', null)"
            )
            held = asyncio.create_task(saver.aput(_config("held"), checkpoint, {}, {"messages": "1"}))
            await asyncio.sleep(0.5)
            assert not held.done()  # waiting on the blocker's row
            async with asyncio.timeout(WAIT):  # before the fix: until the blocker let go
                found = await saver.aget_tuple(_config("other"))
                await saver.aput(_config("third"), checkpoint, {}, {"messages": "1"})
            assert found is not None
            assert found.checkpoint["channel_values"]["messages"] == ["hello"]
            assert not held.done()
            await blocker.rollback()
        async with asyncio.timeout(WAIT):
            await held
        stored = await saver.aget_tuple(_config("held"))
        assert stored is not None
        assert stored.checkpoint["channel_values"]["messages"] == ["hello"]
