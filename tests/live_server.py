"""Run the Citadel app under uvicorn on a free loopback port, in a background thread, on a
database of its own."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import openai
import uvicorn
from fastapi import FastAPI

from citadel.memory.database import create_engine, migrate
from citadel.runtime.app import create_app
from citadel.runtime.core import DepsAdjuster
from citadel.settings import Settings


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server at `server_url` (its URL), dropped afterwards."""
    name = f"citadel_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(server_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def migrate_database(settings: Settings) -> None:
    """What `citadel migrate` does, for the test's database."""
    engine = create_engine(settings)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        settings: Settings,
        timeout: float = 60.0,
        app: FastAPI | None = None,
        *,
        adjust_deps: DepsAdjuster | None = None,
    ) -> Iterator[LiveServer]:
        """`app`: the app `create_app(settings)` made, when a test adds to it first; `adjust_deps`: what
        the graphs are built with (a scripted tool model). Usable from synchronous and asynchronous
        tests alike (the migration runs on a thread of its own)."""
        with ThreadPoolExecutor(1) as migrating:
            migrating.submit(asyncio.run, migrate_database(settings)).result()
        app = app or create_app(settings, adjust_deps=adjust_deps)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="citadel-live-server", daemon=True)
        thread.start()
        started = threading.Event()

        def wait() -> None:
            while thread.is_alive() and not server.started:
                started.wait(0.02)

        waiter = threading.Thread(target=wait)
        waiter.start()
        waiter.join(timeout)
        if not server.started:
            server.should_exit = True
            thread.join(10)
            raise RuntimeError("the Citadel app did not start (see the log above)")
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield cls(url=f"http://127.0.0.1:{port}", server=server)
        finally:
            server.should_exit = True
            thread.join(30)


@contextlib.asynccontextmanager
async def clients(citadel: LiveServer) -> AsyncIterator[tuple[openai.AsyncOpenAI, httpx.AsyncClient]]:
    """The OpenAI client on Citadel's /v1, and a plain HTTP client for /health/ready and /metrics."""
    async with (
        openai.AsyncOpenAI(base_url=f"{citadel.url}/v1", api_key="unused", max_retries=0, timeout=60) as client,
        httpx.AsyncClient(base_url=citadel.url, timeout=10) as http,
    ):
        yield client, http
