"""The `rag` graph: the researcher alone, for clients that want answers from documents only.

START → researcher_retrieve → researcher_answer [→ tools → researcher_answer]* → END
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import START, StateGraph
from pydantic import BaseModel, Field

from citadel.agents.deps import AgentDeps
from citadel.agents.researcher import ResearchState, Retrieval, add_researcher
from citadel.agents.state import Source
from citadel.graphs.schemas import ConversationOutput, MessageInput
from citadel.graphs.spec import GraphSpec


class RagInput(BaseModel):
    messages: list[MessageInput] = Field(
        min_length=1, description="New messages; the last user message is the question."
    )
    collection: str | None = Field(
        default=None, description="Collection to search (else `configurable.collection`, else the default)."
    )


class RagOutput(ConversationOutput):
    sources: list[Source] = Field(default_factory=list, description="Passages the answer drew on, best first.")
    retrieval: Retrieval | None = Field(default=None, description="What was searched, and what came of it.")


def build(deps: AgentDeps) -> StateGraph[Any, Any, Any, Any]:
    graph = StateGraph(ResearchState)
    graph.add_edge(START, add_researcher(graph, deps))
    return graph


SPEC = GraphSpec(
    name="rag",
    description=(
        "Retrieval-augmented answers: searches a collection for the question and answers from the passages "
        "found, citing their ids; says so when nothing relevant was found."
    ),
    input_model=RagInput,
    output_model=RagOutput,
    build=build,
)
