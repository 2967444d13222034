"""The `workflow` graph: the plan's workflow API as a graph.

Input `steps` (`embedding`, `vector_search`, `llm_query`; see `citadel.graphs.workflow_steps`) run in
order, one super-step each, so `progress` (completed, total, current) streams after every step;
each step's output is available to the later ones. A step with `approve: true` pauses for approval
(`interrupt()`) before it runs; rejected, the workflow stops (`status: rejected`). A step that fails
with a Citadel error stops it too (`status: failed`, `error` says which step and why).

START → workflow_start → workflow_step* → END
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field, ValidationError
from typing_extensions import TypedDict

from citadel.agents.approval import ask_approval
from citadel.agents.deps import AgentDeps
from citadel.agents.state import ConversationState, Progress
from citadel.errors import CitadelError
from citadel.graphs.errors import InvalidInput
from citadel.graphs.schemas import ConversationOutput
from citadel.graphs.spec import GraphSpec
from citadel.graphs.workflow_steps import (
    STEPS,
    EmbeddingStep,
    LLMQueryStep,
    Step,
    StepResult,
    VectorSearchStep,
    run_embedding,
    run_llm_query,
    run_vector_search,
)

Status = Literal["running", "done", "rejected", "failed"]


class StepError(TypedDict):
    step: int
    code: str
    message: str


class WorkflowState(ConversationState, total=False):
    steps: list[dict[str, Any]]
    results: list[StepResult]
    progress: Progress
    status: Status
    error: StepError | None


class WorkflowInput(BaseModel):
    steps: list[Step] = Field(min_length=1, max_length=100, description="The steps, run in order.")


class WorkflowOutput(ConversationOutput):
    steps: list[dict[str, Any]] = Field(default_factory=list, description="The steps, as validated.")
    results: list[StepResult] = Field(default_factory=list, description="Each finished step's output.")
    progress: Progress | None = Field(default=None, description="Steps completed, total, and the one running.")
    status: Status | None = Field(default=None, description="running, done, rejected or failed.")
    error: StepError | None = Field(default=None, description="Why the workflow failed, and at which step.")


def _current(steps: list[dict[str, Any]], index: int) -> str | None:
    return f"step {index}: {steps[index]['type']}" if index < len(steps) else None


def build(deps: AgentDeps) -> StateGraph[Any, Any, Any, Any]:
    graph = StateGraph(WorkflowState)

    async def workflow_start(state: WorkflowState) -> dict[str, Any]:
        try:
            steps = WorkflowInput.model_validate({"steps": state.get("steps") or []}).steps
        except ValidationError as error:
            raise InvalidInput.from_validation("workflow", error) from error
        dumped = [step.model_dump(mode="json", exclude_none=True) for step in steps]
        progress = Progress(completed=0, total=len(steps), current=_current(dumped, 0))
        return {"steps": dumped, "results": [], "progress": progress, "status": "running", "error": None}

    async def workflow_step(state: WorkflowState, config: RunnableConfig) -> dict[str, Any]:
        steps, results = state["steps"], list(state.get("results", []))
        index = state["progress"]["completed"]
        step = STEPS.validate_python([steps[index]])[0]
        if step.approve and not ask_approval(
            "workflow_step", f"Step {index} ({step.type}) asks for approval before it runs.", step=index,
            params=steps[index],
        ):  # fmt: skip
            return {"status": "rejected", "progress": Progress(completed=index, total=len(steps), current=None)}
        update: dict[str, Any] = {}
        try:
            if isinstance(step, EmbeddingStep):
                result = await run_embedding(deps, step, index, results)
            elif isinstance(step, VectorSearchStep):
                result = await run_vector_search(deps, step, index, results, config)
            else:
                assert isinstance(step, LLMQueryStep)
                result, reply = await run_llm_query(deps, step, index, results)
                update["messages"] = [reply]
        except CitadelError as error:
            failure = StepError(step=index, code=error.code, message=error.message)
            return {
                "status": "failed",
                "error": failure,
                "progress": Progress(completed=index, total=len(steps), current=None),
            }
        results.append(result)
        done = index + 1
        update |= {
            "results": results,
            "progress": Progress(completed=done, total=len(steps), current=_current(steps, done)),
            "status": "running" if done < len(steps) else "done",
        }
        return update

    def next_step(state: WorkflowState) -> str:
        return "workflow_step" if state.get("status") == "running" else END

    graph.add_node("workflow_start", workflow_start)
    graph.add_node("workflow_step", workflow_step)
    graph.add_edge(START, "workflow_start")
    graph.add_conditional_edges("workflow_start", next_step, ["workflow_step", END])
    graph.add_conditional_edges("workflow_step", next_step, ["workflow_step", END])
    return graph


SPEC = GraphSpec(
    name="workflow",
    description=(
        "Runs a list of steps (embedding, vector_search, llm_query) in order; each step's output is available to "
        "the next ({prev}, {step_N}); progress is in the state; a step marked approve pauses for approval first."
    ),
    input_model=WorkflowInput,
    output_model=WorkflowOutput,
    build=build,
)
