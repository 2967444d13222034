"""The checkpointer's pool checks a connection it hands out without a round trip, yet still never
hands out one the server closed (real PostgreSQL: a backend terminated as on a restart)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from citadel.memory.postgres_persistence import check_when_closed


async def _backend_pid(pool: AsyncConnectionPool[Any]) -> int:
    async with pool.connection() as connection:
        row = await (await connection.execute("select pg_backend_pid()")).fetchone()
        assert row is not None
        return int(row[0])


async def test_a_connection_closed_by_the_server_is_replaced_and_a_healthy_one_costs_no_query(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_checks = 0
    real_check = AsyncConnectionPool.check_connection

    async def counted(connection: Any) -> None:
        nonlocal real_checks
        real_checks += 1
        await real_check(connection)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted))
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_url, min_size=1, max_size=1, kwargs={"autocommit": True}, check=check_when_closed, open=False
    )
    await pool.open(wait=True)
    try:
        first = await _backend_pid(pool)
        assert await _backend_pid(pool) == first
        assert real_checks == 0  # two checkouts of a healthy connection: no query beyond the caller's

        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
            await admin.execute("select pg_terminate_backend(%s)", (first,))
            gone = "select count(*) from pg_stat_activity where pid = %s"
            for _ in range(100):  # until the backend has exited: its farewell was sent before
                row = await (await admin.execute(gone, (first,))).fetchone()
                if row is not None and row[0] == 0:
                    break
                await asyncio.sleep(0.05)

        replaced = await _backend_pid(pool)  # not the terminated one: that would fail this query
        assert replaced != first
        assert real_checks == 1
    finally:
        await pool.close()
