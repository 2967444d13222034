"""The plan's workflow API, a thin convenience over the `workflow` graph run in the background:
`POST /api/v1/workflows` → `{workflow_id, status}`; `GET /api/v1/workflows/{id}` → status, progress,
results. The workflow is a thread/run like any other (its id is the run's), so the thread API and
the other faces see it too."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from citadel.core.dependencies import RegistryDep, RunsDep, ServicesDep
from citadel.core.identity import IdentityDep
from citadel.core.runs import RunRequest
from citadel.core.wire import to_jsonable

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


class WorkflowCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: list[dict[str, Any]] = Field(
        min_length=1, description="Steps run in order: embedding, vector_search, llm_query (see the workflow graph)."
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    collection: str | None = Field(default=None, description="Collection for vector_search steps that name none.")


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def create_workflow(body: WorkflowCreate, runs: RunsDep, identity: IdentityDep) -> dict[str, Any]:
    assert runs.store is not None
    thread = await runs.store.create_thread(identity.user_id, graph="workflow", metadata={"workflow": True})
    config = {"configurable": {"collection": body.collection}} if body.collection else {}
    run, _ = await runs.create(
        RunRequest(
            graph="workflow",
            owner=identity.user_id,
            thread_id=thread.thread_id,
            input={"steps": body.steps},
            config=config,
            metadata=body.metadata,
        )
    )
    await runs.launch(run)
    return {"workflow_id": run.run_id, "thread_id": thread.thread_id, "status": run.status}


@router.get("/{workflow_id}")
async def get_workflow(
    workflow_id: str, services: ServicesDep, registry: RegistryDep, identity: IdentityDep
) -> dict[str, Any]:
    assert services.app_store is not None
    run = await services.app_store.get_run(workflow_id, owner=identity.owner_filter)
    snapshot = await registry.get("workflow").graph.aget_state({"configurable": {"thread_id": run.thread_id}})
    values = to_jsonable(snapshot.values) or {}
    state = values.get("status")
    if run.status in ("pending", "running"):
        shown = run.status
    elif snapshot.interrupts:
        shown = "awaiting_approval"
    else:
        shown = {"done": "completed", "rejected": "rejected", "failed": "failed"}.get(str(state), run.status)
    return {
        "workflow_id": run.run_id,
        "thread_id": run.thread_id,
        "status": shown,
        "run_status": run.status,
        "progress": values.get("progress"),
        "results": values.get("results", []),
        "error": values.get("error") or run.error,
        "interrupts": to_jsonable(list(snapshot.interrupts)),
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
    }
