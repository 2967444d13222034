"""Runs in the LangGraph Platform shape: blocking (`/runs/wait`), streamed (`/runs/stream`, SSE),
background (`/runs`), with join, cancel and the stateless forms."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from langgraph.types import Durability
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from citadel.core.dependencies import RunsDep, ServicesDep
from citadel.core.identity import Identity, IdentityDep
from citadel.core.runs import RunManager, RunRequest
from citadel.core.wire import dumps
from citadel.memory.app_store import Run

router = APIRouter(tags=["runs"])


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    assistant_id: str = Field(description="The graph to run (see /assistants/search).")
    input: Any = None
    command: dict[str, Any] | None = Field(default=None, description='e.g. {"resume": ...} to answer an interrupt.')
    stream_mode: str | list[str] = "values"
    stream_subgraphs: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    interrupt_before: list[str] | Literal["*"] | None = None
    interrupt_after: list[str] | Literal["*"] | None = None
    on_disconnect: Literal["cancel", "continue"] = "cancel"
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] | None = None
    if_not_exists: Literal["reject", "create"] = "reject"
    on_completion: Literal["delete", "keep"] = "delete"
    durability: Durability | None = Field(
        default=None,
        description="When the run's checkpoints are written: `async` (the default: each step's while the next "
        "runs), `sync` (each step's before the next starts), `exit` (only when the run ends or pauses; a run "
        "taken up again after its process died starts over from its input).",
    )
    checkpoint_during: bool | None = Field(
        default=None, description="Deprecated (LangGraph Platform): true is durability `async`, false `exit`."
    )

    def request(self, identity: Identity, thread_id: str | None) -> RunRequest:
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else list(self.stream_mode)
        return RunRequest(
            graph=self.assistant_id,
            owner=identity.user_id,
            thread_id=thread_id,
            input=self.input,
            command=self.command,
            config=self.config,
            context=self.context,
            stream_mode=modes or ["values"],
            stream_subgraphs=self.stream_subgraphs,
            metadata=self.metadata,
            checkpoint_id=self.checkpoint_id or (self.checkpoint or {}).get("checkpoint_id"),
            interrupt_before=self.interrupt_before,
            interrupt_after=self.interrupt_after,
            multitask_strategy=self.multitask_strategy or "reject",
            if_not_exists=self.if_not_exists,
            keep_thread=thread_id is None and self.on_completion == "keep",
            durability=self.durability or _durability_of(self.checkpoint_during),
        )


def _durability_of(checkpoint_during: bool | None) -> Durability | None:
    if checkpoint_during is None:
        return None
    return "async" if checkpoint_during else "exit"


def run_to_wire(run: Run, multitask_strategy: str = "reject") -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "assistant_id": run.graph,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "status": run.status,
        "metadata": run.metadata,
        "multitask_strategy": multitask_strategy,
        "kwargs": {k: run.payload.get(k) for k in ("input", "command", "config", "stream_mode")},
        "error": run.error,
    }


def _location(run: Run, stateless: bool) -> dict[str, str]:
    path = f"/runs/{run.run_id}" if stateless else f"/threads/{run.thread_id}/runs/{run.run_id}"
    return {"Content-Location": path}


SSE_HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}


def _frames(runs: RunManager, run: Run, after: str | None, cancel_on_disconnect: bool) -> EventSourceResponse:
    """The run's events as SSE, each with its id (a client that reconnects with `Last-Event-ID`, to
    any replica, gets every event after it once, in order)."""

    async def frames() -> AsyncIterator[ServerSentEvent]:
        finished = False
        try:
            async for event_id, event, data in runs.stream(run, after):
                yield ServerSentEvent(data=dumps(data), event=event, id=event_id or None)
            finished = True
        finally:
            if not finished and cancel_on_disconnect:
                await asyncio.shield(runs.cancel(run))

    return EventSourceResponse(frames(), headers=SSE_HEADERS, ping=15)


async def _stream(
    runs: RunManager, request: Request, body: RunCreate, identity: Identity, thread_id: str | None
) -> EventSourceResponse:
    run, _ = await runs.create(body.request(identity, thread_id))
    await runs.launch(run)
    response = _frames(runs, run, None, body.on_disconnect == "cancel")
    response.headers.update(_location(run, thread_id is None))
    if thread_id is not None:  # where a client reconnects (langgraph-sdk does, with Last-Event-ID)
        response.headers["Location"] = f"/threads/{run.thread_id}/runs/{run.run_id}/stream"
    return response


async def _wait(runs: RunManager, body: RunCreate, identity: Identity, thread_id: str | None) -> Response:
    run, _ = await runs.create(body.request(identity, thread_id))
    await runs.launch(run)
    try:
        end = await runs.wait(run)
    except asyncio.CancelledError:
        if body.on_disconnect == "cancel":
            await asyncio.shield(runs.cancel(run))
        raise
    values = await runs.final_values(run, end)
    return Response(dumps(values), media_type="application/json", headers=_location(run, thread_id is None))


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(
    thread_id: str, body: RunCreate, request: Request, runs: RunsDep, identity: IdentityDep
) -> Response:
    return await _stream(runs, request, body, identity, thread_id)


@router.post("/runs/stream")
async def stream_stateless(body: RunCreate, request: Request, runs: RunsDep, identity: IdentityDep) -> Response:
    return await _stream(runs, request, body, identity, None)


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: str, body: RunCreate, runs: RunsDep, identity: IdentityDep) -> Response:
    return await _wait(runs, body, identity, thread_id)


@router.post("/runs/wait")
async def wait_stateless(body: RunCreate, runs: RunsDep, identity: IdentityDep) -> Response:
    return await _wait(runs, body, identity, None)


@router.post("/threads/{thread_id}/runs")
async def create_background_run(thread_id: str, body: RunCreate, runs: RunsDep, identity: IdentityDep) -> Response:
    run, _ = await runs.create(body.request(identity, thread_id))
    await runs.launch(run)
    return Response(dumps(run_to_wire(run)), media_type="application/json", headers=_location(run, False))


@router.post("/runs")
async def create_stateless_background_run(body: RunCreate, runs: RunsDep, identity: IdentityDep) -> Response:
    run, _ = await runs.create(body.request(identity, None))
    await runs.launch(run)
    return Response(dumps(run_to_wire(run)), media_type="application/json", headers=_location(run, True))


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    services: ServicesDep,
    identity: IdentityDep,
    limit: int = Query(default=10, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
    status: str | None = None,
) -> list[dict[str, Any]]:
    assert services.app_store is not None
    await services.app_store.get_thread(thread_id, identity.owner_filter)
    found = await services.app_store.list_runs(thread_id, limit=limit, offset=offset, status=status)
    return [run_to_wire(r) for r in found]


async def _owned_run(services: ServicesDep, identity: Identity, thread_id: str, run_id: str) -> Run:
    assert services.app_store is not None
    return await services.app_store.get_owned_run(run_id, thread_id, identity.owner_filter)


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, services: ServicesDep, identity: IdentityDep) -> dict[str, Any]:
    return run_to_wire(await _owned_run(services, identity, thread_id, run_id))


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(
    thread_id: str, run_id: str, services: ServicesDep, runs: RunsDep, identity: IdentityDep
) -> Response:
    run = await _owned_run(services, identity, thread_id, run_id)
    end = await runs.wait(run)
    return Response(dumps(await runs.final_values(run, end)), media_type="application/json")


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    services: ServicesDep,
    runs: RunsDep,
    identity: IdentityDep,
    last_event_id: str | None = Header(
        default=None, alias="Last-Event-ID", description="Resume after this event (an SSE id this run's stream sent)."
    ),
    cancel_on_disconnect: bool = False,
) -> EventSourceResponse:
    """The run's events from its first (or after `Last-Event-ID`), live until it ends, on any replica."""
    run = await _owned_run(services, identity, thread_id, run_id)
    if last_event_id:
        runs.event_log.check_id(last_event_id.strip())
    return _frames(runs, run, last_event_id.strip() if last_event_id else None, cancel_on_disconnect)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=status.HTTP_204_NO_CONTENT)
async def cancel_run(
    thread_id: str,
    run_id: str,
    services: ServicesDep,
    runs: RunsDep,
    identity: IdentityDep,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    run = await _owned_run(services, identity, thread_id, run_id)
    await runs.cancel(run, wait=wait)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_run(
    thread_id: str, run_id: str, services: ServicesDep, runs: RunsDep, identity: IdentityDep
) -> Response:
    run = await _owned_run(services, identity, thread_id, run_id)
    await runs.cancel(run, wait=True)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
