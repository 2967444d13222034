"""A graph of slow nodes, for the tests of run execution (TEST ONLY: served by test processes, never by
Citadel itself). Four nodes, `a` to `d`, each waiting `seconds` (without blocking the event loop)
and then adding its name to `done`: a run's writes are applied once exactly when `done` ends as
`["a", "b", "c", "d"]`. It searches nothing and calls no model (no Qdrant server can run here, and
the embedded LLM would make the timings depend on the machine's load)."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from citadel.agents.deps import AgentDeps
from citadel.graphs.spec import GraphSpec

NODES = ("a", "b", "c", "d")


class SlowState(TypedDict, total=False):
    seconds: float
    done: Annotated[list[str], operator.add]


class SlowInput(BaseModel):
    seconds: float = Field(default=1.0, ge=0, le=60, description="How long each node takes.")


class SlowOutput(BaseModel):
    done: list[str] = Field(default_factory=list)


def _node(name: str) -> Any:
    async def run(state: SlowState) -> dict[str, Any]:
        await asyncio.sleep(state.get("seconds", 1.0))
        return {"done": [name]}

    return run


def build(_: AgentDeps) -> StateGraph[Any, Any, Any, Any]:
    graph: StateGraph[Any, Any, Any, Any] = StateGraph(SlowState)
    previous = START
    for name in NODES:
        graph.add_node(name, _node(name))
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, END)
    return graph


SLOW = GraphSpec(
    name="slow_steps",
    description="Test only: four nodes that each wait `seconds`.",
    input_model=SlowInput,
    output_model=SlowOutput,
    build=build,
)
