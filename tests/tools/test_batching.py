"""Micro-batching: concurrent callers share model calls; results, errors and cancellation reach
the right caller."""

from __future__ import annotations

import asyncio

import anyio
import numpy as np
import pytest

from citadel.tools.batching import MicroBatcher


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.release = asyncio.Event()
        self.started = asyncio.Semaphore(0)  # one release per model call begun

    async def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.started.release()
        await self.release.wait()
        if self.fail_on in texts:
            raise RuntimeError(f"cannot embed {self.fail_on}")
        return np.array([[float(len(t)), float(i)] for i, t in enumerate(texts)], dtype=np.float32)


async def test_concurrent_callers_are_batched_in_order() -> None:
    model = Recorder()
    model.release.set()
    batcher = MicroBatcher("t", model, max_batch=64, max_wait=0.5)
    with anyio.fail_after(5):
        results = await asyncio.gather(*(batcher.embed(["x" * n]) for n in range(1, 21)))
    assert len(model.calls) == 1, "twenty callers arriving together share one model call"
    assert [int(r[0][0]) for r in results] == list(range(1, 21)), "each caller gets its own text's vector"
    await batcher.aclose()


async def test_large_request_is_split_at_max_batch() -> None:
    model = Recorder()
    model.release.set()
    batcher = MicroBatcher("t", model, max_batch=8, max_wait=0)
    with anyio.fail_after(5):
        vectors = await batcher.embed([f"t{i}" for i in range(20)])
    assert vectors.shape == (20, 2)
    assert max(len(c) for c in model.calls) <= 8
    await batcher.aclose()


async def test_a_failed_batch_fails_its_callers_and_the_batcher_goes_on() -> None:
    model = Recorder(fail_on="bad")
    model.release.set()
    batcher = MicroBatcher("t", model, max_batch=8, max_wait=0)
    with anyio.fail_after(5):
        with pytest.raises(RuntimeError, match="cannot embed bad"):
            await batcher.embed(["bad"])
        ok = await batcher.embed(["fine"])
    assert ok.shape == (1, 2)
    await batcher.aclose()


async def test_cancelled_caller_does_not_break_others() -> None:
    model = Recorder()
    batcher = MicroBatcher("t", model, max_batch=8, max_wait=0.2)
    doomed = asyncio.create_task(batcher.embed(["doomed"]))
    kept = asyncio.create_task(batcher.embed(["kept"]))
    await asyncio.sleep(0)
    doomed.cancel()
    model.release.set()
    with anyio.fail_after(5):
        vectors = await kept
    assert vectors.shape == (1, 2)
    assert doomed.cancelled()
    await batcher.aclose()


async def test_parallel_batches_run_side_by_side_and_no_more() -> None:
    model = Recorder()
    batcher = MicroBatcher("t", model, max_batch=4, max_wait=0, parallel=2)
    with anyio.fail_after(5):
        first = asyncio.create_task(batcher.embed(["a"]))
        await model.started.acquire()
        second = asyncio.create_task(batcher.embed(["bb"]))
        await model.started.acquire()  # a second model call began while the first is held
        third = asyncio.create_task(batcher.embed(["ccc"]))
        for _ in range(20):  # let the batcher run as far as it can
            await asyncio.sleep(0)
        assert model.calls == [["a"], ["bb"]], "a third call waits for a free slot"
        model.release.set()
        results = await asyncio.gather(first, second, third)
    assert [int(r[0][0]) for r in results] == [1, 2, 3]
    assert model.calls[2] == ["ccc"]
    await batcher.aclose()


async def test_a_burst_is_shared_between_free_slots() -> None:
    """Callers arriving together while two model slots are free make two calls of half each, in
    order, not one call on one slot while the other idles."""
    model = Recorder()
    batcher = MicroBatcher("t", model, max_batch=64, max_wait=0.5, parallel=2)
    with anyio.fail_after(5):
        callers = [asyncio.create_task(batcher.embed(["x" * n])) for n in range(1, 21)]
        await model.started.acquire()
        await model.started.acquire()
        model.release.set()
        results = await asyncio.gather(*callers)
    assert model.calls == [["x" * n for n in range(1, 11)], ["x" * n for n in range(11, 21)]]
    assert [int(r[0][0]) for r in results] == list(range(1, 21)), "each caller gets its own text's vector"
    await batcher.aclose()


async def test_a_busy_slot_leaves_the_free_one_the_whole_queue() -> None:
    model = Recorder()
    batcher = MicroBatcher("t", model, max_batch=64, max_wait=0, parallel=2)
    with anyio.fail_after(5):
        first = asyncio.create_task(batcher.embed(["a"]))
        await model.started.acquire()  # one slot busy
        rest = [asyncio.create_task(batcher.embed(["b" * n])) for n in range(1, 9)]
        await model.started.acquire()
        model.release.set()
        await asyncio.gather(first, *rest)
    assert model.calls == [["a"], ["b" * n for n in range(1, 9)]], "the one free slot takes all that is queued"
    await batcher.aclose()
