"""The AG-UI endpoints: `POST /agui/{graph}` runs a graph for an AG-UI client and streams AG-UI events
over SSE; `GET /agui/{graph}` describes the agent; `GET /agui` lists them.

Before the stream starts, a request is checked like one on the thread/run API, and refused with the
same HTTP errors: a `RunAgentInput` that does not parse, or new input that does not fit the graph,
is 422 naming the field; an unknown graph, or a thread that is someone else's, is 404; a thread
with a run in progress, or one that belongs to another graph, is 409. Once streaming, a failure is
a RUN_ERROR event (never a dropped connection) and the thread stays usable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from ag_ui.core import RunAgentInput
from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Receive, Scope, Send

from citadel.core.dependencies import RegistryDep, RunsDep, ServicesDep
from citadel.core.identity import Identity, IdentityDep
from citadel.core.registry import GraphRegistry, RegisteredGraph
from citadel.errors import Conflict, NotFound
from citadel.memory.app_store import AppStore, Thread, check_thread_id
from citadel.ui_bridge.plan import forwarded, plan_run
from citadel.ui_bridge.run_graph import RunGraph
from citadel.ui_bridge.stream import LeanStream, sse_frames
from citadel.ui_bridge.ui_state import ui_keys

router = APIRouter(tags=["ag-ui"])
SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
GZIP_LEVEL = 6


class EventStream(EventSourceResponse):
    """An SSE response gzip-compressed when the client accepts gzip (browsers, Node's fetch and httpx
    do, and decompress as they read). Starlette's GZip responder ends each body message with a
    sync flush, so every burst of events (and ping) leaves at once, as its own deflate block; the
    events' repeated parts (types, message and tool-call ids) shrink to back-references."""

    def __init__(self, *args: Any, on_close: Callable[[], Awaitable[None]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        compress = GZipMiddleware(super().__call__, minimum_size=0, compresslevel=GZIP_LEVEL, exclude_content_types=())
        try:
            await compress(scope, receive, send)
        finally:
            if self._on_close is not None:  # what the stream started, stopped even if never sent
                await self._on_close()


def describe(entry: RegisteredGraph, request: Request) -> dict[str, Any]:
    return {
        "name": entry.name,
        "description": entry.description,
        "url": str(request.url_for("agui_run", graph=entry.name)),
        "protocol": "ag-ui",
        "input_schema": entry.spec.input_schema(),
        "state_keys": ui_keys(entry.spec),
        "capabilities": {
            "identity": {"type": "langgraph", "name": entry.name},
            "transport": {"streaming": True},
            "state": {"snapshots": True, "deltas": True, "persistentState": True},
            "humanInTheLoop": {"supported": True, "interrupts": True},
            "tools": {"supported": True, "clientProvided": True},
        },
    }


@router.get("/agui")
async def list_agents(registry: RegistryDep, request: Request) -> dict[str, Any]:
    """Every graph as an AG-UI agent (the CopilotKit runtime registers one agent per entry)."""
    return {"agents": [describe(entry, request) for entry in registry.list()]}


@router.get("/agui/{graph}")
async def describe_agent(graph: str, registry: RegistryDep, request: Request) -> dict[str, Any]:
    return describe(_graph(registry, graph), request)


def _graph(registry: GraphRegistry, name: str) -> RegisteredGraph:
    try:
        return registry.get(name)
    except NotFound as error:
        raise NotFound(error.message, param="graph") from None


async def _own_thread(store: AppStore, thread_id: str, identity: Identity, graph: str) -> Thread | None:
    """The caller's thread, None when no thread has that id yet; someone else's is 404, as if missing."""
    try:
        thread = await store.get_thread(thread_id, None)  # one read, whoever owns it
    except NotFound:
        return None
    if thread.owner != identity.user_id:
        raise NotFound(f"thread {thread_id} not found", param="threadId")
    if thread.graph and thread.graph != graph:
        raise Conflict(f"thread {thread_id} belongs to graph {thread.graph!r}, not {graph!r}", param="threadId")
    return thread


def _retrieved(task: asyncio.Future[Any]) -> None:
    """A read left unawaited (the request was refused first) fails quietly, not as an unretrieved error."""
    if not task.cancelled():
        task.exception()


def _frontend_tools(input: RunAgentInput) -> list[dict[str, Any]]:
    return [
        {"name": tool.name, "description": tool.description, "parameters": tool.parameters or {"type": "object"}}
        for tool in input.tools or []
    ]


def _wants_raw(input: RunAgentInput) -> bool:
    props: Mapping[str, Any] = forwarded(input)
    return bool(props.get("emitRawEvents") or props.get("emit_raw_events"))


@router.post("/agui/{graph}", name="agui_run")
async def run_agent(
    graph: str,
    input: RunAgentInput,
    registry: RegistryDep,
    runs: RunsDep,
    services: ServicesDep,
    identity: IdentityDep,
) -> EventStream:
    """Run `graph` on the AG-UI `threadId` (a Citadel thread) and stream AG-UI events (SSE)."""
    entry = _graph(registry, graph)
    assert services.app_store is not None
    check_thread_id(input.thread_id)  # one the tables cannot hold is refused here, not mid-stream
    # The thread's row and its checkpoint are read together; the state is used once the thread
    # turns out to be the caller's.
    state_read = asyncio.ensure_future(entry.graph.aget_state({"configurable": {"thread_id": input.thread_id}}))
    state_read.add_done_callback(_retrieved)
    try:
        thread = await _own_thread(services.app_store, input.thread_id, identity, graph)
    except BaseException:
        state_read.cancel()
        raise
    snapshot = await state_read
    plan = plan_run(entry.spec, input, snapshot.values or {})
    if plan.kind != "restore" and thread is not None and thread.status == "busy":
        raise Conflict(
            f"thread {input.thread_id} already has a run in progress; wait for it or cancel it", param="threadId"
        )
    if plan.kind == "resume" and not snapshot.interrupts:
        raise Conflict(f"thread {input.thread_id} is not waiting for an answer: nothing to resume", param="resume")
    if plan.kind == "start":
        entry.spec.validate_input(plan.graph_input)  # 422 naming the field, before any event

    run_graph = RunGraph(
        entry,
        runs,
        identity.user_id,
        configurable={"frontend_tools": _frontend_tools(input)} if input.tools else {},
        metadata={"agui_run_id": input.run_id},
        snapshot=snapshot,
    )
    from citadel.ui_bridge.agent import make_agent  # ag-ui-langgraph: on the first run, not at start

    values = snapshot.values or {}
    agent = make_agent(run_graph, entry.spec, plan, thread_values=values, emit_raw=_wants_raw(input))
    # A restore always sends a full snapshot; a run sends deltas against the state the client sent.
    client_state = input.state if plan.kind != "restore" and isinstance(input.state, dict) else None
    lean = LeanStream(services.settings.agui_text_batch_ms, client_state=client_state)
    # The agent starts now: its run is accepted and launched while the response is being set up.
    lean.start(agent.run(input))

    async def frames() -> AsyncIterator[bytes]:
        async for batch in lean.batches():
            yield sse_frames(batch)

    headers = dict(SSE_HEADERS)
    ping = services.settings.agui_ping_seconds
    return EventStream(frames(), headers=headers, ping=ping, sep="\n", on_close=lean.close)
