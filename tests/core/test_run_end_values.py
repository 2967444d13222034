"""What a run's end carries (the final values `runs/wait` and `join` answer, and the thread's status
after it) is what the thread's checkpoint says, however the run ended: run to its end, paused by a
node's `interrupt()` (alone, or beside a node that finished in the same step), paused by
`interrupt_before`, resumed, failed, with values streamed or not, through a subgraph. The end takes
the values of a run that finished from the run's own stream (`EndSeen`) and reads the checkpoint
only when the run paused; these tests hold it to the checkpoint, on SQLite and PostgreSQL.

The graph is test-only (`SPEC` below), composed as the binding composes the core."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator
from typing import Annotated, Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import BaseModel, ConfigDict
from typing_extensions import TypedDict

from citadel.agents.deps import AgentDeps
from citadel.core.in_process_executor import InProcessExecutor
from citadel.core.registry import build_registry
from citadel.core.run_events import LocalRunEvents, RunEnd
from citadel.core.runs import RunManager, RunRequest, values_of
from citadel.graphs.spec import GraphSpec
from citadel.runtime.services import open_services
from citadel.settings import Settings

DEADLINE = 60.0


class State(TypedDict, total=False):
    case: str
    log: Annotated[list[str], operator.add]
    answer: str


class Output(TypedDict, total=False):
    """Narrower than the state: what the graph outputs is not all a snapshot shows."""

    log: list[str]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case: str


class Inner(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def _inner() -> Any:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(Inner)
    graph.add_node("inner", lambda _: {"log": ["inner"]})
    graph.add_edge(START, "inner")
    graph.add_edge("inner", END)
    return graph.compile()


def start(state: State) -> dict[str, Any]:
    return {"log": ["start"]}


def ask(state: State) -> dict[str, Any]:
    return {"answer": interrupt({"question": "go on?"}), "log": ["asked"]}


def beside(state: State) -> dict[str, Any]:
    return {"log": ["beside"]}


def fail(state: State) -> dict[str, Any]:
    raise RuntimeError("this node fails")


def quiet(state: State) -> dict[str, Any]:
    return {}  # changes nothing: the last values streamed are the step's before


def route(state: State) -> list[str]:
    case = state["case"]
    return {"finish": ["last"], "parallel": ["ask", "beside"], "sub": ["sub"]}.get(case, [case])


def build(_: AgentDeps) -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(State, output_schema=Output)
    graph.add_node("start", start)
    graph.add_node("last", lambda _: {"log": ["last"]})
    graph.add_node("ask", ask)
    graph.add_node("beside", beside)
    graph.add_node("fail", fail)
    graph.add_node("quiet", quiet)
    graph.add_node("sub", _inner())
    graph.add_edge(START, "start")
    graph.add_conditional_edges("start", route, ["last", "ask", "beside", "fail", "quiet", "sub"])
    for name in ("last", "ask", "beside", "fail", "quiet", "sub"):
        graph.add_edge(name, END)
    return graph


class Out(BaseModel):
    log: list[str] = []


SPEC = GraphSpec(
    name="ends", description="Test only: runs that end in every way.", input_model=Input, output_model=Out, build=build
)


@pytest.fixture
async def runs(app_settings: Settings) -> AsyncIterator[RunManager]:
    async with open_services(app_settings, llm=False, state=True) as services:
        assert services.app_store is not None
        assert services.persistence is not None
        registry = build_registry(
            services.agent_deps(), services.persistence.checkpointer, services.persistence.store, specs=(SPEC,)
        )
        manager = RunManager(app_settings, services.app_store, registry, LocalRunEvents(), InProcessExecutor)
        await manager.start()
        try:
            yield manager
        finally:
            await manager.aclose()


async def run_on(runs: RunManager, thread_id: str | None, **request: Any) -> tuple[RunEnd, dict[str, Any]]:
    """Run to its end; how it ended, and what `runs/wait` answers."""
    run = (await runs.create(RunRequest(graph="ends", owner="alice", thread_id=thread_id, **request)))[0]
    await runs.launch(run)
    async with asyncio.timeout(DEADLINE):
        end = await runs.wait(run)
    return end, await runs.final_values(run, end)


async def as_checkpointed(runs: RunManager, thread_id: str, end: RunEnd, answered: dict[str, Any]) -> dict[str, Any]:
    """Check the end against the thread's checkpoint and status; the snapshot's values."""
    snapshot = await runs.registry.get("ends").graph.aget_state({"configurable": {"thread_id": thread_id}})
    thread = await runs.store.get_thread(thread_id, "alice")
    if end.status == "error":
        assert end.values is None
        assert thread.status == "error"
        return values_of(snapshot)
    assert end.values == values_of(snapshot)
    assert answered == values_of(snapshot)
    assert thread.status == ("interrupted" if snapshot.interrupts else "idle")
    return values_of(snapshot)


async def new_thread(runs: RunManager) -> str:
    return (await runs.store.create_thread("alice", graph="ends")).thread_id


@pytest.mark.parametrize(
    "stream_mode",
    [["values"], ["updates"], ["messages-tuple", "custom"], ["values", "updates", "debug"]],
)
async def test_a_finished_runs_end_carries_the_checkpointed_values(runs: RunManager, stream_mode: list[str]) -> None:
    for case in ("finish", "quiet", "sub"):
        thread_id = await new_thread(runs)
        end, answered = await run_on(runs, thread_id, input={"case": case}, stream_mode=stream_mode)
        assert end.status == "success"
        values = await as_checkpointed(runs, thread_id, end, answered)
        assert "case" in values  # the whole state, not only the graph's output
    thread_id = await new_thread(runs)
    end, answered = await run_on(runs, thread_id, input={"case": "sub"}, stream_mode=stream_mode, stream_subgraphs=True)
    assert (await as_checkpointed(runs, thread_id, end, answered))["log"][-1] == "inner"


async def test_a_paused_run_and_its_resume(runs: RunManager) -> None:
    for case in ("ask", "parallel"):
        thread_id = await new_thread(runs)
        end, answered = await run_on(runs, thread_id, input={"case": case})
        paused = await as_checkpointed(runs, thread_id, end, answered)
        assert paused["__interrupt__"][0]["value"] == {"question": "go on?"}
        # The node beside the paused one finished; the checkpoint keeps its write pending.
        end, answered = await run_on(runs, thread_id, command={"resume": "yes"})
        done = await as_checkpointed(runs, thread_id, end, answered)
        assert done["answer"] == "yes"
        assert "__interrupt__" not in done
        assert sorted(done["log"]) == sorted(["start", "asked", *(["beside"] if case == "parallel" else [])])


async def test_a_run_paused_before_a_node_and_resumed(runs: RunManager) -> None:
    thread_id = await new_thread(runs)
    end, answered = await run_on(runs, thread_id, input={"case": "finish"}, interrupt_before=["last"])
    assert end.status == "success"
    assert (await as_checkpointed(runs, thread_id, end, answered))["log"] == ["start"]
    end, answered = await run_on(runs, thread_id, input=None)
    assert (await as_checkpointed(runs, thread_id, end, answered))["log"] == ["start", "last"]


async def test_a_failed_run_answers_its_error(runs: RunManager) -> None:
    thread_id = await new_thread(runs)
    end, answered = await run_on(runs, thread_id, input={"case": "fail"})
    assert end.status == "error"
    assert answered == {"__error__": {"error": "RunError", "message": "RuntimeError: this node fails"}}
    assert (await as_checkpointed(runs, thread_id, end, answered))["log"] == ["start"]


@pytest.mark.parametrize("durability", [None, "async", "sync"])
async def test_a_stateless_runs_end_carries_its_values(runs: RunManager, durability: str | None) -> None:
    end, answered = await run_on(runs, None, input={"case": "finish"}, durability=durability)
    assert end.status == "success"
    assert end.values == answered == {"case": "finish", "log": ["start", "last"]}
    end, answered = await run_on(runs, None, input={"case": "ask"}, durability=durability)
    assert answered["__interrupt__"][0]["value"] == {"question": "go on?"}


async def test_a_finished_run_reads_its_checkpoint_once_at_its_start(
    runs: RunManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its end takes the values from its own stream: no second read of the thread (the lever of
    issue 15's tenth round: a read of the checkpoint is some 7% of a trivial run's server CPU)."""
    checkpointer = runs.registry.get("ends").graph.checkpointer
    assert isinstance(checkpointer, BaseCheckpointSaver)
    reads: list[str] = []
    read = checkpointer.aget_tuple

    async def counted(config: Any) -> Any:
        reads.append(config["configurable"]["thread_id"])
        return await read(config)

    monkeypatch.setattr(checkpointer, "aget_tuple", counted)
    thread_id = await new_thread(runs)
    end, _ = await run_on(runs, thread_id, input={"case": "finish"})
    assert end.values == {"case": "finish", "log": ["start", "last"]}
    assert reads == [thread_id]
