"""The executor of embedded mode: accepted runs execute as tasks of this process, and a recovery
loop takes over runs whose lease lapsed (this process restarted after a crash, or another replica
died)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from citadel.core.runs import RunManager

log = logging.getLogger(__name__)


class InProcessExecutor:
    def __init__(self, manager: RunManager) -> None:
        self._manager = manager
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._recovery: asyncio.Task[None] | None = None

    def submit(self, run_id: str) -> None:
        if run_id in self._tasks:
            return
        task = asyncio.create_task(self._manager.execute(run_id), name=f"run:{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run_id, None))

    def cancel_local(self, run_id: str) -> asyncio.Task[None] | None:
        task = self._tasks.get(run_id)
        if task is not None:
            task.cancel()
        return task

    async def start(self) -> None:
        await self.recover()
        self._recovery = asyncio.create_task(self._recover_forever(), name="run-recovery")

    async def recover(self) -> int:
        runs = await self._manager.store.recoverable_runs()
        for run in runs:
            if run.run_id not in self._tasks:
                log.info("resuming run %s (%s) on thread %s", run.run_id, run.status, run.thread_id)
                self.submit(run.run_id)
        return len(runs)

    async def _recover_forever(self) -> None:
        while True:
            await asyncio.sleep(self._manager.settings.run_lease_seconds / 2)
            try:
                await self.recover()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("run recovery pass failed; retrying")

    async def aclose(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
