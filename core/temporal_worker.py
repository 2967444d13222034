"""`citadel worker`: executes runs from Temporal (production mode).

Each run is the activity `citadel.execute_run(run_id)`: an attempt of `run_execution.execute_run`,
claimed with Temporal's attempt number (a later attempt takes the run over, an earlier one never
does), heartbeating Temporal every quarter second so that a cancellation reaches it within half a
second (the worker's heartbeat throttle) and its death is noticed after `CITADEL_RUN_HEARTBEAT_TIMEOUT`.

What the activity reports to Temporal: the run's final status when the run ended (a graph's own
failure is `error`, returned and not retried); a retryable failure when a store is unreachable
(`StoreUnavailable`: the next attempt resumes from the checkpoint) or when this worker is shutting
down (`WorkerShutdown`: another worker takes the run at once).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from citadel.core.run_execution import Claim, execute_run
from citadel.core.run_workflow import ACTIVITY, RunWorkflow
from citadel.core.runs import RunManager
from citadel.memory.store_errors import is_outage

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 0.25
HEARTBEAT_THROTTLE = timedelta(seconds=0.5)
"""Temporal delivers a cancellation as the answer to a heartbeat its core sends, at most one per
throttle interval (by default up to 0.8 × the heartbeat timeout)."""
FENCE_EVERY = 8
"""Check the run's row (cancelled elsewhere? taken over?) every this many heartbeats (2 s)."""


class RunActivities:
    def __init__(self, manager: RunManager) -> None:
        self._manager = manager

    @activity.defn(name=ACTIVITY)
    async def execute(self, run_id: str) -> str:
        info = activity.info()
        claim = Claim(
            owner=f"{self._manager.worker_id}:{info.attempt}",
            attempt=info.attempt,
            beat_seconds=HEARTBEAT_SECONDS,
            check_every=FENCE_EVERY,
            on_beat=activity.heartbeat,
        )
        log.info("worker %s: run %s, attempt %d", self._manager.worker_id, run_id, info.attempt)
        try:
            status = await execute_run(self._manager, run_id, claim)
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            if details is not None and details.worker_shutdown:
                raise ApplicationError("worker shutting down", type="WorkerShutdown") from None
            raise
        except Exception as error:
            if is_outage(error):
                raise ApplicationError(
                    f"a store is unreachable: {type(error).__name__}: {error}", type="StoreUnavailable"
                ) from error
            raise
        if status is None:
            return (await self._manager.store.get_run(run_id)).status
        return status


def build_worker(client: Client, manager: RunManager) -> Worker:
    settings = manager.settings
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[RunWorkflow],
        activities=[RunActivities(manager).execute],
        max_concurrent_activities=settings.worker_concurrency,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        graceful_shutdown_timeout=timedelta(0),  # runs are handed to another worker, which resumes them
    )
