"""The audit log's writer on both databases: what the request path queued (a record, or a pending
entry that makes one) is written in batches and read back as it was, times comparable with the
query's bounds, and a NUL in a text made visible rather than failing the batch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from citadel.memory.app_store import now
from citadel.memory.audit import BATCH, SQLITE_ROWS, AuditLog, AuditRecord


@pytest.fixture
def audit_log(app_engine: AsyncEngine) -> AuditLog:
    return AuditLog(app_engine)


def record(path: str, status: int = 200, **fields: Any) -> AuditRecord:
    values: dict[str, Any] = {
        "at": now(), "user_id": "ada", "session_id": None, "action": "POST /mcp", "resource_type": "mcp",
        "resource_id": None, "method": "POST", "path": path, "status": status, "latency_ms": 1.25,
        "client_ip": "127.0.0.1", "user_agent": "pytest", "error": None, "body_sha256": "ab" * 32,
    }  # fmt: skip
    return AuditRecord(**{**values, **fields})


@dataclass
class Pending:
    """A stand-in for the request path's compact entry: the writer makes the record."""

    path: str

    def to_record(self) -> AuditRecord:
        return record(self.path, status=404, error="HTTP 404")


async def test_records_and_pending_entries_are_written_and_read_back(audit_log: AuditLog) -> None:
    started = now() - timedelta(seconds=1)
    for index in range(BATCH + 5):  # more than one batch
        audit_log.record(record(f"/mcp/{index}"))
    audit_log.record(Pending("/threads/a\x00b"))

    assert await audit_log.flush() == BATCH + 6

    rows: list[dict[str, Any]] = []
    while page := await audit_log.query(since=started, until=now() + timedelta(seconds=1), limit=500, offset=len(rows)):
        rows += page
    assert len(rows) == BATCH + 6
    newest = rows[0]
    assert (newest["path"], newest["status"], newest["error"]) == ("/threads/a\\0b", 404, "HTTP 404")
    oldest = rows[-1]
    assert (oldest["path"], oldest["user_id"], oldest["latency_ms"], oldest["body_sha256"]) == (
        "/mcp/0",
        "ada",
        1.25,
        "ab" * 32,
    )
    assert await audit_log.query(since=now() + timedelta(seconds=5)) == []
    assert [r["path"] for r in await audit_log.query(status=404)] == ["/threads/a\\0b"]


async def test_texts_beyond_ascii_and_quotes_are_read_back_as_written(audit_log: AuditLog) -> None:
    path = "/v1/collections/caf\u00e9-\u2713/\"q\" 'x' \\ \U0001f600"
    audit_log.record(record(path, user_agent="Mozilla/5.0 (\u00e9)", error="line\nbreak", latency_ms=0.5))

    assert await audit_log.flush() == 1

    (row,) = await audit_log.query()
    assert (row["path"], row["user_agent"], row["error"], row["latency_ms"], row["status"]) == (
        path,
        "Mozilla/5.0 (\u00e9)",
        "line\nbreak",
        0.5,
        200,
    )


async def test_closing_writes_what_is_queued_without_waiting_for_the_interval(app_engine: AsyncEngine) -> None:
    audit_log = AuditLog(app_engine, flush_interval=3600)
    await audit_log.start()
    for index in range(BATCH + 1):
        audit_log.record(record(f"/mcp/{index}"))

    async with asyncio.timeout(30):  # a deadline, not a measure: closing must not wait out the hour
        await audit_log.aclose()

    assert [row["path"] for row in await audit_log.query(limit=2)] == [f"/mcp/{BATCH}", f"/mcp/{BATCH - 1}"]
    assert len(await audit_log.query(limit=500, offset=BATCH - 499)) == 500


async def test_more_rows_than_a_statement_takes_and_a_lone_surrogate_are_written(audit_log: AuditLog) -> None:
    """SQLite takes the rows in statements of `SQLITE_ROWS`; a text UTF-8 cannot hold (a lone
    surrogate, as a token's claim may carry) is written with "?" for it rather than failing the batch."""
    for index in range(SQLITE_ROWS * 2 + 3):
        audit_log.record(record(f"/mcp/{index}"))
    audit_log.record(record("/mcp/last", user_id="ada\ud800"))

    assert await audit_log.flush() == SQLITE_ROWS * 2 + 4

    newest, previous = await audit_log.query(limit=2)
    assert (newest["path"], newest["user_id"], previous["path"]) == ("/mcp/last", "ada?", f"/mcp/{SQLITE_ROWS * 2 + 2}")
    assert len(await audit_log.query(limit=500, offset=SQLITE_ROWS * 2 + 4 - 500)) == 500
