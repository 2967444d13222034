"""Executing a run: one attempt, by whichever executor took it (a task of the server in embedded
mode, a Temporal activity on a `citadel worker`).

    status = await execute_run(manager, run_id, Claim(owner=..., attempt=...))

An attempt claims the run in the app database (`Claim`: by lease, or fenced by Temporal's attempt
number), keeps it (renewing the lease, and heartbeating Temporal) while it streams the graph from
the thread's last checkpoint into the run's event log, then records how it ended and writes the
log's `end` entry — after the run's row and its thread are updated, so a reader told "over" may start
the thread's next run at once.

How a run stops, and what the attempt does:
- the graph finishes or pauses at an interrupt: `success`; the graph raises: `error` (recorded, not
  retried: the same input would fail the same way);
- cancelled from any process (the row says `interrupted` when the attempt is stopped): it ends the
  log `interrupted`;
- its process stops (shutdown, worker draining): the lease is handed back unfinished and the
  cancellation propagates, so the next process resumes the run at once;
- a store it needs is unreachable (PostgreSQL or Redis down for a while): the error propagates
  (`is_outage`) and the executor tries again later; the next attempt resumes from the checkpoint;
- taken over by a later attempt elsewhere (this one was presumed dead): it stops writing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.callbacks import GraphCallbackHandler, GraphInterruptEvent
from langgraph.types import Command

from citadel.core.run_events import RunEnd, RunEventLog
from citadel.core.runs import RunManager, on_scratch, values_of
from citadel.core.wire import to_jsonable
from citadel.errors import CitadelError, NotFound
from citadel.memory.app_store import ACTIVE_RUN, Run, ThreadAfter
from citadel.memory.store_errors import is_outage

log = logging.getLogger(__name__)

FINISH_RETRY_MAX_SECONDS = 10.0


@dataclass(frozen=True)
class Claim:
    """How one attempt holds a run."""

    owner: str
    """The lease holder's token (at most 64 characters)."""
    attempt: int | None = None
    """Temporal's attempt number: the claim is fenced by it. None: claim a lease nobody renews."""
    beat_seconds: float = 10.0
    check_every: int = 1
    """Renew the lease (and see whether the run was cancelled elsewhere) every this many beats."""
    on_beat: Callable[[], None] | None = None
    """Called at every beat (a Temporal activity's heartbeat)."""


async def execute_run(manager: RunManager, run_id: str, claim: Claim, *, claimed: Run | None = None) -> str | None:
    """One attempt at a run; its final status, or None when there was nothing to do here (it is over,
    or held by another process). `claimed`: the run as this process accepted it, already claimed."""
    events = manager.event_log
    events.open(run_id)
    run = claimed or await manager.store.claim_run(
        run_id, claim.owner, manager.settings.run_lease_seconds, attempt=claim.attempt
    )
    if run is None:
        await _not_claimed(manager, run_id)
        return None
    log.info(
        "run %s: taken by %s (attempt %d; graph %s, thread %s)",
        run_id, claim.owner, run.attempt, run.graph, run.thread_id,
    )  # fmt: skip
    try:
        return await _attempt(manager, run, claim)
    finally:
        if on_scratch(run) and run.thread_id:  # an attempt that did not reach its end leaves none either
            await manager.delete_checkpoints(run.graph, run.thread_id, scratch=True)


async def _attempt(manager: RunManager, run: Run, claim: Claim) -> str | None:
    run_id, events = run.run_id, manager.event_log
    keeper = asyncio.create_task(_keep(manager, run_id, claim, asyncio.current_task()), name=f"keep:{run_id}")
    status: str = "success"
    error: str | None = None
    seen = EndSeen()
    try:
        await events.publish(run_id, "metadata", {"run_id": run_id, "attempt": run.attempt})
        await stream_graph(manager, run, events, seen)
    except asyncio.CancelledError:
        why = await _why_stopped(manager, run_id, claim)
        if why != "cancelled":
            if why == "ours":  # this process is stopping: the next one resumes the run at once
                await asyncio.shield(_release(manager, run_id, claim))
            log.info("run %s: attempt %d stopped here (%s)", run_id, run.attempt, why)
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        status, error = "interrupted", "cancelled"
    except Exception as failure:
        if is_outage(failure):
            log.warning("run %s: a store is unreachable (%s: %s)", run_id, type(failure).__name__, failure)
            raise
        if isinstance(failure, CitadelError):
            status, error = "error", failure.message
        else:  # a graph's own failure: recorded on the run, never lost
            log.exception("run %s failed", run_id)
            status, error = "error", f"{type(failure).__name__}: {failure}"
        await events.publish(run_id, "error", {"error": type(failure).__name__, "message": error})
    finally:
        keeper.cancel()
    finished = seen.final_values() if status == "success" else None
    return await asyncio.shield(_finish(manager, run, claim, status, error, finished))


async def _not_claimed(manager: RunManager, run_id: str) -> None:
    """Nothing to execute: a run already over gets its end in the log (a reader may be waiting on
    it, e.g. one that launched a run that recovery had meanwhile taken and finished); a run held by
    another process is followed by this one's readers through the database."""
    try:
        run = await manager.store.get_run(run_id)
    except NotFound:
        await manager.event_log.end(run_id, RunEnd("interrupted", "deleted"))
        return
    if run.status in ACTIVE_RUN:
        manager.event_log.discard(run_id)
    else:
        await manager.event_log.end(run_id, RunEnd(run.status, run.error))


async def _keep(manager: RunManager, run_id: str, claim: Claim, runner: asyncio.Task[Any] | None) -> None:
    lease = manager.settings.run_lease_seconds
    beats = 0
    unreachable = False
    while True:
        await asyncio.sleep(claim.beat_seconds)
        if claim.on_beat is not None:
            claim.on_beat()
        beats += 1
        if beats % claim.check_every:
            continue
        try:
            kept = await manager.store.renew_lease(run_id, claim.owner, lease)
        except Exception as error:
            if not is_outage(error):
                raise
            if not unreachable:  # the run itself notices if it needs the store meanwhile
                log.warning("run %s: cannot renew its lease (%s); trying again", run_id, type(error).__name__)
            unreachable = True
            continue
        unreachable = False
        if not kept and runner is not None:
            log.warning("run %s: cancelled or taken over elsewhere; stopping it here", run_id)
            runner.cancel()
            return


async def _why_stopped(manager: RunManager, run_id: str, claim: Claim) -> Literal["cancelled", "ours", "lost"]:
    """Why this attempt was cancelled: the run was cancelled (its row says so), this process is
    stopping (the run is still ours), or a later attempt took it over."""
    try:
        current = await asyncio.shield(manager.store.get_run(run_id))
    except NotFound:
        return "cancelled"  # deleted with its thread
    except Exception as error:
        if is_outage(error):
            return "ours"
        raise
    if current.status == "interrupted":
        return "cancelled"
    if current.status == "running" and current.lease_owner == claim.owner:
        return "ours"
    return "lost"


async def _release(manager: RunManager, run_id: str, claim: Claim) -> None:
    try:
        await manager.store.release_lease(run_id, claim.owner)
    except Exception as error:
        if not is_outage(error):
            raise
        log.warning("run %s: could not hand its lease back (%s); it lapses instead", run_id, type(error).__name__)


async def _finish(
    manager: RunManager, run: Run, claim: Claim, status: str, error: str | None, finished: dict[str, Any] | None
) -> str:
    """Record the end, retrying while the store is unreachable (the graph's work is checkpointed)."""
    delay = 0.2
    while True:
        try:
            return await _record_end(manager, run, claim, status, error, finished)
        except Exception as failure:
            if not is_outage(failure):
                raise
            log.warning("run %s: cannot record its end yet (%s); retrying", run.run_id, type(failure).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, FINISH_RETRY_MAX_SECONDS)


async def _record_end(
    manager: RunManager, run: Run, claim: Claim, status: str, error: str | None, finished: dict[str, Any] | None
) -> str:
    """`finished`: the final values of a graph that ran to its end, as its own stream showed them
    (`EndSeen`); None: read from the thread's checkpoint what the run left (values, and whether it
    paused), unless it failed (a failed run answers its error, not values)."""
    assert run.thread_id is not None
    stateless = bool(run.payload.get("stateless"))
    scratch = on_scratch(run)
    values: dict[str, Any] | None = finished
    paused = False
    if finished is None and status != "error":
        graph = manager.registry.get(run.graph).for_run(scratch)
        snapshot = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        values, paused = values_of(snapshot), bool(snapshot.interrupts)
    if scratch:  # read, if they were needed: nothing else will read them
        await manager.delete_checkpoints(run.graph, run.thread_id, scratch=True)
    thread_after: ThreadAfter = (
        "delete" if stateless else "error" if status == "error" else "interrupted" if paused else "idle"
    )
    # One transaction: the run's end and its thread's status (or, for a stateless run, the thread gone).
    ended = await manager.store.finish_run(
        run.run_id,
        claim.owner,
        status,  # type: ignore[arg-type]
        error,
        thread_id=run.thread_id,
        thread_after=thread_after,
    )
    if ended:
        if stateless and not scratch:  # durable as its request asked, until its thread is gone
            await manager.delete_checkpoints(run.graph, run.thread_id)
    else:  # no longer ours: cancelled as it finished (the canceller freed the thread), or taken over
        try:
            current = await manager.store.get_run(run.run_id)
        except NotFound:
            current = None
        if current is not None and current.status in ACTIVE_RUN:
            return current.status  # a later attempt owns the run and will end it
        status, error = (current.status, current.error) if current is not None else ("interrupted", "deleted")
    # The final values ride with the end, so that `runs/wait` and `join` need not read them again
    # (without them, as after a failure cancelled as it ended, the reader reads the thread).
    await manager.event_log.end(run.run_id, RunEnd(status, error, values if status != "error" else None))
    log.info("run %s: %s", run.run_id, status)
    return status


def graph_config(run: Run) -> RunnableConfig:
    payload = run.payload
    user_config = dict(payload.get("config") or {})
    configurable = dict(user_config.pop("configurable", {}) or {})
    configurable.update({"thread_id": run.thread_id, "user_id": run.owner})
    if payload.get("checkpoint_id"):
        configurable["checkpoint_id"] = payload["checkpoint_id"]
    return {
        **{k: v for k, v in user_config.items() if k in ("tags", "recursion_limit", "max_concurrency")},
        "configurable": configurable,
        # The run id in the checkpoint metadata is how LangGraph tells a resumed run from a new one.
        "metadata": {**(run.metadata or {}), "run_id": run.run_id, "graph_id": run.graph},
    }


async def stream_graph(manager: RunManager, run: Run, events: RunEventLog, seen: EndSeen) -> None:
    """Run the graph from the thread's last checkpoint, publishing what the run's stream modes ask;
    `seen` is told how it ended."""
    payload = run.payload
    graph = manager.registry.get(run.graph).for_run(on_scratch(run))
    config = graph_config(run)
    command = payload.get("command")
    graph_input: Any = Command(**command) if command else payload.get("input")
    modes: list[str] = payload.get("stream_mode") or ["values"]
    options = _stream_options(payload)

    async def publish(event: str, data: Any) -> None:
        await events.publish(run.run_id, event, data)

    if "events" in modes:
        async for part in graph.astream_events(graph_input, config, version="v2", **options):  # type: ignore[call-overload]
            await publish("events", to_jsonable(part))
        if "values" in modes:
            snapshot = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
            await publish("values", to_jsonable(snapshot.values))
        return
    native = {"messages" if m == "messages-tuple" else m for m in modes}
    if "messages" in modes:
        native.add("updates")  # to tell when a streamed message is complete
    native.add("values")  # the final values, which the run's end then need not read back
    config["callbacks"] = [seen]
    partial: dict[str, AIMessageChunk] = {}
    subgraphs = bool(payload.get("stream_subgraphs"))
    stream: AsyncIterator[Any] = graph.astream(
        graph_input,
        config,
        stream_mode=sorted(native),  # type: ignore[arg-type]
        subgraphs=subgraphs,
        **options,
    )
    async for item in stream:
        namespace, mode, chunk = item if subgraphs else ((), *item)
        if mode == "values" and not namespace:
            seen.values = chunk
        for event, data in _events_of(namespace, mode, chunk, modes, partial):
            await publish(event, data)


def _events_of(
    namespace: tuple[str, ...], mode: str, chunk: Any, modes: list[str], partial: dict[str, AIMessageChunk]
) -> list[tuple[str, Any]]:
    """What one part of LangGraph's stream publishes, under the stream modes the run asked for."""
    suffix = "|" + "|".join(namespace) if namespace else ""
    out: list[tuple[str, Any]] = []
    if mode == "messages":
        message, metadata = chunk
        if "messages-tuple" in modes:
            out.append(("messages" + suffix, [to_jsonable(message), to_jsonable(metadata)]))
        if "messages" in modes:
            out += [(event + suffix, data) for event, data in _partial(partial, message, metadata)]
        return out
    if mode == "updates" and "messages" in modes:
        out += [(event + suffix, data) for event, data in _complete(partial, chunk)]
    if mode in modes:
        out.append((mode + suffix, to_jsonable(chunk)))
    return out


class EndSeen(GraphCallbackHandler):
    """What a run's own stream shows of its end, so that recording the end need not read the
    thread's checkpoint back: the top graph's last `values` (LangGraph streams the same channels a
    snapshot reads, `stream_channels`, and streams them again whenever a step changes one), and
    whether it paused (LangGraph calls `on_interrupt` for the top graph only, for interrupts raised
    by a node and for `interrupt_before` / `interrupt_after` alike)."""

    run_inline = True  # it sets a flag: no thread of the executor for that

    def __init__(self) -> None:
        super().__init__()
        self.values: Any = _UNSEEN
        self.paused = False

    def on_interrupt(self, event: GraphInterruptEvent) -> None:
        self.paused = True

    def final_values(self) -> dict[str, Any] | None:
        """The values a snapshot of the thread reads now, as `values_of` gives them; None when the
        stream cannot tell (the graph paused, whose snapshot says more; or it streamed no values)."""
        if self.paused or self.values is _UNSEEN:
            return None
        return to_jsonable(self.values) or {}


_UNSEEN = object()


def _stream_options(payload: dict[str, Any]) -> dict[str, Any]:
    """What the run asks of LangGraph beyond its input and config."""
    options: dict[str, Any] = {
        "interrupt_before": payload.get("interrupt_before"),
        "interrupt_after": payload.get("interrupt_after"),
    }
    if payload.get("context") is not None:
        options["context"] = payload["context"]
    if payload.get("durability"):
        options["durability"] = payload["durability"]
    return options


def _partial(partial: dict[str, AIMessageChunk], message: BaseMessage, metadata: Any) -> list[tuple[str, Any]]:
    """The SDK's legacy `messages` mode: metadata once, then the message so far after each chunk."""
    key = message.id or "message"
    out: list[tuple[str, Any]] = []
    if key not in partial:
        out.append(("messages/metadata", {key: {"metadata": to_jsonable(metadata)}}))
        partial[key] = message if isinstance(message, AIMessageChunk) else AIMessageChunk(content=message.text)
    else:
        partial[key] = partial[key] + message  # type: ignore[operator, assignment]
    out.append(("messages/partial", [to_jsonable(partial[key])]))
    return out


def _complete(partial: dict[str, AIMessageChunk], update: Any) -> list[tuple[str, Any]]:
    if not isinstance(update, dict):
        return []
    out: list[tuple[str, Any]] = []
    for node_update in update.values():
        if not isinstance(node_update, dict):
            continue
        for message in node_update.get("messages") or []:
            if isinstance(message, BaseMessage) and message.id in partial:
                partial.pop(message.id)
                out.append(("messages/complete", [to_jsonable(message)]))
    return out
