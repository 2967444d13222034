"""What the app store's layers cost a call beyond the database driver alone (`python -m benchmarks.store_overhead`).

Two calls every run's path makes, through `AppStore` and, as the baseline, the same statements
through the bare driver in this process on the same database:
- a read: a thread by id (`get_thread`);
- a write: a thread made in a transaction that first looks for its id (`create_thread`).
On PostgreSQL the store goes through SQLAlchemy's async engine and asyncpg (the baseline: asyncpg);
on SQLite through a thread of the store's own and `sqlite3` (the baseline: `sqlite3` called
inline, no thread). Printed: CPU microseconds a call (this process, all threads: `time.process_time`)
and the ratio to the baseline, medians of alternating rounds; the machine's load. It explains where
the PostgreSQL rows of `benchmarks.peers` spend their CPU: on this 2-core VM a call's cost is
mostly the layers' and the wake-ups (of a thread, of the loop, of the server), not the SQL.

    python -m benchmarks.store_overhead [--calls 1000] [--rounds 3]
    (PostgreSQL: CITADEL_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import uvloop

from citadel.memory.app_store import AppStore
from citadel.memory.database import create_engine, migrate
from citadel.settings import Settings
from tests.live_server import fresh_database

POSTGRES = os.environ.get("CITADEL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
_SELECT = "SELECT * FROM citadel_threads WHERE thread_id = {p}"
_INSERT = (
    "INSERT INTO citadel_threads (thread_id, owner, graph, title, status, metadata, created_at, updated_at) "
    "VALUES ({p1}, {p2}, NULL, NULL, 'idle', {p3}, {p4}, {p4})"
)
Call = Callable[[], Awaitable[object]]


async def cpu_per_call(call: Call, calls: int) -> float:
    for _ in range(min(50, calls)):  # warm: caches, prepared statements, pool
        await call()
    started = time.process_time()
    for _ in range(calls):
        await call()
    return (time.process_time() - started) / calls * 1e6


async def postgres_calls(store: AppStore, raw: asyncpg.Connection) -> dict[str, tuple[Call, Call]]:
    known = (await store.create_thread("bench")).thread_id
    select = _SELECT.format(p="$1")
    insert = _INSERT.format(p1="$1", p2="$2", p3="$3::jsonb", p4="$4")

    async def raw_write() -> None:
        thread_id, stamp = str(uuid.uuid4()), datetime.now(UTC)
        async with raw.transaction():
            if await raw.fetchrow(select, thread_id) is None:
                await raw.execute(insert, thread_id, "bench", "{}", stamp)

    return {
        "read (get_thread)": (lambda: store.get_thread(known, "bench"), lambda: raw.fetchrow(select, known)),
        "write (create_thread)": (lambda: store.create_thread("bench"), raw_write),
    }


async def sqlite_calls(store: AppStore, raw: sqlite3.Connection) -> dict[str, tuple[Call, Call]]:
    known = (await store.create_thread("bench")).thread_id
    select = _SELECT.format(p="?")
    insert = _INSERT.format(p1="?", p2="?", p3="?", p4="?")

    async def raw_read() -> object:
        return raw.execute(select, (known,)).fetchone()

    async def raw_write() -> None:
        thread_id, stamp = str(uuid.uuid4()), datetime.now(UTC).isoformat()
        raw.execute("BEGIN")  # as the store's transaction: begun before the look-up
        if raw.execute(select, (thread_id,)).fetchone() is None:
            raw.execute(insert, (thread_id, "bench", "{}", stamp, stamp))
        raw.execute("COMMIT")

    return {
        "read (get_thread)": (lambda: store.get_thread(known, "bench"), raw_read),
        "write (create_thread)": (lambda: store.create_thread("bench"), raw_write),
    }


async def measure(backend: str, settings: Settings, calls: int, rounds: int) -> list[str]:
    engine = create_engine(settings)
    await migrate(engine)
    lines = []
    async with AppStore(engine) as store:
        if backend == "PostgreSQL":
            raw_pg = await asyncpg.connect(settings.database_url)
            pairs = await postgres_calls(store, raw_pg)
        else:
            raw_lite = sqlite3.connect(settings.data_dir / "citadel.db", isolation_level=None)
            raw_lite.execute("PRAGMA journal_mode=WAL")
            pairs = await sqlite_calls(store, raw_lite)
        try:
            for name, (through_store, bare) in pairs.items():
                store_cpu, bare_cpu = [], []
                for _ in range(rounds):
                    store_cpu.append(await cpu_per_call(through_store, calls))
                    bare_cpu.append(await cpu_per_call(bare, calls))
                s, b = statistics.median(store_cpu), statistics.median(bare_cpu)
                lines.append(f"  {backend:10s} {name:22s} store {s:7.0f} us   driver alone {b:6.0f} us   {s / b:5.1f}x")
        finally:
            if backend == "PostgreSQL":
                await raw_pg.close()
            else:
                raw_lite.close()
    await engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    print("App store vs the driver alone: CPU a call (this process, all threads), medians of alternating rounds")
    with tempfile.TemporaryDirectory(prefix="citadel-store-") as data_dir:
        sqlite = Settings(_env_file=None, data_dir=Path(data_dir))  # type: ignore[call-arg]
        for line in uvloop.run(measure("SQLite", sqlite, args.calls, args.rounds)):
            print(line)
    with fresh_database(POSTGRES) as database_url:
        postgres = Settings(_env_file=None, database_url=database_url, data_dir=Path(data_dir))  # type: ignore[call-arg]
        for line in uvloop.run(measure("PostgreSQL", postgres, args.calls, args.rounds)):
            print(line)
    print(f"load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f}")
    print("command: python -m benchmarks.store_overhead " + f"--calls {args.calls} --rounds {args.rounds}")


if __name__ == "__main__":
    main()
