"""Runs: a graph executed on a thread, from acceptance to its final state.

Every face (the thread/run API, MCP, AG-UI, voice) starts runs here, so thread ownership, the
one-run-per-thread rule and durability are the same everywhere:
- A run is *accepted* once its row (with its input) is committed; from then on it is not lost.
- It is then handed to the executor the binding chose (`RunExecutor`): tasks of this process in
  embedded mode (`in_process_executor.py`: a lease, and a recovery loop for runs whose process died),
  or `citadel worker` processes through Temporal (`temporal_executor.py`). Either way a run that is
  taken up again resumes from its last checkpoint: LangGraph recognises the re-entry by the run id in
  the checkpoint metadata, so a step already applied is not applied again (`run_execution.py`).
- Its events go to the run event log the binding chose (`run_events.py`): this process's memory, or
  Redis Streams that every replica reads. Readers follow them by id, from any point, until the end.
- A second run on a busy thread is refused (409), atomically across replicas.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langgraph.types import Durability, StateSnapshot

from citadel.core.registry import GraphRegistry
from citadel.core.run_events import NotHere, RunEnd, RunEvent, RunEventLog, StreamGap
from citadel.core.wire import to_jsonable
from citadel.errors import InvalidRequest, NotFound
from citadel.memory.app_store import ACTIVE_RUN, AppStore, Run, Thread
from citadel.settings import Settings

log = logging.getLogger(__name__)

NATIVE_MODES = {"values", "updates", "messages", "custom", "debug", "tasks", "checkpoints"}
SUPPORTED_MODES = NATIVE_MODES | {"messages-tuple", "events"}
IDLE_SECONDS = 5.0
"""A reader that hears nothing for this long checks that the run is still going."""


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
    durability: Durability | None = None
    """LangGraph's durability mode for the run's checkpoints. None: `exit` for a stateless run whose
    thread is deleted when it ends (nobody reads its steps' checkpoints; taken up again after its
    process died, it starts over from its input, which its row keeps), else LangGraph's default
    (`async`)."""


class RunExecutor(Protocol):
    """Where accepted runs execute; the binding chooses (in-process tasks, or Temporal workers)."""

    def claim_on_accept(self, run: Run) -> None:
        """Called before `run` is accepted: an executor that will start it in this process at once
        writes it already claimed (one transaction fewer before its first event); others leave it."""
        ...

    async def submit(self, run_id: str) -> None: ...

    async def cancel(self, run_id: str, previous: str) -> bool:
        """Stop a run already marked cancelled (`previous`: the status it had, `pending` or
        `running`). True when its execution writes the run's end itself."""
        ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class RunManager:
    def __init__(
        self,
        settings: Settings,
        store: AppStore,
        registry: GraphRegistry,
        event_log: RunEventLog,
        executor: Callable[[RunManager], RunExecutor] | None = None,
    ) -> None:
        """`executor` is None in a process that only executes runs handed to it (a Temporal worker)."""
        self.settings = settings
        self.store = store
        self.registry = registry
        self.event_log = event_log
        self.worker_id = f"worker-{uuid.uuid4().hex[:12]}"
        self.executor: RunExecutor | None = executor(self) if executor is not None else None

    async def start(self) -> None:
        if self.executor is not None:
            await self.executor.start()

    async def aclose(self) -> None:
        if self.executor is not None:
            await self.executor.aclose()

    # --- accepting ----------------------------------------------------------------------------
    async def create(self, request: RunRequest) -> tuple[Run, Thread]:
        """Validate and accept a run (committed before this returns); it starts on `launch(run)`."""
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

        stateless = request.thread_id is None
        run = Run(
            run_id=str(uuid.uuid4()),
            thread_id=request.thread_id or str(uuid.uuid4()),
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
                "stateless": stateless and not request.keep_thread,
                "durability": request.durability or ("exit" if stateless and not request.keep_thread else None),
            },
            metadata=request.metadata,
        )
        if self.executor is not None:
            self.executor.claim_on_accept(run)
        # One transaction: the thread (made for a stateless run), claimed busy, and the run's row.
        thread = await self.store.accept_run(
            run,
            thread="new" if stateless else ("if_missing" if request.if_not_exists == "create" else "existing"),
            title=_title(payload_input),
            thread_metadata={"stateless": True} if stateless else None,
        )
        return run, thread

    async def launch(self, run: Run) -> None:
        """Hand an accepted run to the executor; its events can be read (`stream`) from now on."""
        assert self.executor is not None, "this process executes runs; it does not accept them"
        self.event_log.open(run.run_id)
        await self.executor.submit(run.run_id)

    # --- reading ------------------------------------------------------------------------------
    async def stream(self, run: Run, after: str | None = None) -> AsyncIterator[RunEvent]:
        """The run's events after the event id `after` (from its first when None), live, until it
        ends: `(id, event, data)`. An event that is not from the log has the id "" (the final values
        of a run followed from a process that cannot see its events; a fresh snapshot after a gap)."""
        while True:
            try:
                async for item in self._read(run, after):
                    yield item
                return
            except StreamGap:
                log.warning("run %s: a reader missed events dropped from its log; sending a snapshot", run.run_id)
                yield "", "values", await self._snapshot_values(run)
                after = None
            except NotHere:  # executing in another process whose events this one cannot see
                yield "", "values", await self.final_values(run, await self._poll_end(run))
                return

    async def _read(self, run: Run, after: str | None) -> AsyncIterator[RunEvent]:
        over_since: RunEnd | None = None
        async for item in self.event_log.read(run.run_id, after, idle=IDLE_SECONDS):
            if item is not None:
                if item[1] == "end":
                    return
                yield item
                continue
            # Quiet for a while. A run over in the database whose end never reached the log (its
            # executor died between the two) must not keep its readers forever.
            ended = await self._ended_in_store(run)
            if ended is not None and over_since is not None:
                yield "", "values", await self.final_values(run, ended)
                return
            over_since = ended

    async def wait(self, run: Run) -> RunEnd:
        """Until the run is over (in whichever process it executes): how it ended."""
        over_since: RunEnd | None = None
        while True:
            try:
                end = await self.event_log.wait_end(run.run_id, IDLE_SECONDS)
            except NotHere:
                return await self._poll_end(run)
            if end is not None:
                return end
            ended = await self._ended_in_store(run)
            if ended is not None and over_since is not None:
                return ended
            over_since = ended

    async def _ended_in_store(self, run: Run) -> RunEnd | None:
        try:
            current = await self.store.get_run(run.run_id)
        except NotFound:  # deleted with its thread
            return RunEnd("interrupted", "deleted")
        return None if current.status in ACTIVE_RUN else RunEnd(current.status, current.error)

    async def _poll_end(self, run: Run) -> RunEnd:
        delay = 0.05
        while (ended := await self._ended_in_store(run)) is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return ended

    async def final_values(self, run: Run, end: RunEnd) -> dict[str, Any]:
        """What `runs/wait` and `join` answer: the thread's values (with `__interrupt__` when it
        paused, `__error__` when the run failed)."""
        if end.status == "error":
            return {"__error__": {"error": "RunError", "message": end.error}}
        if end.values is not None:  # read by the run's executor as it ended
            return dict(end.values)
        if run.payload.get("stateless"):  # its thread is gone
            return {}
        return await self._snapshot_values(run)

    async def _snapshot_values(self, run: Run) -> dict[str, Any]:
        graph = self.registry.get(run.graph).for_run(on_scratch(run))
        return values_of(await graph.aget_state({"configurable": {"thread_id": run.thread_id}}))

    # --- stopping -----------------------------------------------------------------------------
    async def cancel(self, run: Run, *, wait: bool = False) -> None:
        """Stop a run wherever it is. It is marked cancelled first, so that neither its executor
        (even if the run has not started yet) nor a recovery elsewhere takes it up again; its
        executor stops it (in this process at once; on a Temporal worker within a heartbeat)."""
        previous = await self.store.cancel_run(run.run_id, run.thread_id)
        if previous is not None:
            ends_itself = self.executor is not None and await self.executor.cancel(run.run_id, previous)
            if not ends_itself:  # it never started, or it runs where this process cannot stop it
                await self.event_log.end(run.run_id, RunEnd("interrupted", "cancelled"))
        if wait:
            await self.wait(run)

    async def delete_thread(self, thread_id: str, owner: str | None) -> None:
        """The thread, its runs and its checkpoints."""
        thread = await self.store.get_thread(thread_id, owner)
        active = await self.store.active_run(thread_id)
        if active is not None:
            await self.cancel(active)
        await self.store.delete_thread(thread_id, owner)
        if thread.graph:
            await self.delete_checkpoints(thread.graph, thread_id)

    async def delete_checkpoints(self, graph: str, thread_id: str, *, scratch: bool = False) -> None:
        """`scratch`: those a run kept in this process's memory (`on_scratch`)."""
        checkpointer = self.registry.get(graph).for_run(scratch).checkpointer
        if checkpointer is not None and not isinstance(checkpointer, bool):
            await checkpointer.adelete_thread(thread_id)


def on_scratch(run: Run) -> bool:
    """Whether the run keeps its checkpoints in memory (`RegisteredGraph.scratch`): a stateless run
    whose thread is deleted when it ends, checkpointing only then (`exit`, its default)."""
    return bool(run.payload.get("stateless")) and run.payload.get("durability") == "exit"


def values_of(snapshot: StateSnapshot) -> dict[str, Any]:
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
