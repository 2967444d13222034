"""Runs on the in-process executor (embedded mode), against the real stores: no request waits on a
run nobody finishes, the event logs of ended runs are let go, and a run in flight during a short
PostgreSQL outage ends `success` after it (the outage: a TCP proxy in front of PostgreSQL, cut).

The runs use the test graph `slow_steps` (tests/core/slow_graph.py), composed here as the binding
composes the core (`open_core`), with that graph as the only one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from citadel.core.in_process_executor import InProcessExecutor
from citadel.core.registry import build_registry
from citadel.core.run_events import LocalRunEvents
from citadel.core.runs import RunManager, RunRequest
from citadel.runtime.services import open_services
from citadel.settings import Settings
from tests.core.slow_graph import NODES, SLOW
from tests.faults.tcp_proxy import TcpProxy

DEADLINE = 120.0


@contextlib.asynccontextmanager
async def run_manager(settings: Settings, *, keep_seconds: float = 300.0) -> AsyncIterator[RunManager]:
    async with open_services(settings, llm=False, state=True) as services:
        assert services.app_store is not None
        assert services.persistence is not None
        registry = build_registry(
            services.agent_deps(), services.persistence.checkpointer, services.persistence.store, specs=(SLOW,)
        )
        runs = RunManager(
            settings, services.app_store, registry, LocalRunEvents(keep_seconds=keep_seconds), InProcessExecutor
        )
        await runs.start()
        try:
            yield runs
        finally:
            await runs.aclose()


async def until(condition: Callable[[], Awaitable[bool] | bool]) -> None:
    """Poll `condition` until it holds (the callers' `asyncio.timeout` is the deadline)."""
    while True:
        outcome = condition()
        if await outcome if isinstance(outcome, Awaitable) else outcome:
            return
        await asyncio.sleep(0.05)


def slow(seconds: float, **extra: Any) -> RunRequest:
    return RunRequest(graph="slow_steps", owner="alice", input={"seconds": seconds}, **extra)


async def stateful(runs: RunManager, seconds: float) -> Any:
    thread = await runs.store.create_thread("alice", graph="slow_steps")
    return (await runs.create(slow(seconds, thread_id=thread.thread_id)))[0]


async def test_a_run_recovery_took_up_right_after_it_was_accepted_is_followed_to_its_end(
    make_settings: Any,
) -> None:
    async with run_manager(make_settings(), keep_seconds=0.05) as runs:
        assert runs.executor is not None
        # Recovery takes the run between its acceptance and its launch: one execution, both followed.
        run = await stateful(runs, 0.2)
        await runs.executor.submit(run.run_id)
        await runs.launch(run)
        async with asyncio.timeout(DEADLINE):
            streamed = [event async for _, event, _ in runs.stream(run)]
            end = await runs.wait(run)
        assert end.status == "success"
        assert streamed.count("metadata") == 1
        # Recovery took it and finished it before the request launched it (its log already let go).
        late = await stateful(runs, 0)
        await runs.executor.submit(late.run_id)
        async with asyncio.timeout(DEADLINE):

            async def recovered() -> bool:
                return (await runs.store.get_run(late.run_id)).status == "success"

            await until(recovered)
            await until(lambda: not runs.event_log.has(late.run_id))
            await runs.launch(late)
            late_end = await runs.wait(late)
            late_events = [event async for _, event, _ in runs.stream(late)]
        assert late_end.status == "success"
        assert late_events == []  # nothing to replay, and no wait on a channel nobody closes


async def test_a_run_is_accepted_claimed_by_the_process_that_runs_it(make_settings: Any) -> None:
    async with run_manager(make_settings()) as runs:
        run = await stateful(runs, 0)
        stored = await runs.store.get_run(run.run_id)
        # Written claimed in the accepting transaction: no second transaction before it starts.
        assert (stored.status, stored.lease_owner, stored.attempt) == ("running", runs.worker_id, 1)
        await runs.launch(run)
        async with asyncio.timeout(DEADLINE):
            end = await runs.wait(run)
        assert end.status == "success"
        assert (await runs.store.get_run(run.run_id)).attempt == 1


async def test_a_run_cancelled_between_its_acceptance_and_launch_never_starts(make_settings: Any) -> None:
    async with run_manager(make_settings()) as runs:
        run = await stateful(runs, 0)
        await runs.cancel(run)
        await runs.launch(run)
        async with asyncio.timeout(DEADLINE):
            end = await runs.wait(run)
            await until(lambda: not runs.executor._tasks)  # type: ignore[union-attr]
        assert (end.status, end.error) == ("interrupted", "cancelled")
        graph = runs.registry.get("slow_steps").graph
        state = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        assert not state.values  # no step ran
        assert (await runs.store.get_run(run.run_id)).status == "interrupted"


async def test_many_concurrent_runs_are_each_answered_and_their_logs_let_go(make_settings: Any) -> None:
    # A lease of 1 s: the recovery loop passes every half second, among the requests.
    settings = make_settings(run_lease_seconds=1)
    async with run_manager(settings, keep_seconds=0.5) as runs:

        async def create_and_wait(index: int) -> str:
            run, _ = await runs.create(slow(0.05 * (index % 4), keep_thread=True))
            await runs.launch(run)
            if index % 2:
                return (await runs.wait(run)).status
            return [event async for _, event, _ in runs.stream(run)][-1]

        async with asyncio.timeout(DEADLINE):
            outcomes = await asyncio.gather(*(create_and_wait(i) for i in range(32)))
            await until(lambda: len(runs.event_log) == 0)  # type: ignore[arg-type]
    assert outcomes.count("success") == 16
    assert outcomes.count("values") == 16


async def test_a_run_in_flight_during_a_database_outage_ends_success_after_it(
    make_settings: Any, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    target = urlsplit(database_url)
    with TcpProxy.running(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        through = urlunsplit(target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}"))
        settings = make_settings(database_url=through, database_timeout=2)
        caplog.set_level(logging.WARNING, logger="citadel")
        async with run_manager(settings) as runs:
            run = await stateful(runs, 1.0)
            await runs.launch(run)
            graph = runs.registry.get("slow_steps").graph
            config = {"configurable": {"thread_id": run.thread_id}}
            async with asyncio.timeout(DEADLINE):

                async def node_a_done() -> bool:
                    return bool((await graph.aget_state(config)).values.get("done"))

                await until(node_a_done)
                proxy.refuse()  # mid-run: node a checkpointed, node b in flight
                await until(
                    lambda: caplog.text.count("resuming it from its last checkpoint") >= 2
                )  # a retry failed too
                proxy.restore()
                end = await runs.wait(run)
                values = (await graph.aget_state(config)).values
                finished = await runs.store.get_run(run.run_id)
                thread = await runs.store.get_thread(run.thread_id or "", "alice")
    assert end.status == "success"
    assert finished.status == "success"
    assert values["done"] == list(NODES)
    assert thread.status == "idle"


async def test_a_stateless_run_checkpoints_only_at_its_end_in_memory_unless_it_keeps_its_thread(
    app_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with run_manager(app_settings) as runs:
        entry = runs.registry.get("slow_steps")
        durable, scratch = entry.graph.checkpointer, entry.scratch.checkpointer
        assert isinstance(durable, BaseCheckpointSaver)
        assert isinstance(scratch, InMemorySaver)
        written: set[str] = set()  # the threads the durable checkpointer was given a checkpoint of
        durable_put = durable.aput

        async def put(config: Any, *args: Any, **kwargs: Any) -> Any:
            written.add(config["configurable"]["thread_id"])
            return await durable_put(config, *args, **kwargs)

        monkeypatch.setattr(durable, "aput", put)

        async def run_it(keep_thread: bool, **extra: Any) -> tuple[Any, bool, bool]:
            """The run, and whether its thread had a checkpoint, durable and in memory, while its
            second node ran; its final values (read from wherever it checkpointed) are checked here."""
            run = (await runs.create(slow(0.5, keep_thread=keep_thread, **extra)))[0]
            config: Any = {"configurable": {"thread_id": run.thread_id}}
            await runs.launch(run)
            async with asyncio.timeout(DEADLINE):
                async for _, event, data in runs.stream(run):
                    if event == "values" and data.get("done") == ["a"]:
                        break
                during = await durable.aget_tuple(config) is not None, await scratch.aget_tuple(config) is not None
                end = await runs.wait(run)
            assert end.status == "success"
            assert end.values is not None
            assert end.values["done"] == list(NODES)  # the final state, as read
            return run, *during

        # Deleted when it ends, `exit`: checkpointed once, in memory, and dropped with its thread.
        run, durable_during, scratch_during = await run_it(keep_thread=False)
        assert not durable_during
        assert not scratch_during
        assert run.thread_id not in written
        assert not list(scratch.list(None))
        # Its thread stays: LangGraph's `async`, durably.
        run, durable_during, _ = await run_it(keep_thread=True)
        assert durable_during
        assert run.thread_id in written
        # Durability as the request asks: each step's checkpoint durable (a run taken up after its
        # process died resumes from there), deleted with the thread.
        run, durable_during, scratch_during = await run_it(keep_thread=False, durability="async")
        assert durable_during
        assert not scratch_during
        assert run.thread_id in written
        assert await durable.aget_tuple({"configurable": {"thread_id": run.thread_id}}) is None
