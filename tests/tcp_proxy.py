"""A TCP proxy the test controls, in front of a real service (PostgreSQL): `cut()` drops every open
connection and refuses new ones, as a database restart or a network failure does; `restore()`
lets traffic through again. It runs its own event loop in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._cut = False
        self.port = 0
        self.refused = 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._cut:
            self.refused += 1
            client_writer.close()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        except OSError:
            client_writer.close()
            return
        self._open.update((client_writer, server_writer))
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))
        self._open.difference_update((client_writer, server_writer))

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def _drop_all(self) -> None:
        self._cut = True
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    def cut(self) -> None:
        self._loop.call_soon_threadsafe(self._drop_all)

    def restore(self) -> None:
        self._loop.call_soon_threadsafe(setattr, self, "_cut", False)

    @classmethod
    @contextlib.contextmanager
    def running(cls, host: str, port: int) -> Iterator[TcpProxy]:
        proxy = cls(host, port)
        thread = threading.Thread(target=proxy._loop.run_forever, name="tcp-proxy", daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(proxy._start(), proxy._loop).result(10)
        try:
            yield proxy
        finally:
            asyncio.run_coroutine_threadsafe(proxy._shutdown(), proxy._loop).result(10)
            proxy._loop.call_soon_threadsafe(proxy._loop.stop)
            thread.join(10)
            proxy._loop.close()

    async def _shutdown(self) -> None:
        self._drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
