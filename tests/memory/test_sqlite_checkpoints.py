"""The embedded checkpointer's failures reach callers as Citadel errors, as the PostgreSQL one's do:
the file locked by another process past the busy timeout is `Unavailable` (503), the thread's
checkpoints untouched; once the lock is gone the same call goes through."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from citadel.errors import Unavailable
from citadel.memory.sqlite_checkpoints import ThreadedSqliteSaver


async def test_a_file_locked_by_another_process_is_unavailable(tmp_path: Path) -> None:
    path = str(tmp_path / "checkpoints.db")
    async with ThreadedSqliteSaver.open(path, busy_timeout=0.2) as saver:
        other = sqlite3.connect(path, isolation_level=None)  # another process's connection, as far as SQLite knows
        try:
            other.execute("BEGIN IMMEDIATE")  # holds the file's write lock
            with pytest.raises(Unavailable) as refused:
                await saver.adelete_thread("t")
            assert isinstance(refused.value.__cause__, sqlite3.OperationalError)
            assert refused.value.retry_after > 0
            other.execute("ROLLBACK")
            await saver.adelete_thread("t")  # the lock gone, the same write goes through
        finally:
            other.close()
