"""LangGraph persistence on PostgreSQL (`CITADEL_DATABASE_URL` set): a psycopg pool, as
langgraph-checkpoint-postgres needs, its size and timeouts following the database settings, and the
checkpointer and store on it, their failures mapped by `store_errors`. A module of its own, imported
by `persistence` only when a database URL is set, so that an embedded (SQLite) start never loads
psycopg and LangGraph's PostgreSQL classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.store.base import IndexConfig, Op, Result
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from citadel.memory.database import redact_url
from citadel.memory.persistence import Persistence
from citadel.memory.store_errors import store_errors
from citadel.settings import Settings

log = logging.getLogger(__name__)
SETUP_LOCK = "select pg_try_advisory_lock(hashtext('citadel_persistence_setup')) as taken"


class _NoLock(asyncio.Lock):
    """A lock that holds nothing, for work that needs none."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


class _PostgresSaver(AsyncPostgresSaver):
    """LangGraph's PostgreSQL checkpointer, its failures mapped by `store_errors` (an unreachable
    database is `Unavailable`, in a graph run and in a REST read of a thread's state alike).

    On a pool, its reads and writes run concurrently, each on a connection of its own: LangGraph's
    saver holds one lock of its own around each (what a single shared connection needs), which on a
    pool queued every checkpoint of every run behind the one before (langgraph issue #7259; its
    PostgreSQL store already takes no shared lock on a pool)."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        super().__init__(pool)  # type: ignore[arg-type]
        self.lock = _NoLock()

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        with store_errors():
            return await super().aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        with store_errors():
            async for item in super().alist(config, filter=filter, before=before, limit=limit):
                yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        with store_errors():
            return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        with store_errors():
            await super().aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        with store_errors():
            await super().adelete_thread(thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        with store_errors():
            return await super().aget_delta_channel_history(config=config, channels=channels)


class _PostgresStore(AsyncPostgresStore):
    """LangGraph's PostgreSQL store (long-term memory), its failures mapped by `store_errors`."""

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        with store_errors():
            return await super().abatch(ops)


async def check_when_closed(connection: AsyncConnection[Any]) -> None:
    """The pool's check of a connection it hands out, without a round trip per checkout (the
    checkpointer takes one for every read and write of a run): an idle connection in autocommit mode
    has nothing to read, unless the server or the network closed it meanwhile (end of file, or the
    server's farewell error, as on a restart). Only then is it checked for real (psycopg's empty
    query), which fails, and the pool replaces it, so a broken connection is still never handed to a
    caller. Citadel listens for no notifications that could make an idle connection readable."""
    if connection.closed or connection.broken:
        raise ConnectionError("the connection is closed")
    poll = select.poll()
    poll.register(connection.fileno(), select.POLLIN | select.POLLPRI)
    if poll.poll(0):
        await AsyncConnectionPool.check_connection(connection)


@contextlib.asynccontextmanager
async def open_postgres_persistence(settings: Settings, url: str, index: IndexConfig) -> AsyncIterator[Persistence]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo=url,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        timeout=settings.database_timeout,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        # A connection broken by a database restart is replaced when taken, not handed to a caller.
        check=check_when_closed,
        # The pool retries a failed connect with a doubling delay (1, 2, 4, 8, 16 s...) until this
        # runs out; the next caller then starts afresh. Kept short, so that after an outage the pool
        # reconnects within seconds rather than after a half-minute backoff, answering PoolTimeout.
        reconnect_timeout=settings.database_timeout,
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=settings.database_timeout)
    except Exception as error:  # psycopg raises PoolTimeout / OperationalError; both mean "unreachable"
        await pool.close()
        raise RuntimeError(
            f"cannot reach PostgreSQL at {redact_url(url)} (CITADEL_DATABASE_URL): {type(error).__name__}: {error}"
        ) from error
    try:
        async with pool.connection() as connection:
            row = await (
                await connection.execute("select count(*) as n from pg_available_extensions where name = 'vector'")
            ).fetchone()
        indexed = bool(row and row["n"])
        if not indexed:
            log.info("pgvector is not available: long-term memories are stored without a vector index")
        saver = _PostgresSaver(pool)
        store = _PostgresStore(pool, index=index if indexed else None)  # type: ignore[arg-type]
        # Replicas and workers starting together on an empty database: one sets the tables up at a
        # time (concurrent CREATE TABLE IF NOT EXISTS can collide in PostgreSQL's catalog). The others
        # poll for the lock rather than wait inside a statement: the setup's CREATE INDEX
        # CONCURRENTLY waits for every open transaction, a waiting lock statement included.
        async with pool.connection() as lock:
            while True:
                if (await (await lock.execute(SETUP_LOCK)).fetchone() or {}).get("taken"):
                    break
                await asyncio.sleep(0.1)
            try:
                await saver.setup()
                await store.setup()
            finally:
                await lock.execute("select pg_advisory_unlock(hashtext('citadel_persistence_setup'))")
        yield Persistence(checkpointer=saver, store=store, indexed=indexed, where="postgresql")
    finally:
        await pool.close()
