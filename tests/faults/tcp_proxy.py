"""A small TCP proxy in front of a real service (PostgreSQL, Redis), for fault tests.

The test controls it: `refuse()` closes every connection and refuses new ones (the service is
stopped), `freeze()` keeps connections open but forwards nothing, and accepts new ones that never
get an answer (the service hangs, as under SIGSTOP), `restore()` forwards again. It runs its own
asyncio loop in a thread, so synchronous tests and the `citadel serve` processes behind it are
served alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Literal

Mode = Literal["forward", "refuse", "freeze"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = _free_port()
        self.mode: Mode = "forward"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy:{self.port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thawed = asyncio.Event()

    # --- control, from the test's thread ---------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def running(cls, upstream_host: str, upstream_port: int) -> Iterator[TcpProxy]:
        proxy = cls(upstream_host, upstream_port)
        proxy._thread.start()
        proxy._call(proxy._listen())
        try:
            yield proxy
        finally:
            proxy._call(proxy._shutdown())
            proxy._loop.call_soon_threadsafe(proxy._loop.stop)
            proxy._thread.join(10)
            proxy._loop.close()

    def refuse(self) -> None:
        """Close every connection and refuse new ones, as a stopped server does."""
        self._call(self._set("refuse"))

    def freeze(self) -> None:
        """Forward nothing either way; new connections are accepted and never answered."""
        self._call(self._set("freeze"))

    def restore(self) -> None:
        self._call(self._set("forward"))

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    # --- the proxy, on its own loop ----------------------------------------------------------------
    async def _listen(self) -> None:
        self._thawed.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _set(self, mode: Mode) -> None:
        previous, self.mode = self.mode, mode
        if mode == "refuse":
            # Stop listening first: a connection accepted while the others close would stay open,
            # forwarding, through the outage (and then be left unclosed).
            if self._server is not None:
                self._server.close()
                self._server = None
            await self._close_all()
        elif mode == "freeze":
            self._thawed.clear()
        else:
            self._thawed.set()
            if previous == "refuse":
                await self._listen()

    async def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._writers.clear()

    async def _shutdown(self) -> None:
        await self._close_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        # Connections still waiting in `_accept` (a frozen service) are tasks of the server, not
        # pipes: cancel them, then let the loop run the aborted transports' close callbacks, so no
        # socket outlives the loop (an "unclosed transport" warning in whichever test runs next).
        current = asyncio.current_task()
        waiting = [task for task in asyncio.all_tasks() if task is not current]
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        for _ in range(3):
            await asyncio.sleep(0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._thawed.wait()  # a frozen service accepts, and never answers
            if self.mode == "refuse":  # accepted just before the listener closed
                raise ConnectionRefusedError
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except (OSError, asyncio.CancelledError):
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self._thawed.wait()
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            sink.transport.abort()
            self._writers.discard(sink)
