"""The audit log: one record per request (who, what, on which resource, outcome, timing, client),
with a hash of the body, never the body.

Records are queued in memory and written in batches by a background task, so the request path
never waits on the database; the queue is flushed on shutdown, so a clean stop loses nothing. What
is queued is anything that can make its record (`PendingAudit`): the request path queues the few
values it has at hand and the writer makes the record from them, off the request's time.

The writer makes positional rows through the column types' own bind processors, with the table's
insert compiled once for the engine's dialect, straight to the driver: SQLAlchemy's per-row parameter
processing for a list of dicts cost more than the row itself. On PostgreSQL the rows go to asyncpg's
`executemany` (run by the event loop). On SQLite they go as multi-row `INSERT ... VALUES (...), (...)`
statements of up to `SQLITE_ROWS` rows each (its driver runs on a thread of its own, and `executemany`
there takes and gives back the GIL for every row while the event loop serves requests; one statement
binds its parameters, then runs without the GIL). Each statement and transaction costs such round
trips too, so a flush writes what was queued when it began (up to `BATCH`) in one transaction; it does
not chase what arrives while it writes (the old loop did, and under load wrote a few records at a
time, back to back). On trivial MCP calls driven in-process (the loop never idle), these took the
audit log's CPU a request from about 300 us (3.3 context switches) to about 90 (0.1), the request side
included; behind uvicorn at 1 client, with the loop idle between requests, the gain measured was
small. The multi-row statements replaced one JSON array read back by `json_each` and `json_extract`
(which parsed each row's text once per column): a flush's CPU went from about 24 us a record to
about 17.

The writer is never cancelled while it writes: closing asks it to stop, and it writes what is queued
before it returns (a cancelled write could lose its batch, or leave its connection holding SQLite's
write lock against the last flush).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from itertools import chain
from typing import Any, Protocol

from sqlalchemy import and_, delete, insert, select, true
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from citadel.memory.app_store import check_page, now
from citadel.memory.schema import audit
from citadel.memory.store_errors import store_errors

log = logging.getLogger(__name__)

BATCH = 5000
"""Records a flush writes in one transaction, at most: on SQLite, the cost of writing is per
statement and per transaction (the driver thread's round trips), far more than per row."""
SQLITE_ROWS = 256 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999 // 14
"""Rows a SQLite statement inserts, at most: 14 parameters a row, within the library's limit on a
statement's parameters (32766 since SQLite 3.32, 999 before)."""


@dataclass
class AuditRecord:
    at: datetime
    user_id: str | None
    session_id: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    method: str
    path: str
    status: int
    latency_ms: float
    client_ip: str | None
    user_agent: str | None
    error: str | None
    body_sha256: str | None

    def to_record(self) -> AuditRecord:
        return self


class PendingAudit(Protocol):
    """What the audit log queues: a record, or what the writer makes one from."""

    def to_record(self) -> AuditRecord: ...


FIELDS = [field.name for field in fields(AuditRecord)]


class _Insert:
    """The audit table's insert compiled for one dialect, and rows for it: a tuple per record in the
    statement's parameter order, through the column types' own bind processors (SQLite's datetimes
    become its text format), with NUL made visible (a path with `%00`: PostgreSQL would fail the
    whole batch on it, and with it every later one) and a lone surrogate, which UTF-8 cannot hold
    (both drivers would fail the batch on it), written "?". On SQLite the rows go as multi-row
    VALUES statements of up to `SQLITE_ROWS` rows, their parameters flattened."""

    def __init__(self, dialect: Dialect) -> None:
        compiled = insert(audit).inline().compile(dialect=dialect, column_keys=FIELDS)
        if not compiled.positional or compiled.positiontup is None:
            raise ValueError(f"the audit log needs a positional paramstyle; {dialect.name} has {dialect.paramstyle}")
        self._multi_row = dialect.name == "sqlite"
        self.sql = str(compiled)
        self._columns_sql = ", ".join(compiled.positiontup)
        self._row_sql = "(" + ", ".join("?" * len(compiled.positiontup)) + ")"
        self._full = self._values(SQLITE_ROWS)  # a flush's statements but its last
        self._columns: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, audit.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in compiled.positiontup
        ]

    def row(self, record: AuditRecord) -> tuple[Any, ...]:
        values = vars(record)  # not dataclasses.asdict(): the fields are flat, and asdict deep-copies each one
        row = []
        for name, process in self._columns:
            value = values[name]
            if isinstance(value, str):
                if "\x00" in value:
                    value = value.replace("\x00", "\\0")
                if not value.isascii():  # a lone surrogate (a token's claim may carry one) becomes "?"
                    value = value.encode("utf-8", "replace").decode("utf-8")
            row.append(value if process is None or value is None else process(value))
        return tuple(row)

    def _values(self, rows: int) -> str:
        """SQLite's insert of this many rows."""
        return f"INSERT INTO {audit.name} ({self._columns_sql}) VALUES {', '.join([self._row_sql] * rows)}"

    async def write(self, connection: AsyncConnection, rows: list[tuple[Any, ...]]) -> None:
        if not self._multi_row:
            await connection.exec_driver_sql(self.sql, rows)
            return
        for start in range(0, len(rows), SQLITE_ROWS):
            chunk = rows[start : start + SQLITE_ROWS]
            sql = self._full if len(chunk) == SQLITE_ROWS else self._values(len(chunk))
            parameters = tuple(chain.from_iterable(chunk))
            await connection.exec_driver_sql(sql, parameters)


class AuditLog:
    def __init__(self, engine: AsyncEngine, *, flush_interval: float = 1.0) -> None:
        self._engine = engine
        self._insert = _Insert(engine.dialect)
        self._queue: deque[PendingAudit] = deque()  # only the event loop touches it: no asyncio.Queue needed
        self._interval = flush_interval
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def record(self, entry: PendingAudit) -> None:
        """Queue a record (or what makes one); never blocks the request."""
        self._queue.append(entry)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def aclose(self) -> None:
        self._closing.set()
        if self._task is not None:
            await self._task  # its last flush
        while self._queue and await self.flush():  # what came in meanwhile, unless writes fail
            pass

    async def flush(self) -> int:
        """Write what is queued now; returns how many records were written. Records queued while it
        writes wait for the next flush: chasing them would write a few at a time, back to back."""
        written = 0
        remaining = len(self._queue)
        while remaining > 0:
            take = self._queue.popleft
            batch = [take() for _ in range(min(BATCH, remaining))]
            remaining -= len(batch)
            rows = [self._insert.row(entry.to_record()) for entry in batch]
            try:
                async with self._engine.begin() as connection:
                    await self._insert.write(connection, rows)
            except (SQLAlchemyError, OSError) as error:
                self._queue.extend(batch)  # keep them for the next attempt
                log.warning("audit log write failed (%d records kept for retry): %s", len(batch), error)
                return written
            written += len(batch)
        return written

    async def _run(self) -> None:
        while not self._closing.is_set():
            try:
                async with asyncio.timeout(self._interval):
                    await self._closing.wait()
            except TimeoutError:
                pass
            await self.flush()

    async def query(
        self,
        *,
        user_id: str | None = None,
        action: str | None = None,
        status: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        check_page(limit, offset)
        conditions = []
        if user_id:
            conditions.append(audit.c.user_id == user_id)
        if action:
            conditions.append(audit.c.action == action)
        if status is not None:
            conditions.append(audit.c.status == status)
        if since:
            conditions.append(audit.c.at >= since)
        if until:
            conditions.append(audit.c.at < until)
        query = select(audit).where(and_(true(), *conditions)).order_by(audit.c.id.desc()).limit(limit).offset(offset)
        with store_errors():
            async with self._engine.connect() as connection:
                rows = (await connection.execute(query)).mappings().all()
        return [dict(row) for row in rows]

    @staticmethod
    async def prune(engine: AsyncEngine, days: int) -> int:
        """Delete records older than `days`; returns how many."""
        async with engine.begin() as connection:
            result = await connection.execute(delete(audit).where(audit.c.at < now() - timedelta(days=days)))
        return int(result.rowcount or 0)
