"""Store failures reach callers as Citadel errors: an unreachable database is `Unavailable` (503),
a value the database refuses is `InvalidRequest` (400), never the driver's text."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from citadel.errors import InvalidRequest, NotFound, Unavailable
from citadel.memory.app_store import AppStore
from citadel.memory.database import create_engine
from citadel.memory.persistence import SqliteMemoryStore
from citadel.memory.store_errors import store_errors
from tests.live_server import migrate_database
from tests.ollama_wire_server import free_port


@pytest.fixture
async def store(app_engine: AsyncEngine) -> AsyncIterator[AppStore]:
    async with AppStore(app_engine) as store:
        yield store


async def test_refused_values_are_invalid_requests(store: AppStore) -> None:
    thread = await store.create_thread("ada")
    with pytest.raises(InvalidRequest, match="offset"):
        await store.search_threads("ada", offset=10**30)
    with pytest.raises(InvalidRequest, match="offset"):
        await store.list_runs(thread.thread_id, offset=10**30)
    with pytest.raises(InvalidRequest, match="thread_id"):
        await store.create_thread("ada", thread_id="t" * 10_000)
    with pytest.raises(InvalidRequest, match="NUL"):
        await store.create_thread("ada", thread_id="a\x00b")
    with pytest.raises(NotFound):
        await store.get_thread("t" * 10_000, "ada")


async def test_postgres_refusals_name_no_internals(make_settings: Any, database_url: str) -> None:
    settings = make_settings(database_url=database_url)
    await migrate_database(settings)
    store = AppStore(create_engine(settings))
    try:
        thread = await store.create_thread("ada")
        for attempt in (
            store.update_thread(thread.thread_id, "ada", metadata={"k": "a\x00b"}),
            store.search_threads("ada", metadata={"k": "a\x00b"}),
            store.get_thread("a\x00b", "ada"),
        ):
            with pytest.raises(InvalidRequest, match="NUL") as refused:
                await attempt
            assert "sqlalchemy" not in refused.value.message.lower()
    finally:
        await store.close()
        await store.engine.dispose()


async def test_unreachable_database_is_unavailable(make_settings: Any) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    store = AppStore(create_engine(make_settings(database_url=closed, database_timeout=2)))
    try:
        with pytest.raises(Unavailable) as unavailable:
            await store.get_thread("t", "ada")
        assert unavailable.value.retry_after > 0
        with pytest.raises(Unavailable), store_errors():  # the mapping every store call goes through
            async with store.engine.connect() as connection:
                await connection.execute(text("select 1"))
    finally:
        await store.close()
        await store.engine.dispose()


async def test_embedded_memory_store_locked_by_another_process_is_unavailable(tmp_path: Path) -> None:
    """The SQLite long-term store's file held by another writer past the busy timeout (sqlite3's
    5 s): 503, which a run waits out, not a graph's own failure; then writes go through again."""
    path = tmp_path / "store.sqlite"
    async with SqliteMemoryStore.from_conn_string(str(path)) as memories:
        await memories.setup()
        other = sqlite3.connect(path, isolation_level=None)  # another process's connection, as far as SQLite can tell
        try:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(Unavailable) as caught:
                await memories.aput(("ada", "memories"), "m1", {"text": "likes tea"})
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        finally:
            other.close()
        await memories.aput(("ada", "memories"), "m1", {"text": "likes tea"})
        stored = await memories.aget(("ada", "memories"), "m1")
        assert stored is not None
        assert stored.value == {"text": "likes tea"}
