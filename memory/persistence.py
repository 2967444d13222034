"""LangGraph persistence: the checkpointer that makes threads durable and the store that holds
long-term memory across a user's threads.

PostgreSQL when `CITADEL_DATABASE_URL` is set (a psycopg pool, as langgraph-checkpoint-postgres
needs; its size and timeouts follow the database settings), SQLite files in the data directory
otherwise. Schema set-up (`setup()`) runs explicitly here, at start, never on import.

The store indexes memories by embedding where the backend can: SQLite through sqlite-vec, PostgreSQL
when the pgvector extension is available. Without it, memories are kept and listed but not ranked by
meaning (callers rank them themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.store.base import BaseStore, IndexConfig
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.sqlite.aio import AsyncSqliteStore
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from citadel.memory.database import redact_url
from citadel.settings import Settings

log = logging.getLogger(__name__)
SETUP_LOCK = "select pg_try_advisory_lock(hashtext('citadel_persistence_setup')) as taken"


@dataclass
class Persistence:
    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore
    indexed: bool
    """Whether `store.search(namespace, query=...)` ranks by meaning."""
    where: str


@contextlib.asynccontextmanager
async def open_persistence(settings: Settings, index: IndexConfig) -> AsyncIterator[Persistence]:
    """`index` embeds memories for search by meaning, where the backend can index them."""
    if settings.database_url:
        async with _postgres(settings, settings.database_url, index) as persistence:
            yield persistence
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = str(settings.data_dir / "checkpoints.sqlite")
    memories = str(settings.data_dir / "store.sqlite")
    # sqlite-vec is a loadable extension; some Python builds cannot load extensions at all.
    indexed = hasattr(sqlite3.Connection, "enable_load_extension")
    if not indexed:
        log.info("this Python's sqlite3 cannot load extensions: long-term memories are stored without a vector index")
    async with (
        AsyncSqliteSaver.from_conn_string(checkpoints) as saver,
        AsyncSqliteStore.from_conn_string(memories, index=index if indexed else None) as store,  # type: ignore[arg-type]
    ):
        await saver.setup()
        await store.setup()
        yield Persistence(checkpointer=saver, store=store, indexed=indexed, where="sqlite")


@contextlib.asynccontextmanager
async def _postgres(settings: Settings, url: str, index: IndexConfig) -> AsyncIterator[Persistence]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo=url,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        timeout=settings.database_timeout,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        check=AsyncConnectionPool.check_connection,  # after a database restart, no dead connection is handed out
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
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        store = AsyncPostgresStore(pool, index=index if indexed else None)  # type: ignore[arg-type]
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
