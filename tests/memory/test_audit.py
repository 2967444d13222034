"""The audit log's writer on both databases: what the request path queued (a record, or a pending
entry that makes one) is written in batches and read back as it was, times comparable with the
query's bounds, and a NUL in a text made visible rather than failing the batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from citadel.memory.app_store import now
from citadel.memory.audit import BATCH, AuditLog, AuditRecord


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

    rows = await audit_log.query(since=started, until=now() + timedelta(seconds=1), limit=500)
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
