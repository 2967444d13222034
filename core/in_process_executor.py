"""The executor of embedded mode: accepted runs execute as tasks of this process.

Each task holds a lease on its run and renews it; a recovery loop takes over runs whose lease lapsed
(this process restarted after a crash, or another replica on the same database died). A run still
`pending` is left alone for a lease's length first: the process that accepted it is about to start
it. A run this process accepts is written already claimed by it (the lease taken in the accepting
transaction), and its task starts without claiming it again. While a store the run needs is
unreachable (a database restart), the task waits and tries again, resuming from the last checkpoint
once the store is back: a short outage delays runs, it does not fail them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from citadel.core.run_execution import Claim, execute_run
from citadel.core.runs import RunManager
from citadel.memory.app_store import Run, now
from citadel.memory.store_errors import is_outage

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0
CANCEL_WAIT_SECONDS = 30.0


class InProcessExecutor:
    def __init__(self, manager: RunManager) -> None:
        self._manager = manager
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._recovery: asyncio.Task[None] | None = None
        lease = manager.settings.run_lease_seconds
        self._claim = Claim(owner=manager.worker_id, beat_seconds=lease / 3)
        self._claimed: dict[str, tuple[Run, float]] = {}
        """Runs written claimed by this process, not yet started: run id → (run, start it by)."""

    def claim_on_accept(self, run: Run) -> None:
        """Write `run` claimed by this process; the first `submit` of it starts it without claiming
        it again, provided that comes within a beat (before then no one else may take it over)."""
        lease = self._manager.settings.run_lease_seconds
        stamp = now()
        run.status, run.attempt, run.started_at = "running", run.attempt + 1, stamp
        run.lease_owner, run.lease_expires_at = self._claim.owner, stamp + timedelta(seconds=lease)
        moment = time.monotonic()
        for stale in [key for key, (_, by) in self._claimed.items() if by < moment]:  # refused, or never launched
            del self._claimed[stale]
        self._claimed[run.run_id] = (run, moment + self._claim.beat_seconds)

    async def submit(self, run_id: str) -> None:
        if run_id in self._tasks:
            return
        claimed, by = self._claimed.pop(run_id, (None, 0.0))
        task = asyncio.create_task(
            self._execute(run_id, claimed if by > time.monotonic() else None), name=f"run:{run_id}"
        )
        self._tasks[run_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run_id, None))

    async def _execute(self, run_id: str, claimed: Run | None) -> None:
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                await execute_run(self._manager, run_id, self._claim, claimed=claimed)
                return
            except Exception as error:
                if not is_outage(error):
                    log.exception("run %s: its execution failed; recovery takes it up when its lease lapses", run_id)
                    return
                log.warning(
                    "run %s: a store is unreachable (%s); resuming it from its last checkpoint in %.1f s",
                    run_id, type(error).__name__, delay,
                )  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
            claimed = None  # a later try claims it again (the lease may have lapsed meanwhile)

    async def cancel(self, run_id: str, previous: str) -> bool:
        self._claimed.pop(run_id, None)  # cancelled before it started: it must not start
        task = self._tasks.get(run_id)
        if task is None:
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_WAIT_SECONDS)
        # A task stopped inside the run records the end itself; one stopped between two tries (a
        # store outage) or not stopped in time does not.
        return task.done() and not task.cancelled()

    async def start(self) -> None:
        await self.recover()
        self._recovery = asyncio.create_task(self._recover_forever(), name="run-recovery")

    async def recover(self) -> int:
        runs = await self._manager.store.recoverable_runs(pending_for=self._manager.settings.run_lease_seconds)
        for run in runs:
            if run.run_id not in self._tasks:
                log.info("resuming run %s (%s) on thread %s", run.run_id, run.status, run.thread_id)
                await self.submit(run.run_id)
        return len(runs)

    async def _recover_forever(self) -> None:
        while True:
            await asyncio.sleep(self._manager.settings.run_lease_seconds / 2)
            try:
                await self.recover()
            except Exception:  # the loop must outlive a database outage
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
