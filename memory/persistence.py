"""LangGraph persistence: the checkpointer that makes threads durable and the store that holds
long-term memory across a user's threads.

PostgreSQL when `CITADEL_DATABASE_URL` is set (`postgres_persistence`, imported only then), SQLite
files in the data directory otherwise (the checkpointer: LangGraph's SQLite saver on a thread of its
own, `sqlite_checkpoints`). Schema set-up (`setup()`) runs explicitly, at start, never on import.

The store indexes memories by embedding where the backend can: SQLite through sqlite-vec, PostgreSQL
when the pgvector extension is available. Without it, memories are kept and listed but not ranked by
meaning (callers rank them themselves).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore, IndexConfig, Op, Result
from langgraph.store.sqlite.aio import AsyncSqliteStore

from citadel.memory.sqlite_checkpoints import ThreadedSqliteSaver
from citadel.memory.store_errors import store_errors
from citadel.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Persistence:
    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore
    indexed: bool
    """Whether `store.search(namespace, query=...)` ranks by meaning."""
    where: str


class SqliteMemoryStore(AsyncSqliteStore):
    """LangGraph's SQLite store (long-term memory), its failures mapped by `store_errors`: its file
    locked by another process past the busy timeout is `Unavailable` (503; a run waits it out), as
    on PostgreSQL, not a graph's own failure."""

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        with store_errors():
            return await super().abatch(ops)


@contextlib.asynccontextmanager
async def open_persistence(settings: Settings, index: IndexConfig) -> AsyncIterator[Persistence]:
    """`index` embeds memories for search by meaning, where the backend can index them."""
    if settings.database_url:
        # Imported here: psycopg and LangGraph's PostgreSQL classes stay out of an embedded start.
        from citadel.memory.postgres_persistence import open_postgres_persistence

        async with open_postgres_persistence(settings, settings.database_url, index) as persistence:
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
        ThreadedSqliteSaver.open(checkpoints) as saver,
        SqliteMemoryStore.from_conn_string(memories, index=index if indexed else None) as store,  # type: ignore[arg-type]
    ):
        await store.setup()
        yield Persistence(checkpointer=saver, store=store, indexed=indexed, where="sqlite")
