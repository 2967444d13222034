"""The graph registry as LangGraph Platform "assistants": `assistant_id` = graph name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from citadel.core.dependencies import RegistryDep
from citadel.core.registry import RegisteredGraph

router = APIRouter(tags=["assistants"])
STARTED = datetime.now(UTC).isoformat()


def assistant(entry: RegisteredGraph) -> dict[str, Any]:
    spec = entry.spec
    return {
        "assistant_id": spec.name,
        "graph_id": spec.name,
        "name": spec.name,
        "description": spec.description,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "version": 1,
        "created_at": STARTED,
        "updated_at": STARTED,
    }


class AssistantSearch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearch, registry: RegistryDep) -> list[dict[str, Any]]:
    entries = [e for e in registry.list() if body.graph_id in (None, e.spec.name) and body.name in (None, e.spec.name)]
    return [assistant(e) for e in entries[body.offset : body.offset + body.limit]]


@router.post("/assistants/count")
async def count_assistants(body: AssistantSearch, registry: RegistryDep) -> int:
    return len([e for e in registry.list() if body.graph_id in (None, e.spec.name)])


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, registry: RegistryDep) -> dict[str, Any]:
    return assistant(registry.get(assistant_id))


@router.get("/assistants/{assistant_id}/schemas")
async def get_schemas(assistant_id: str, registry: RegistryDep) -> dict[str, Any]:
    spec = registry.get(assistant_id).spec
    return {
        "graph_id": spec.name,
        "input_schema": spec.input_schema(),
        "output_schema": spec.output_schema(),
        "state_schema": spec.output_schema(),
        "config_schema": spec.config_schema(),
        "context_schema": spec.context_schema(),
    }


@router.get("/assistants/{assistant_id}/graph")
async def get_graph(assistant_id: str, registry: RegistryDep, xray: bool = False) -> dict[str, Any]:
    drawable = await registry.get(assistant_id).graph.aget_graph(xray=xray)
    return drawable.to_json()  # type: ignore[no-any-return]


@router.get("/assistants/{assistant_id}/subgraphs")
async def get_subgraphs(assistant_id: str, registry: RegistryDep) -> dict[str, Any]:
    registry.get(assistant_id)
    return {}
