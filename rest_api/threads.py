"""Threads in the LangGraph Platform shape: create, read, search, update, delete; their state
(read, update) and history (checkpoints). Someone else's thread answers exactly like a missing one."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response, status
from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError
from pydantic import BaseModel, ConfigDict, Field

from citadel.core.dependencies import RegistryDep, RunsDep, ServicesDep
from citadel.core.identity import IdentityDep
from citadel.core.wire import empty_state, interrupts_by_task, state_to_wire, to_jsonable
from citadel.errors import Conflict, InvalidRequest
from citadel.memory.app_store import Thread
from citadel.rest_api.openapi_links import links

router = APIRouter(tags=["threads"])

THREAD = "/threads/{thread_id}"
THREAD_LINKS = links(
    "thread_id",
    "$response.body#/thread_id",
    {
        "GetThread": (THREAD, "get"),
        "PatchThread": (THREAD, "patch"),
        "DeleteThread": (THREAD, "delete"),
        "GetState": (f"{THREAD}/state", "get"),
        "UpdateState": (f"{THREAD}/state", "post"),
        "PostHistory": (f"{THREAD}/history", "post"),
        "GetHistory": (f"{THREAD}/history", "get"),
        "ListRuns": (f"{THREAD}/runs", "get"),
    },
)


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    thread_id: str | None = Field(default=None, max_length=64)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    graph_id: str | None = None


class ThreadPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metadata: dict[str, Any] = Field(default_factory=dict)


class ThreadSearch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metadata: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    graph_id: str | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "updated_at"
    sort_order: Literal["asc", "desc"] = "desc"


class StateUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    values: dict[str, Any] | list[dict[str, Any]] | None = None
    as_node: str | None = None
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None


class HistoryRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=10, ge=1, le=1000)
    before: dict[str, Any] | str | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None


async def thread_to_wire(thread: Thread, registry: Any) -> dict[str, Any]:
    values: Any = {}
    interrupts: dict[str, Any] = {}
    if thread.graph:
        snapshot = await registry.get(thread.graph).graph.aget_state({"configurable": {"thread_id": thread.thread_id}})
        values, interrupts = to_jsonable(snapshot.values), interrupts_by_task(snapshot)
    metadata = dict(thread.metadata)
    if thread.graph:
        metadata.setdefault("graph_id", thread.graph)
        metadata.setdefault("assistant_id", thread.graph)
    return {
        "thread_id": thread.thread_id,
        "created_at": thread.created_at.isoformat(),
        "updated_at": thread.updated_at.isoformat(),
        "metadata": metadata,
        "status": thread.status,
        "values": values,
        "interrupts": interrupts,
        "title": thread.title,
    }


def _config(
    thread_id: str, checkpoint_id: str | None = None, checkpoint: dict[str, Any] | None = None
) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id}
    checkpoint_id = checkpoint_id or (checkpoint or {}).get("checkpoint_id")
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    if checkpoint and checkpoint.get("checkpoint_ns"):
        configurable["checkpoint_ns"] = checkpoint["checkpoint_ns"]
    return {"configurable": configurable}


@router.post("/threads", responses={200: {"description": "The thread.", "links": THREAD_LINKS}})
async def create_thread(
    body: ThreadCreate, services: ServicesDep, registry: RegistryDep, identity: IdentityDep
) -> dict[str, Any]:
    assert services.app_store is not None
    if body.graph_id:
        registry.get(body.graph_id)
    thread = await services.app_store.create_thread(
        identity.user_id,
        thread_id=body.thread_id,
        graph=body.graph_id,
        metadata=body.metadata,
        if_exists=body.if_exists,
    )
    return await thread_to_wire(thread, registry)


@router.post("/threads/search")
async def search_threads(
    body: ThreadSearch, services: ServicesDep, registry: RegistryDep, identity: IdentityDep
) -> list[dict[str, Any]]:
    assert services.app_store is not None
    threads = await services.app_store.search_threads(
        identity.owner_filter,
        metadata=body.metadata,
        status=body.status,
        graph=body.graph_id,
        limit=body.limit,
        offset=body.offset,
        sort_by=body.sort_by,
        descending=body.sort_order == "desc",
    )
    return [await thread_to_wire(t, registry) for t in threads]


@router.post("/threads/count")
async def count_threads(services: ServicesDep, identity: IdentityDep) -> int:
    assert services.app_store is not None
    return await services.app_store.count_threads(identity.owner_filter)


@router.get("/threads/{thread_id}")
async def get_thread(
    thread_id: str, services: ServicesDep, registry: RegistryDep, identity: IdentityDep
) -> dict[str, Any]:
    assert services.app_store is not None
    return await thread_to_wire(await services.app_store.get_thread(thread_id, identity.owner_filter), registry)


@router.patch("/threads/{thread_id}")
async def patch_thread(
    thread_id: str, body: ThreadPatch, services: ServicesDep, registry: RegistryDep, identity: IdentityDep
) -> dict[str, Any]:
    assert services.app_store is not None
    thread = await services.app_store.update_thread(thread_id, identity.owner_filter, metadata=body.metadata)
    return await thread_to_wire(thread, registry)


@router.delete("/threads/{thread_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_thread(thread_id: str, runs: RunsDep, identity: IdentityDep) -> Response:
    await runs.delete_thread(thread_id, identity.owner_filter)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _state(
    thread_id: str, services: ServicesDep, registry: RegistryDep, identity: IdentityDep, **where: Any
) -> Any:
    assert services.app_store is not None
    thread = await services.app_store.get_thread(thread_id, identity.owner_filter)
    if not thread.graph:
        return empty_state(thread_id)
    graph = registry.get(thread.graph).graph
    return state_to_wire(await graph.aget_state(_config(thread_id, **where)))


@router.get("/threads/{thread_id}/state")
async def get_state(thread_id: str, services: ServicesDep, registry: RegistryDep, identity: IdentityDep) -> Any:
    return await _state(thread_id, services, registry, identity)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    thread_id: str, checkpoint_id: str, services: ServicesDep, registry: RegistryDep, identity: IdentityDep
) -> Any:
    return await _state(thread_id, services, registry, identity, checkpoint_id=checkpoint_id)


@router.post("/threads/{thread_id}/state/checkpoint")
async def post_state_at(
    thread_id: str, body: HistoryRequest, services: ServicesDep, registry: RegistryDep, identity: IdentityDep
) -> Any:
    return await _state(thread_id, services, registry, identity, checkpoint=body.checkpoint)


@router.post("/threads/{thread_id}/state")
async def update_state(
    thread_id: str, body: StateUpdate, services: ServicesDep, registry: RegistryDep, identity: IdentityDep
) -> dict[str, Any]:
    assert services.app_store is not None
    thread = await services.app_store.get_thread(thread_id, identity.owner_filter)
    if not thread.graph:
        raise InvalidRequest("this thread has not run a graph yet: its state has no shape to update", param="thread_id")
    if thread.status == "busy":
        raise Conflict(f"thread {thread_id} has a run in progress", param="thread_id")
    graph = registry.get(thread.graph).graph
    config = _config(thread_id, body.checkpoint_id, body.checkpoint)
    try:
        updated = await graph.aupdate_state(config, body.values, as_node=body.as_node)
    except InvalidUpdateError as error:  # an unknown node, or values the graph's channels refuse
        raise InvalidRequest(
            f"cannot update the state: {error}", param="as_node" if body.as_node is not None else "values"
        ) from error
    await services.app_store.update_thread(thread_id, None, metadata={})
    return {"checkpoint": updated["configurable"]}


@router.post("/threads/{thread_id}/history")
async def history(
    thread_id: str, body: HistoryRequest, services: ServicesDep, registry: RegistryDep, identity: IdentityDep
) -> list[Any]:
    assert services.app_store is not None
    thread = await services.app_store.get_thread(thread_id, identity.owner_filter)
    if not thread.graph:
        return []
    graph = registry.get(thread.graph).graph
    before_config: RunnableConfig | None = None
    if isinstance(body.before, str):
        before_config = _config(thread_id, body.before)
    elif body.before:
        before_config = _config(thread_id, checkpoint=body.before)
    states = []
    async for snapshot in graph.aget_state_history(
        _config(thread_id, checkpoint=body.checkpoint), filter=body.metadata, before=before_config, limit=body.limit
    ):
        states.append(state_to_wire(snapshot))
    return states


@router.get("/threads/{thread_id}/history")
async def history_get(
    thread_id: str,
    services: ServicesDep,
    registry: RegistryDep,
    identity: IdentityDep,
    limit: int = Query(default=10, ge=1, le=1000),
) -> list[Any]:
    return await history(thread_id, HistoryRequest(limit=limit), services, registry, identity)
