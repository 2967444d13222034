"""Micro-batching: many callers' small embedding requests gathered into few model calls.

A model embeds a batch of 32 texts in little more time than one text, so under load the batcher
takes everything queued while the previous batch ran (up to `max_batch` texts) and runs it as one
call at once. When idle, a request waits at most `max_wait` seconds for company before it runs alone.
Up to `parallel` model calls run at once: a model on one thread a call wastes no CPU on keeping its
threads in step, so several such calls side by side embed more per core than one call on several
threads, on a machine whose cores are also busy with the server's event loop. A batch gathered while
other model slots are free too takes only its share of what is queued, and leaves the rest to them:
otherwise a burst (all of a closed loop's clients, answered together and back together) became one
batch on one core while the other idled, and stayed so, each batch's answers bringing the next burst.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from citadel import metrics

EmbedBatch = Callable[[list[str]], Awaitable[np.ndarray]]


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future[np.ndarray] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MicroBatcher:
    def __init__(self, name: str, embed: EmbedBatch, *, max_batch: int, max_wait: float, parallel: int = 1) -> None:
        self.name = name
        self._embed = embed
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._parallel = parallel
        self._slots = asyncio.Semaphore(parallel)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self._carry: deque[_Job] = deque()  # jobs left by the last batch, in order; first in the next

    async def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors for `texts`, in order; long lists are split so no batch exceeds `max_batch`."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name=f"batcher:{self.name}")
        jobs = [_Job(texts[i : i + self._max_batch]) for i in range(0, len(texts), self._max_batch)]
        for job in jobs:
            self._queue.put_nowait(job)
        try:
            parts = [await job.future for job in jobs]
        except BaseException:
            for job in jobs:
                job.future.cancel()
            raise
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    async def aclose(self) -> None:
        for task in [self._worker, *self._flushing]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        while self._carry:
            self._carry.popleft().future.cancel()
        while not self._queue.empty():
            self._queue.get_nowait().future.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # A batch is gathered once a model call may start, so it takes all that queued meanwhile.
            await self._slots.acquire()
            try:
                batch = await self._gather(loop)
            except BaseException:
                self._slots.release()
                raise
            flush = asyncio.create_task(self._flush([job for job in batch if not job.future.cancelled()]))
            self._flushing.add(flush)
            flush.add_done_callback(self._flushed)

    def _flushed(self, flush: asyncio.Task[None]) -> None:
        self._flushing.discard(flush)
        self._slots.release()

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> list[_Job]:
        """The next batch: the jobs carried over or the next queued, and what else is queued (up to
        max_batch texts), then cut to its share when other model slots are free as well."""
        # Under load, the next batch queued up while the last ones ran: it goes at once, so the
        # model never idles while responses are written. Only a request that found the queue
        # empty waits (at most max_wait) for company.
        idle = not self._carry and self._queue.empty()
        batch = [self._carry.popleft() if self._carry else await self._queue.get()]
        size = len(batch[0].texts)
        deadline = loop.time() + self._max_wait
        while size < self._max_batch:
            if self._carry:
                job = self._carry.popleft()
            elif self._queue.empty():
                remaining = deadline - loop.time()
                if not idle or remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            if size + len(job.texts) > self._max_batch:
                self._carry.appendleft(job)
                break
            batch.append(job)
            size += len(job.texts)
        return self._share(batch, size)

    def _share(self, batch: list[_Job], size: int) -> list[_Job]:
        """This slot's part of `batch` when other slots are free too (an even split of its texts,
        whole jobs, at least one); the rest is carried, in order, to the next slot, which takes it at once."""
        free = self._parallel - len(self._flushing)  # this slot included
        if free <= 1 or len(batch) == 1:
            return batch
        share = -(-size // free)
        taken = len(batch[0].texts)
        for cut in range(1, len(batch)):
            if taken + len(batch[cut].texts) > share:
                self._carry.extendleft(reversed(batch[cut:]))
                return batch[:cut]
            taken += len(batch[cut].texts)
        return batch

    async def _flush(self, batch: list[_Job]) -> None:
        if not batch:
            return
        texts = [text for job in batch for text in job.texts]
        metrics.EMBED_BATCH_SIZE.labels(self.name).observe(len(texts))
        try:
            vectors = await self._embed(texts)
        except Exception as error:  # handed to every waiting caller, who decides what it means
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        start = 0
        for job in batch:
            end = start + len(job.texts)
            if not job.future.done():
                job.future.set_result(vectors[start:end])
            start = end
