"""One MCP tool per registered graph (`ask_assistant`, `ask_rag`, `run_workflow`, `run_<name>` for
others), and `resume_thread`.

A graph tool takes the graph's own input (its published schema) plus an optional `thread_id`, and
runs it through the RunManager like every other face: the caller owns the thread, one run at a time
per thread (a second is refused), the run is durable, and a cancelled MCP call cancels the run.
Each finished graph step is reported as a progress notification.

When a run pauses for approval (an `interrupt` of type `approval`), the client is asked:
- 2026-07-28 clients that declared elicitation get an `InputRequiredResult` carrying an
  elicitation form; they answer and retry the same call, which resumes the run (the thread id rides
  the SDK-sealed `requestState`);
- earlier-revision clients that declared elicitation, on a connection that can carry server
  requests (stdio, session-based HTTP), are sent `elicitation/create` mid-call;
- anyone else gets a result with status `awaiting_approval`, what is asked, and how to answer:
  `resume_thread(thread_id, decision)`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
import pydantic_core
from mcp.server.elicitation import render_elicitation_schema
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import (
    CallToolResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field, create_model

from citadel.core.runs import RunManager, RunRequest
from citadel.core.services import Core
from citadel.core.wire import to_jsonable
from citadel.errors import Conflict
from citadel.graphs.spec import ServedGraph
from citadel.mcp_server._bounds import clip, share, shrink
from citadel.mcp_server.auth import caller
from citadel.mcp_server.errors import tool_errors
from citadel.mcp_server.state import state_of
from citadel.memory.app_store import Run

Ctx = Context[Core, Any]

TOOL_NAMES = {"assistant": "ask_assistant", "rag": "ask_rag", "workflow": "run_workflow"}
TOOL_TITLES = {"assistant": "Ask the assistant", "rag": "Ask the researcher (RAG)", "workflow": "Run a workflow"}
APPROVAL_KEY = "approval"
INPUT_REQUIRED_VERSION = "2026-07-28"
MAX_APPROVALS = 8
CANCEL_WAIT_SECONDS = 10.0

ABOUT: dict[str, str] = {
    "assistant": "The answer says which specialist gave it; a researcher's answer comes with the sources it cites.",
    "rag": "Returns the answer with the sources (passages, best first) it cites by id.",
    "workflow": (
        "Step types: embedding (text or texts, model), vector_search (collection, query or vector_from, k, filter, "
        "score_threshold), llm_query (prompt, system, model, route, max_tokens). {prev} and {step_N} in a step's "
        "text insert earlier steps' outputs; approve: true pauses for approval before that step. Returns each "
        "step's result; the answer is the last step's output."
    ),
}
ABOUT_RUNS = (
    "Each call is one run on a thread, checkpointed: omit thread_id to start a new thread, or pass the thread_id "
    "a previous call returned to continue it (one run at a time per thread). Each finished step is reported as "
    "progress. If the run pauses for approval, you are asked through elicitation when your client supports it; "
    "otherwise the result has status awaiting_approval and resume_thread answers it."
)


def tool_name(graph: str, chosen: str | None = None) -> str:
    """The MCP tool of a graph: the name its project chose, a built-in's, or `run_<graph>`."""
    return chosen or TOOL_NAMES.get(graph, f"run_{graph}")


# --- results ------------------------------------------------------------------------------------
class Source(BaseModel):
    id: str = Field(description="The document's id (cited in the answer).")
    title: str
    score: float = Field(description="Similarity of the passage to the question.")
    text: str = Field(description="The start of the passage.")


class StepOutcome(BaseModel):
    index: int
    type: str = Field(description="embedding, vector_search or llm_query.")
    text: str = Field(description="The step's output as text (what {step_N} inserts).")


class ApprovalNeeded(BaseModel):
    kind: str = Field(description="What asks: e.g. workflow_step, long_document.")
    message: str = Field(description="The question, in words.")
    details: dict[str, Any] = Field(description="What the step would do.")
    how_to_resume: str


class GraphRun(BaseModel):
    graph: str
    thread_id: str = Field(description="Pass it back as thread_id to continue this conversation.")
    run_id: str
    status: Literal["completed", "awaiting_approval", "rejected", "failed"] = Field(
        description="completed; awaiting_approval (see approval); rejected (approval refused); failed (see error)."
    )
    answer: str | None = Field(description="The reply (assistant, rag) or the last step's output (workflow).")
    specialist: str | None = Field(default=None, description="Who answered the turn (assistant).")
    sources: list[Source] = Field(default_factory=list, description="Passages the answer drew on, best first.")
    report: str | None = Field(default=None, description="The analyst's report on a document (assistant).")
    results: list[StepOutcome] = Field(default_factory=list, description="Each finished step's output (workflow).")
    progress: dict[str, Any] | None = Field(default=None, description="Steps or sections done, of how many.")
    approval: ApprovalNeeded | None = Field(default=None, description="What awaits approval, and how to answer.")
    error: str | None = Field(default=None, description="Why it failed (workflow: which step, and why).")


class ApprovalForm(BaseModel):
    approve: bool = Field(description="Yes to let the paused step run, no to refuse it.")


Outcome = GraphRun | InputRequiredResult | CallToolResult


def _as_result(outcome: Outcome) -> CallToolResult | InputRequiredResult:
    if isinstance(outcome, GraphRun):
        return CallToolResult(
            content=[TextContent(type="text", text=outcome.model_dump_json(indent=2))],
            structured_content=outcome.model_dump(mode="json"),
        )
    return outcome


# --- running ------------------------------------------------------------------------------------
@dataclass
class Pending:
    interrupt_id: str | None
    kind: str
    message: str
    details: dict[str, Any]


class _Progress:
    """Progress notifications for one call: 0 when the run starts, then one per finished step."""

    def __init__(self, ctx: Ctx) -> None:
        self._ctx = ctx
        self._count = 0

    async def report(self, message: str) -> None:
        await self._ctx.report_progress(self._count, None, message)
        self._count += 1

    async def step(self, update: dict[str, Any]) -> None:
        for node, change in update.items():
            if node == "__interrupt__":
                await self.report("paused for approval")
                continue
            text = f"{node} done"
            progress = change.get("progress") if isinstance(change, dict) else None
            if isinstance(progress, dict) and progress.get("total"):
                text += f" ({progress.get('completed')}/{progress['total']}"
                text += f"; next: {progress['current']})" if progress.get("current") else ")"
            await self.report(text)


async def _execute(ctx: Ctx, runs: RunManager, request: RunRequest) -> tuple[Run, dict[str, Any]]:
    """Start the run, report its steps, and answer its final values. If the call ends early
    (cancelled by the client, or the client went away) the run is cancelled too."""
    run, _ = await runs.create(request)
    await runs.launch(run)
    progress = _Progress(ctx)
    try:
        await progress.report(f"run {run.run_id} started on thread {run.thread_id}")
        async for _, event, data in runs.stream(run):
            if event == "updates" and isinstance(data, dict):
                await progress.step(data)
        end = await runs.wait(run)
    except BaseException:
        with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_WAIT_SECONDS):
            await runs.cancel(await runs.store.get_run(run.run_id), wait=True)
        raise
    return run, await runs.final_values(run, end)


def _pending(values: dict[str, Any]) -> Pending | None:
    for interrupt in values.get("__interrupt__") or []:
        value = interrupt.get("value") if isinstance(interrupt, dict) else None
        if isinstance(value, dict):
            details = {k: v for k, v in value.items() if k not in ("type", "kind", "message")}
            return Pending(interrupt.get("id"), str(value.get("kind", "approval")), str(value.get("message")), details)
        return Pending(None, "interrupt", json.dumps(value), {})
    return None


def _resume_request(graph: str, owner: str, thread_id: str, decision: str) -> RunRequest:
    return RunRequest(
        graph=graph,
        owner=owner,
        thread_id=thread_id,
        command={"resume": decision},
        stream_mode=["updates"],
        metadata={"source": "mcp"},
    )


async def _drive(ctx: Ctx, state: Core, request: RunRequest) -> Outcome:
    """Run, and while the run pauses for approval and the client can be asked, ask and resume."""
    asked = 0
    while True:
        run, values = await _execute(ctx, state.runs, request)
        pending = _pending(values)
        if pending is None:
            return _finished(state, run, values)
        assert run.thread_id is not None
        decision = await _ask(ctx, run.graph, run.thread_id, pending) if asked < MAX_APPROVALS else None
        if isinstance(decision, InputRequiredResult):
            return decision
        if decision is None:
            return _awaiting(state, run.graph, run.thread_id, run.run_id, values, pending)
        asked += 1
        request = _resume_request(run.graph, request.owner, run.thread_id, decision)


def _modern(ctx: Ctx) -> bool:
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION)


def _can_elicit(ctx: Ctx) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _decision(answer: ElicitResult) -> str | None:
    """approve / reject, or None when the person dismissed the question without answering."""
    if answer.action == "accept":
        try:
            form = ApprovalForm.model_validate(answer.content or {})
        except ValueError as error:
            raise ToolError("the approval answer does not fit the form (expected approve: true/false)") from error
        return "approve" if form.approve else "reject"
    return "reject" if answer.action == "decline" else None


async def _ask(ctx: Ctx, graph: str, thread_id: str, pending: Pending) -> str | InputRequiredResult | None:
    if not _can_elicit(ctx):
        return None
    message = f"{pending.message}\n\n(Citadel {graph} run on thread {thread_id}.)"
    if _modern(ctx):
        form = ElicitRequestFormParams(message=message, requested_schema=render_elicitation_schema(ApprovalForm))
        remembered = {"thread_id": thread_id, "interrupt": pending.interrupt_id}
        return InputRequiredResult(
            input_requests={APPROVAL_KEY: ElicitRequest(params=form)}, request_state=json.dumps(remembered)
        )
    if not ctx.session.can_send_request:
        return None  # e.g. stateless HTTP: no channel for a server request
    try:
        answer = await ctx.elicit(message, ApprovalForm)
    except ValueError as error:
        raise ToolError("the approval answer does not fit the form (expected approve: true/false)") from error
    if answer.action == "accept":
        return "approve" if answer.data.approve else "reject"
    return "reject" if answer.action == "decline" else None


@dataclass
class _Answered:
    thread_id: str
    decision: str | None


def _answered(ctx: Ctx) -> _Answered | None:
    """On a 2026-07-28 retry: the thread the approval was asked for, and the answer. The state is
    the one `_ask` minted (the SDK seals it, and refuses one that was tampered with)."""
    if ctx.request_state is None:
        return None
    remembered = json.loads(ctx.request_state)
    answer = (ctx.input_responses or {}).get(APPROVAL_KEY)
    if not isinstance(answer, ElicitResult):
        raise ToolError("this retry carries no answer to the approval request")
    return _Answered(thread_id=str(remembered["thread_id"]), decision=_decision(answer))


async def _resume(ctx: Ctx, state: Core, thread_id: str, decision: str | None) -> Outcome:
    owner = caller(ctx)
    thread = await state.runs.store.get_thread(thread_id, owner.user_id)
    if not thread.graph:
        raise Conflict(f"thread {thread_id} has never run a graph", param="thread_id")
    snapshot = await state.registry.get(thread.graph).graph.aget_state({"configurable": {"thread_id": thread_id}})
    values = to_jsonable(snapshot.values) or {}
    values["__interrupt__"] = to_jsonable(list(snapshot.interrupts))
    pending = _pending(values)
    if pending is None:
        raise Conflict(f"thread {thread_id} is not waiting for approval (status {thread.status})", param="thread_id")
    if decision is None:
        return _awaiting(state, thread.graph, thread_id, None, values, pending)
    return await _drive(ctx, state, _resume_request(thread.graph, owner.user_id, thread_id, decision))


# --- shaping results ----------------------------------------------------------------------------
def _answer(values: dict[str, Any]) -> str | None:
    if values.get("results") is not None and "steps" in values:
        results = values.get("results") or []
        return str(results[-1].get("text", "")) if results else None
    for message in reversed(values.get("messages") or []):
        if isinstance(message, dict) and message.get("type") in ("ai", "assistant"):
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return None


def _shape(state: Core, graph: str, thread_id: str, run_id: str | None, values: dict[str, Any]) -> dict[str, Any]:
    budget = state.settings.mcp_max_output_chars
    sources = [s for s in values.get("sources") or [] if isinstance(s, dict)]
    results = [r for r in values.get("results") or [] if isinstance(r, dict)]
    each = share(budget // 2, len(sources) + len(results) + 1)
    answer = _answer(values)
    report = values.get("report")
    return {
        "graph": graph,
        "thread_id": thread_id,
        "run_id": run_id or "",
        "answer": clip(answer, budget // 2) if answer is not None else None,
        "specialist": values.get("specialist"),
        "sources": [
            Source(
                id=str(s.get("id")),
                title=str(s.get("title")),
                score=float(s.get("score") or 0),
                text=clip(str(s.get("text", "")), each),
            )
            for s in sources
        ],
        "report": clip(report, each) if isinstance(report, str) else None,
        "results": [
            StepOutcome(index=int(r.get("index", i)), type=str(r.get("type")), text=clip(str(r.get("text", "")), each))
            for i, r in enumerate(results)
        ],
        "progress": shrink(values.get("progress"), 200),
    }


def _finished(state: Core, run: Run, values: dict[str, Any]) -> GraphRun | CallToolResult:
    assert run.thread_id is not None
    failure = values.get("__error__")
    if isinstance(failure, dict):
        raise ToolError(f"the {run.graph} run on thread {run.thread_id} failed: {failure.get('message')}")
    shaped = _shape(state, run.graph, run.thread_id, run.run_id, values)
    if values.get("status") == "rejected" or values.get("analysis") == "rejected":
        return GraphRun(status="rejected", **shaped)
    error = values.get("error")
    if values.get("status") == "failed" and isinstance(error, dict):
        reason = f"step {error.get('step')} failed: {error.get('code')}: {error.get('message')}"
        result = GraphRun(status="failed", error=reason, **shaped)
        text = f"the workflow on thread {run.thread_id} stopped: {reason}"
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content=result.model_dump(mode="json"),
            is_error=True,
        )
    return GraphRun(status="completed", **shaped)


def _awaiting(
    state: Core, graph: str, thread_id: str, run_id: str | None, values: dict[str, Any], pending: Pending
) -> GraphRun:
    approval = ApprovalNeeded(
        kind=pending.kind,
        message=pending.message,
        details=shrink(pending.details, 500),
        how_to_resume=(
            f"Ask the user, then call resume_thread with thread_id {thread_id!r} and decision 'approve' or 'reject'."
        ),
    )
    shaped = _shape(state, graph, thread_id, run_id, values)
    shaped["answer"] = None
    return GraphRun(status="awaiting_approval", approval=approval, **shaped)


# --- the tools ----------------------------------------------------------------------------------
async def _call_graph(ctx: Ctx, *, graph: str, **arguments: Any) -> CallToolResult | InputRequiredResult:
    state = state_of(ctx)
    with tool_errors():
        answered = _answered(ctx)
        if answered is not None:
            return _as_result(await _resume(ctx, state, answered.thread_id, answered.decision))
        owner = caller(ctx).user_id
        thread_id = arguments.pop("thread_id", None)
        graph_input = pydantic_core.to_jsonable_python(
            {k: v for k, v in arguments.items() if v is not None}, exclude_none=True
        )
        state.registry.get(graph).spec.validate_input(graph_input)
        if thread_id is None:
            thread = await state.runs.store.create_thread(owner, graph=graph, metadata={"source": "mcp"})
            thread_id = thread.thread_id
        request = RunRequest(
            graph=graph,
            owner=owner,
            thread_id=thread_id,
            input=graph_input,
            stream_mode=["updates"],
            metadata={"source": "mcp"},
        )
        return _as_result(await _drive(ctx, state, request))


async def resume_thread(
    ctx: Ctx,
    thread_id: Annotated[str, Field(min_length=1, description="The thread whose run awaits approval.")],
    decision: Annotated[
        Literal["approve", "reject"], Field(description="approve lets the paused step run; reject stops it.")
    ],
) -> Annotated[CallToolResult, GraphRun] | InputRequiredResult:
    """Answer a graph run that paused for approval (a graph tool returned status awaiting_approval):
    approve lets the paused step run and the run continue; reject stops it. Returns what the graph
    tool would have: the answer, or the next approval it waits for."""
    state = state_of(ctx)
    with tool_errors():
        answered = _answered(ctx)
        if answered is not None:
            return _as_result(await _resume(ctx, state, answered.thread_id, answered.decision))
        return _as_result(await _resume(ctx, state, thread_id, decision))


GRAPH_ANNOTATIONS = dict(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)


def graph_tool(spec: ServedGraph) -> Tool:
    """The MCP tool for one graph: its input schema plus `thread_id`, its run as the call."""
    name = tool_name(spec.name, spec.tool_name)
    arguments: type[ArgModelBase] = create_model(
        f"{name}Arguments",
        __base__=(spec.input_model, ArgModelBase),  # type: ignore[arg-type]  # the graph's fields, the SDK's base
        thread_id=(
            str | None,
            Field(default=None, description="Continue this thread (from an earlier result); omit to start one."),
        ),
    )
    description = " ".join(part for part in (spec.description, ABOUT.get(spec.name), ABOUT_RUNS) if part)
    title = TOOL_TITLES.get(spec.name, f"Run the {spec.name} graph")
    return Tool(
        fn=functools.partial(_call_graph, graph=spec.name),
        name=name,
        title=title,
        description=description,
        parameters=arguments.model_json_schema(by_alias=True),
        fn_metadata=FuncMetadata(arg_model=arguments, output_model=GraphRun),
        is_async=True,
        context_kwarg="ctx",
        annotations=ToolAnnotations(title=title, **GRAPH_ANNOTATIONS),
    )


def graph_tools(specs: Sequence[ServedGraph]) -> list[Tool]:
    return [graph_tool(spec) for spec in specs]


def register(server: MCPServer[Core]) -> None:
    server.add_tool(
        resume_thread,
        title="Answer an approval",
        annotations=ToolAnnotations(title="Answer an approval", **GRAPH_ANNOTATIONS),
    )
