"""The embedded checkpointer: LangGraph's `SqliteSaver` (the standard library's sqlite3) answering
LangGraph's async calls, each call one hop to a thread of its own and back.

LangGraph's `AsyncSqliteSaver` goes through aiosqlite, which hops to its connection's thread and
back for every cursor, statement, fetch and commit: a checkpoint read is about six hops, each a
wake-up of that thread and then of the event loop, and a run makes several such calls. The
synchronous saver does the same statements on the same file (same tables, same set-up), so this
class only runs its methods on one thread, in the order they were called, as the async saver's lock
did. Listing reads the page asked for whole, then yields it. Its failures are mapped by
`store_errors`, as the PostgreSQL checkpointer's are: the file locked by another process past the
busy timeout is `Unavailable` (503), not the driver's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.sqlite import SqliteSaver

from citadel.memory.store_errors import store_errors

P = ParamSpec("P")
T = TypeVar("T")


class ThreadedSqliteSaver(SqliteSaver):
    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        super().__init__(conn)
        self._executor = executor

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, path: str, *, busy_timeout: float = 5.0) -> AsyncIterator[ThreadedSqliteSaver]:
        """The saver on the SQLite file at `path`, its tables set up, with its thread; on exit the
        calls under way finish, then the thread and the connection close. `busy_timeout`: how long a
        write waits for another process's lock on the file (sqlite3's default)."""
        conn = sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False)
        executor = ThreadPoolExecutor(1, thread_name_prefix="citadel-checkpoints")
        try:
            saver = cls(conn, executor)
            await saver._call(saver.setup)
            yield saver
        finally:
            await asyncio.to_thread(executor.shutdown, wait=True)
            conn.close()

    async def _call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with store_errors():
            return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: function(*args, **kwargs))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._call(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        page = await self._call(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in page:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._call(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self._call(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._call(self.delete_thread, thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await self._call(lambda: self.get_delta_channel_history(config=config, channels=channels))
