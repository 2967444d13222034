"""Transactions on the app database, each one a plain function of a SQLAlchemy `Connection` handed
over whole: `read(work)` runs it on a connection, `write(work)` in a transaction committed when it
returns and rolled back when it raises, `write_each(work)` with each of its statements committed on its
own (for work whose every statement stands alone, such as one INSERT).

- PostgreSQL (`EngineTransactions`): on the async engine, the function whole in one greenlet
  (`run_sync`), where awaiting each statement spawns one per statement; a read, and `write_each`, in
  autocommit.
- SQLite (`SqliteTransactions`): on a thread, with the standard library's driver: one hop from the
  event loop to the thread and back per transaction. aiosqlite makes several hops a statement (cursor,
  execute, fetch, close, each a wake-up of its thread and then of the loop), which made a run's
  three small transactions cost milliseconds of CPU and, under load, of waiting for the GIL. Writes
  queue for one writer thread, as SQLite takes one writer at a time (other processes on the file
  still meet its busy timeout, on that thread); reads run on threads of their own beside it (WAL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")

SQLITE_READERS = 2
"""Reader threads (and their connections) beside the one writer."""


def sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    """Every SQLite connection of the app database: WAL (readers beside the writer, other processes
    beside this one) and a busy timeout for the writer of another process."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Transactions(Protocol):
    async def read(self, work: Callable[[Connection], T]) -> T: ...

    async def write(self, work: Callable[[Connection], T]) -> T: ...

    async def write_each(self, work: Callable[[Connection], T]) -> T: ...

    async def close(self) -> None: ...


class EngineTransactions:
    """On an async engine (PostgreSQL through asyncpg), which its owner disposes of. A read runs in
    autocommit: under READ COMMITTED each of its statements sees its own snapshot either way, and a
    transaction around them only added a BEGIN and a ROLLBACK, each a round trip. So does `write_each`:
    a BEGIN and a COMMIT around a statement that is atomic by itself are two round trips for nothing."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def read(self, work: Callable[[Connection], T]) -> T:
        async with self._autocommit.connect() as connection:
            return await connection.run_sync(work)

    write_each = read  # the same: in autocommit, each statement its own transaction

    async def write(self, work: Callable[[Connection], T]) -> T:
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    async def close(self) -> None:
        pass


class SqliteTransactions:
    """On threads of its own, each with its own connection to the SQLite file at `url`."""

    def __init__(self, url: URL, timeout: float) -> None:
        self.engine: Engine = create_engine(
            url.set(drivername="sqlite"),
            # One connection per thread, kept: no pool churn, none waited for.
            pool_size=SQLITE_READERS + 1,
            max_overflow=0,
            connect_args={"timeout": timeout, "check_same_thread": False},
        )
        event.listen(self.engine, "connect", sqlite_pragmas)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="citadel-sqlite-writer")
        self._readers = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="citadel-sqlite-reader")

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, work)

    async def write(self, work: Callable[[Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._write, work)

    async def write_each(self, work: Callable[[Connection], T]) -> T:
        """As `write`: on the writer's thread a transaction costs no round trip."""
        return await self.write(work)

    def _read(self, work: Callable[[Connection], T]) -> T:
        with self.engine.connect() as connection:
            return work(connection)

    def _write(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as connection:
            return work(connection)

    async def close(self) -> None:
        """Let the transactions under way finish, then close the connections."""
        for executor in (self._writer, self._readers):
            await asyncio.to_thread(executor.shutdown, wait=True)
        self.engine.dispose()
