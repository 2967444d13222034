"""Runs: a graph executed on a thread, from acceptance to its final state.

Every face (the thread/run API, MCP, AG-UI, voice) starts runs here, so thread ownership, the
one-run-per-thread rule and durability are the same everywhere:
- A run is *accepted* once its row (with its input) is committed; from then on it is not lost.
- The process executing it holds a lease on the row and renews it; if the process dies, the lease
  lapses and any process (this one restarted, or another replica) resumes the run from its last
  checkpoint. LangGraph recognises the re-entry by the run id in the checkpoint metadata, so a turn
  already applied is not applied again.
- A second run on a busy thread is refused (409), atomically across replicas.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, StateSnapshot

from citadel.core.in_process_executor import InProcessExecutor
from citadel.core.registry import GraphRegistry
from citadel.core.run_events import RunEvents
from citadel.core.wire import to_jsonable
from citadel.errors import CitadelError, Conflict, InvalidRequest
from citadel.memory.app_store import AppStore, Run, Thread
from citadel.settings import Settings

log = logging.getLogger(__name__)

NATIVE_MODES = {"values", "updates", "messages", "custom", "debug", "tasks", "checkpoints"}
SUPPORTED_MODES = NATIVE_MODES | {"messages-tuple", "events"}


@dataclass
class RunRequest:
    graph: str
    owner: str
    thread_id: str | None = None
    """None: a stateless run, on a thread made for it (deleted afterwards unless `keep_thread`)."""
    input: Any = None
    command: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] | None = None
    stream_mode: list[str] = field(default_factory=lambda: ["values"])
    stream_subgraphs: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    checkpoint_id: str | None = None
    interrupt_before: list[str] | Literal["*"] | None = None
    interrupt_after: list[str] | Literal["*"] | None = None
    multitask_strategy: str = "reject"
    if_not_exists: Literal["reject", "create"] = "reject"
    keep_thread: bool = False


class RunExecutor(Protocol):
    """Where accepted runs execute. In-process for now; a distributed engine can take its place."""

    def submit(self, run_id: str) -> None: ...

    def cancel_local(self, run_id: str) -> asyncio.Task[None] | None:
        """Cancel the run if it executes in this process; its task, to wait on, or None."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class RunManager:
    def __init__(self, settings: Settings, store: AppStore, registry: GraphRegistry) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.worker_id = f"worker-{uuid.uuid4().hex[:12]}"
        self.executor: RunExecutor = InProcessExecutor(self)
        self._events: dict[str, RunEvents] = {}
        self._stateless_results: dict[str, dict[str, Any]] = {}
        self.stopping = False

    async def start(self) -> None:
        await self.executor.start()

    async def aclose(self) -> None:
        self.stopping = True
        await self.executor.aclose()

    # --- accepting ----------------------------------------------------------------------------
    async def create(self, request: RunRequest) -> tuple[Run, Thread]:
        """Validate and accept a run (committed before this returns); it starts on `start(run)`."""
        spec = self.registry.get(request.graph).spec
        unknown = [m for m in request.stream_mode if m not in SUPPORTED_MODES]
        if unknown:
            raise InvalidRequest(
                f"unsupported stream_mode {unknown}; use {sorted(SUPPORTED_MODES)}", param="stream_mode"
            )
        if request.multitask_strategy not in ("reject", None):
            raise InvalidRequest(
                f"multitask_strategy {request.multitask_strategy!r} is not supported; use 'reject'",
                param="multitask_strategy",
            )
        if request.input is not None and request.command is not None:
            raise InvalidRequest("give either input or command, not both", param="input")
        payload_input = spec.validate_input(request.input) if request.input is not None else None
        if request.command is not None and not set(request.command) <= {"resume", "update", "goto"}:
            raise InvalidRequest("command takes resume, update and goto", param="command")

        thread = await self._thread_for(request)
        if not await self.store.try_mark_busy(thread.thread_id):
            raise Conflict(
                f"thread {thread.thread_id} already has a run in progress; wait for it or cancel it",
                param="thread_id",
            )
        run = Run(
            run_id=str(uuid.uuid4()),
            thread_id=thread.thread_id,
            graph=request.graph,
            owner=request.owner,
            status="pending",
            payload={
                "input": payload_input,
                "command": request.command,
                "config": request.config,
                "context": request.context,
                "stream_mode": request.stream_mode,
                "stream_subgraphs": request.stream_subgraphs,
                "checkpoint_id": request.checkpoint_id,
                "interrupt_before": request.interrupt_before,
                "interrupt_after": request.interrupt_after,
                "stateless": request.thread_id is None and not request.keep_thread,
            },
            metadata=request.metadata,
        )
        try:
            await self.store.create_run(run)
        except BaseException:
            await self.store.update_thread(thread.thread_id, None, status="idle")
            raise
        await self.store.update_thread(thread.thread_id, None, graph=request.graph, title=_title(payload_input))
        self._events[run.run_id] = RunEvents()
        return run, thread

    async def _thread_for(self, request: RunRequest) -> Thread:
        if request.thread_id is None:
            return await self.store.create_thread(request.owner, graph=request.graph, metadata={"stateless": True})
        try:
            thread = await self.store.get_thread(request.thread_id, request.owner)
        except CitadelError:
            if request.if_not_exists != "create":
                raise
            return await self.store.create_thread(request.owner, thread_id=request.thread_id, graph=request.graph)
        if thread.graph and thread.graph != request.graph:
            raise Conflict(
                f"thread {thread.thread_id} belongs to graph {thread.graph!r}, not {request.graph!r}",
                param="assistant_id",
            )
        return thread

    def launch(self, run: Run) -> RunEvents:
        events = self._events.setdefault(run.run_id, RunEvents())
        self.executor.submit(run.run_id)
        return events

    def events(self, run_id: str) -> RunEvents | None:
        return self._events.get(run_id)

    # --- executing ----------------------------------------------------------------------------
    async def execute(self, run_id: str) -> None:
        """Run to the end (or the next interrupt) under a lease; publish every event."""
        lease = self.settings.run_lease_seconds
        if not await self.store.claim_run(run_id, self.worker_id, lease):
            return  # someone else has it, or it is over
        run = await self.store.get_run(run_id)
        events = self._events.setdefault(run_id, RunEvents())
        heartbeat = asyncio.create_task(self._heartbeat(run_id, asyncio.current_task()), name=f"lease:{run_id}")
        status: str = "success"
        error: str | None = None
        try:
            events.publish("metadata", {"run_id": run_id, "attempt": run.attempt})
            await self._stream(run, events)
        except asyncio.CancelledError:
            if self.stopping:
                # A clean stop: hand the run back so the next process resumes it at once.
                await asyncio.shield(self.store.release_lease(run_id, self.worker_id))
                events.close()
                raise
            status = "interrupted"
        except CitadelError as failure:
            status, error = "error", failure.message
            events.publish("error", {"error": type(failure).__name__, "message": failure.message})
        except Exception as failure:  # a graph's own failure: recorded on the run, never lost
            log.exception("run %s failed", run_id)
            status, error = "error", f"{type(failure).__name__}: {failure}"
            events.publish("error", {"error": type(failure).__name__, "message": str(failure)})
        finally:
            heartbeat.cancel()
        await asyncio.shield(self._finish(run, status, error))
        events.close()

    async def _heartbeat(self, run_id: str, runner: asyncio.Task[Any] | None) -> None:
        lease = self.settings.run_lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            if not await self.store.renew_lease(run_id, self.worker_id, lease) and runner is not None:
                log.warning("run %s: lease lost or run cancelled elsewhere; stopping it here", run_id)
                runner.cancel()
                return

    async def _finish(self, run: Run, status: str, error: str | None) -> None:
        assert run.thread_id is not None
        graph = self.registry.get(run.graph).graph
        snapshot = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        thread_status = "error" if status == "error" else ("interrupted" if snapshot.interrupts else "idle")
        if run.payload.get("stateless"):
            self._stateless_results[run.run_id] = (
                {"__error__": {"error": "RunError", "message": error}} if status == "error" else _values(snapshot)
            )
        await self.store.finish_run(run.run_id, status, error)  # type: ignore[arg-type]
        if run.payload.get("stateless"):
            await self.delete_thread(run.thread_id, None)
        else:
            await self.store.release_thread(run.thread_id, thread_status)

    async def delete_thread(self, thread_id: str, owner: str | None) -> None:
        """The thread, its runs and its checkpoints."""
        thread = await self.store.get_thread(thread_id, owner)
        active = await self.store.active_run(thread_id)
        if active is not None:
            await self.cancel(active)
        await self.store.delete_thread(thread_id, owner)
        if thread.graph:
            checkpointer = self.registry.get(thread.graph).graph.checkpointer
            if checkpointer is not None and not isinstance(checkpointer, bool):
                await checkpointer.adelete_thread(thread_id)

    def graph_config(self, run: Run) -> RunnableConfig:
        payload = run.payload
        user_config = dict(payload.get("config") or {})
        configurable = dict(user_config.pop("configurable", {}) or {})
        configurable.update({"thread_id": run.thread_id, "user_id": run.owner})
        if payload.get("checkpoint_id"):
            configurable["checkpoint_id"] = payload["checkpoint_id"]
        return {
            **{k: v for k, v in user_config.items() if k in ("tags", "recursion_limit", "max_concurrency")},
            "configurable": configurable,
            "metadata": {**(run.metadata or {}), "run_id": run.run_id, "graph_id": run.graph},
        }

    async def _stream(self, run: Run, events: RunEvents) -> None:
        payload = run.payload
        graph = self.registry.get(run.graph).graph
        config = self.graph_config(run)
        command = payload.get("command")
        graph_input: Any = Command(**command) if command else payload.get("input")
        modes: list[str] = payload.get("stream_mode") or ["values"]
        options: dict[str, Any] = {
            "interrupt_before": payload.get("interrupt_before"),
            "interrupt_after": payload.get("interrupt_after"),
        }
        if payload.get("context") is not None:
            options["context"] = payload["context"]
        if "events" in modes:
            async for event in graph.astream_events(graph_input, config, version="v2", **options):  # type: ignore[call-overload]
                events.publish("events", to_jsonable(event))
            if "values" in modes:
                snapshot = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
                events.publish("values", to_jsonable(snapshot.values))
            return
        native = {"messages" if m == "messages-tuple" else m for m in modes}
        if "messages" in modes:
            native.add("updates")  # to tell when a streamed message is complete
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
            suffix = "|" + "|".join(namespace) if namespace else ""
            if mode == "messages":
                message, metadata = chunk
                if "messages-tuple" in modes:
                    events.publish("messages" + suffix, [to_jsonable(message), to_jsonable(metadata)])
                if "messages" in modes:
                    _publish_partial(events, partial, message, metadata, suffix)
                continue
            if mode == "updates" and "messages" in modes:
                _publish_complete(events, partial, chunk, suffix)
                if "updates" not in modes:
                    continue
            events.publish(mode + suffix, to_jsonable(chunk))

    # --- reading and stopping -----------------------------------------------------------------
    async def wait(self, run: Run) -> None:
        """Until the run is over (on whichever process executes it)."""
        events = self._events.get(run.run_id)
        if events is not None:
            await events.done.wait()
            return
        delay = 0.05
        while (await self.store.get_run(run.run_id)).status in ("pending", "running"):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def final_values(self, run: Run) -> dict[str, Any]:
        """What `runs/wait` and `join` answer: the thread's values (with `__interrupt__` when it
        paused, `__error__` when the run failed)."""
        if run.payload.get("stateless"):  # its thread and run rows are gone; the result was kept
            return self._stateless_results.pop(run.run_id, {})
        finished = await self.store.get_run(run.run_id)
        if finished.status == "error":
            return {"__error__": {"error": "RunError", "message": finished.error}}
        graph = self.registry.get(run.graph).graph
        return _values(await graph.aget_state({"configurable": {"thread_id": run.thread_id}}))

    async def cancel(self, run: Run, *, wait: bool = False) -> None:
        """Stop a run wherever it is. It is marked cancelled first, so that neither its own process
        (even if the run has not started yet) nor recovery elsewhere takes it up again; a process
        running it elsewhere stops at its next lease renewal."""
        if not await self.store.cancel_run(run.run_id, run.thread_id):
            return  # it had already ended
        task = self.executor.cancel_local(run.run_id)
        if task is not None:
            await asyncio.wait({task}, timeout=30)  # its own bookkeeping
        events = self._events.get(run.run_id)
        if events is not None and not events.done.is_set():  # cancelled before it started
            events.close()
        if wait:
            await self.wait(run)

    async def watch(self, run: Run) -> AsyncIterator[tuple[str, Any]]:
        """A run's events, from the start: live if it runs here, else its final values."""
        events = self._events.get(run.run_id)
        if events is not None:
            async for item in events.subscribe():
                yield item
            return
        await self.wait(run)
        yield "values", await self.final_values(run)


def _values(snapshot: StateSnapshot) -> dict[str, Any]:
    values: dict[str, Any] = to_jsonable(snapshot.values) or {}
    if snapshot.interrupts:
        values["__interrupt__"] = to_jsonable(list(snapshot.interrupts))
    return values


def _title(payload_input: Any) -> str | None:
    """A thread's title: the first words of its first user message."""
    if not isinstance(payload_input, dict):
        return None
    for message in payload_input.get("messages") or []:
        if isinstance(message, dict) and message.get("role", message.get("type")) in ("user", "human"):
            content = message.get("content")
            if isinstance(content, str) and content.strip():
                return content.strip()[:80]
    return None


def _publish_partial(
    events: RunEvents, partial: dict[str, AIMessageChunk], message: BaseMessage, metadata: Any, suffix: str
) -> None:
    """The SDK's legacy `messages` mode: metadata once, then the message so far after each chunk."""
    key = message.id or "message"
    if key not in partial:
        events.publish("messages/metadata" + suffix, {key: {"metadata": to_jsonable(metadata)}})
        partial[key] = message if isinstance(message, AIMessageChunk) else AIMessageChunk(content=message.text)
    else:
        partial[key] = partial[key] + message  # type: ignore[operator, assignment]
    events.publish("messages/partial" + suffix, [to_jsonable(partial[key])])


def _publish_complete(events: RunEvents, partial: dict[str, AIMessageChunk], update: Any, suffix: str) -> None:
    if not isinstance(update, dict):
        return
    for node_update in update.values():
        if not isinstance(node_update, dict):
            continue
        for message in node_update.get("messages") or []:
            if isinstance(message, BaseMessage) and message.id in partial:
                partial.pop(message.id)
                events.publish("messages/complete" + suffix, [to_jsonable(message)])
