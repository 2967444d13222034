"""`citadel worker`: a process that executes runs handed out by Temporal (production mode).

It opens what executing a run needs (the services, the graphs on the PostgreSQL checkpointer, the
Redis run event log) without accepting any run itself, and polls the task queue until SIGTERM or
SIGINT; then running runs are handed back to Temporal, which gives them to another worker at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from temporalio.worker import Worker

from citadel.core.temporal_worker import build_worker
from citadel.runtime.core import connect_temporal, open_core
from citadel.runtime.heap import settled_heap
from citadel.settings import Settings

log = logging.getLogger("citadel.worker")


async def serve_worker(settings: Settings) -> int:
    """Run until a signal; the exit code."""
    async with open_core(settings, executes=False) as core:
        client = await connect_temporal(settings)
        worker = build_worker(client, core.runs)
        with settled_heap(settings.gc_threshold):
            return await _poll(settings, core.runs.worker_id, worker)


async def _poll(settings: Settings, worker_id: str, worker: Worker) -> int:
    """Poll Temporal's task queue until a signal; the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    polling = asyncio.create_task(worker.run(), name="temporal-worker")
    stopping = asyncio.create_task(stop.wait(), name="stop-signal")
    log.info(
        "citadel worker %s: executing runs from %s (queue %s, up to %d at once)",
        worker_id, settings.temporal_address, settings.temporal_task_queue, settings.worker_concurrency,
    )  # fmt: skip
    await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not polling.done():
        log.info("citadel worker %s: stopping; its running runs go to other workers", worker_id)
        await worker.shutdown()
    try:
        await polling
    except Exception:
        log.exception("the Temporal worker failed")
        return 1
    with contextlib.suppress(asyncio.CancelledError):
        await stopping
    return 0
