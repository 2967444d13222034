"""The executor of production mode (`CITADEL_TEMPORAL_ADDRESS`): an accepted run starts a Temporal
workflow whose id is the run id, executed by `citadel worker` processes (`temporal_worker.py`).

Any API replica addresses any run's workflow by its id (to cancel it), and submitting is idempotent:
a second submit of a running workflow is the same execution (`USE_EXISTING`), one of an ended
workflow is refused (`REJECT_DUPLICATE`), never run again. Committing the run and starting its
workflow are two steps, so a reconciler (every replica, every few seconds) re-submits runs left
`pending`, and fails runs whose workflow ended without ending them: no run is stranded. It replaces
the lease recovery loop of embedded mode: Temporal notices a dead worker (its heartbeats stop) and
hands the run to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from citadel.core.run_events import RunEnd
from citadel.core.run_workflow import WORKFLOW
from citadel.core.runs import RunManager
from citadel.memory.app_store import Run
from citadel.memory.store_errors import is_outage

log = logging.getLogger(__name__)

RECONCILE_SECONDS = 10.0
PENDING_SECONDS = 5.0
"""A run still `pending` this long after it was accepted is submitted again."""


class TemporalExecutor:
    def __init__(self, manager: RunManager, client: Client) -> None:
        self._manager = manager
        self._client = client
        self._settings = manager.settings
        self._reconciler: asyncio.Task[None] | None = None

    def claim_on_accept(self, run: Run) -> None:
        """Left pending: a worker claims it, fenced by the attempt Temporal gives it."""

    async def submit(self, run_id: str) -> None:
        try:
            await self._start(run_id)
        except RPCError as error:  # Temporal unreachable: the run is committed; the reconciler retries
            log.warning("run %s: Temporal did not take it yet (%s); it will be submitted again", run_id, error)

    async def _start(self, run_id: str) -> None:
        try:
            await self._client.start_workflow(
                WORKFLOW,
                args=[run_id, self._settings.run_heartbeat_timeout],
                id=run_id,
                task_queue=self._settings.temporal_task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:  # its workflow ran already: see whether it ended the run
            await self._check_closed(run_id)

    async def cancel(self, run_id: str, previous: str) -> bool:
        try:
            await self._client.get_workflow_handle(run_id).cancel()
        except RPCError as error:  # never started, or over: the run is marked cancelled either way
            log.info("run %s: its workflow was not cancelled (%s)", run_id, error)
        # A running run's activity sees the cancellation at its next heartbeat and ends the run;
        # a pending one never starts.
        return previous == "running"

    async def start(self) -> None:
        self._reconciler = asyncio.create_task(self._reconcile_forever(), name="run-reconciler")

    async def aclose(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_SECONDS)
            try:
                await self.reconcile()
            except Exception as error:  # the loop must outlive a database or Temporal outage
                if not (is_outage(error) or isinstance(error, RPCError)):
                    log.exception("run reconciler pass failed; retrying")

    async def reconcile(self) -> None:
        """Submit runs left pending; fail runs whose workflow ended without ending them."""
        silent = max(60.0, 6 * self._settings.run_heartbeat_timeout)
        for run in await self._manager.store.stalled_runs(PENDING_SECONDS, silent):
            if run.status == "pending":
                log.info("run %s: still pending; submitting it again", run.run_id)
                await self.submit(run.run_id)
            else:
                await self._check_closed(run.run_id)

    async def _check_closed(self, run_id: str) -> None:
        try:
            description = await self._client.get_workflow_handle(run_id).describe()
        except RPCError as error:
            log.info("run %s: its workflow cannot be described (%s)", run_id, error)
            return
        if description.status in (None, WorkflowExecutionStatus.RUNNING):
            return
        message = f"its Temporal workflow ended ({description.status.name.lower()}) without finishing it"
        if await self._manager.store.fail_run(run_id, message):
            log.warning("run %s: %s", run_id, message)
            run = await self._manager.store.get_run(run_id)
            if run.thread_id is not None:
                await self._manager.store.release_thread(run.thread_id, "error")
            await self._manager.event_log.end(run_id, RunEnd("error", message))
