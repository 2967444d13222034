"""The Temporal workflow of a run: one activity, `citadel.execute_run(run_id)`, retried on another
worker when its worker dies (no heartbeat for `heartbeat_timeout`) or when a store it needs is
unreachable, until the run ends.

Only the run id passes through Temporal; the run's input, state and events stay in PostgreSQL and
Redis. The workflow names its activity by string and imports nothing but temporalio and the
standard library: Temporal's workflow sandbox re-imports what a workflow module imports, and the
workflow must stay deterministic across deploys, so every decision lives in the activity
(`temporal_worker.py`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW = "citadel.run"
ACTIVITY = "citadel.execute_run"
ATTEMPT_TIMEOUT = timedelta(hours=6)
"""One attempt's ceiling: the longest a run may execute."""
RUN_TIMEOUT = timedelta(hours=24)
"""All attempts together, retries of an unreachable store included."""
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=0.5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,  # bounded by RUN_TIMEOUT: a graph's own failure is returned, never retried
)


@workflow.defn(name=WORKFLOW)
class RunWorkflow:
    @workflow.run
    async def run(self, run_id: str, heartbeat_timeout: float) -> str:
        return await workflow.execute_activity(
            ACTIVITY,
            run_id,
            result_type=str,
            start_to_close_timeout=ATTEMPT_TIMEOUT,
            schedule_to_close_timeout=RUN_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=heartbeat_timeout),
            retry_policy=RETRY,
            # A cancelled workflow waits for its activity to record the run `interrupted`.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
