"""The `assistant` graph: the default multi-agent flow.

START → supervisor → one specialist per turn:
- researcher (retrieve → answer [→ tools → answer]*), answers from the documents with sources;
- analyst (plan → approve? → section* → report), the document-analysis workflow;
- generalist [→ tools → generalist]*, conversation with the user's remembered facts;
- remember, stores a fact the user asked it to remember.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field

from citadel.agents.analyst import AnalysisState, Section, add_analyst
from citadel.agents.deps import AgentDeps
from citadel.agents.generalist import add_generalist
from citadel.agents.remember import MemoryState, remember
from citadel.agents.researcher import ResearchState, Retrieval, add_researcher
from citadel.agents.state import Progress, Source
from citadel.agents.supervisor import RoutingState, Specialist, Supervisor
from citadel.graphs.schemas import ConversationOutput, MessageInput
from citadel.graphs.spec import GraphSpec


class AssistantState(RoutingState, ResearchState, AnalysisState, MemoryState, total=False):
    pass


class AssistantInput(BaseModel):
    messages: list[MessageInput] = Field(min_length=1, description="New messages; the last user message is the turn.")
    collection: str | None = Field(
        default=None,
        description="Collection the researcher searches (else `configurable.collection`, else the default).",
    )
    document: str | None = Field(
        default=None, description="A document for the analyst to analyse (sends the turn to the analyst)."
    )


class AssistantOutput(ConversationOutput):
    specialist: Specialist | None = Field(default=None, description="Who answered the last turn.")
    route_reason: str | None = Field(default=None, description="Why the supervisor chose that specialist.")
    sources: list[Source] = Field(default_factory=list, description="Passages the researcher's answer drew on.")
    retrieval: Retrieval | None = Field(default=None, description="What the researcher searched, and what came of it.")
    memories: list[str] = Field(default_factory=list, description="Facts recalled (or remembered) this turn.")
    sections: list[Section] = Field(default_factory=list, description="The analyst's sections and findings.")
    progress: Progress | None = Field(default=None, description="The analyst's progress through the sections.")
    report: str | None = Field(default=None, description="The analyst's merged report.")


PER_TURN: dict[str, Any] = {"sources": [], "memories": [], "retrieval": None}
"""What a new turn clears, so the state describes the latest answer only."""


def build(deps: AgentDeps) -> StateGraph[Any, Any, Any, Any]:
    graph = StateGraph(AssistantState)
    supervisor = Supervisor(deps)

    async def route(state: RoutingState) -> dict[str, Any]:
        return PER_TURN | await supervisor.node(state)

    graph.add_node("supervisor", route)
    entries = {
        "researcher": add_researcher(graph, deps),
        "analyst": add_analyst(graph, deps),
        "generalist": add_generalist(graph, deps),
        "remember": "remember",
    }
    graph.add_node("remember", remember)
    graph.add_edge("remember", END)
    graph.add_edge(START, "supervisor")
    graph.add_conditional_edges("supervisor", lambda state: entries[state["specialist"]], list(entries.values()))
    return graph


SPEC = GraphSpec(
    name="assistant",
    description=(
        "The default multi-agent assistant: a supervisor routes each turn to a researcher (answers from "
        "your documents with sources), an analyst (section-by-section document analysis), a generalist "
        "(conversation) or remembers a fact for your later threads."
    ),
    input_model=AssistantInput,
    output_model=AssistantOutput,
    build=build,
)
