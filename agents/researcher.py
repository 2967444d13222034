"""The researcher: answers from the user's documents, citing the passages it used.

Two nodes, so that retrieval never depends on the model calling a tool:
- `researcher_retrieve` searches the run's collection for the question (explicit, one search);
- `researcher_answer` answers from the passages. With nothing relevant it says so without calling
  a model. Otherwise, by `CITADEL_ANSWER_MODE`: extractive (the passages' sentences that best match
  the question, each with its id; the default on the embedded model, which invents sources) or
  generative (the LLM writes it, asked to cite passages as `[id]`; a sources line is added when it
  cites none).
Every citation in the answer is checked against the passages retrieved (`citations.py`): a made-up
id is removed before the answer leaves the node. The generative model's tokens are therefore not
streamed to the faces (its call is tagged internal); the checked answer is sent whole.
When `AgentDeps.tool_model()` gives a tool-calling model, the answer node may also search again
(`search_documents`) in a tool loop before it answers.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph
from typing_extensions import TypedDict

from citadel.agents.citations import check_citations
from citadel.agents.deps import AgentDeps
from citadel.agents.extractive import extractive_answer
from citadel.agents.history import current_turn, last_human_text
from citadel.agents.retrieval import collection_for, retrieve
from citadel.agents.state import ConversationState, Source
from citadel.agents.tags import INTERNAL
from citadel.agents.toolkit import add_tool_loop, frontend_tools, make_tools, merge_sources, tool_sources

PASSAGE_CHARS = 1200
K = 4
PROMPT = (
    "You are a careful research assistant. Answer the user's question using only the passages "
    "below. Cite each passage you use by its id in square brackets, like [{example}]. If the "
    "passages do not contain the answer, say that they do not.\n\nPassages:\n{passages}"
)


class Retrieval(TypedDict):
    collection: str
    query: str
    status: Literal["found", "nothing_relevant", "no_collection"]
    best_score: float | None


class ResearchState(ConversationState, total=False):
    collection: str | None
    """The collection to search (else `configurable.collection`, else the default)."""
    sources: list[Source]
    retrieval: Retrieval
    passages: dict[str, str]


def nothing_found(retrieval: Retrieval) -> str:
    if retrieval["status"] == "no_collection":
        return (
            f"I could not look this up: there is no collection named {retrieval['collection']!r}. "
            "Ingest documents into it first, or choose another collection."
        )
    return (
        f"I found nothing relevant to your question in the collection {retrieval['collection']!r}, "
        "so I cannot answer it from the documents."
    )


def with_citations(answer: AIMessage, sources: list[Source]) -> AIMessage:
    """The answer, with a sources line added when it cites none of the passages by id."""
    text = answer.text
    if not sources or any(f"[{s['id']}]" in text for s in sources):
        return answer
    listed = "; ".join(f"[{s['id']}] {s['title']}" for s in sources)
    return answer.model_copy(update={"content": f"{text.rstrip()}\n\nSources: {listed}"})


def answer_mode(deps: AgentDeps) -> Literal["extractive", "generative"]:
    """`CITADEL_ANSWER_MODE`, with `auto` resolved: generative when a capable backend is there (an
    Ollama server, or a tool-calling model), else extractive."""
    mode = deps.settings.answer_mode
    if mode == "auto":
        return "generative" if deps.settings.llm_servers or deps.tool_model() is not None else "extractive"
    return mode


def checked(reply: AIMessage, sources: list[Source]) -> AIMessage:
    """The reply with citations of ids outside `sources` removed, under a new id (the faces were not
    streamed this text; a new id has them show it whole)."""
    text = check_citations(reply.text, {s["id"] for s in sources}, where="researcher").text
    return reply.model_copy(update={"content": text, "id": str(uuid.uuid4())})


def add_researcher(graph: StateGraph[Any, Any, Any, Any], deps: AgentDeps) -> str:
    """Add the researcher's nodes to `graph`; returns its entry node. Its turn ends at END."""
    tools = make_tools(deps)

    async def researcher_retrieve(state: ResearchState, config: RunnableConfig) -> dict[str, Any]:
        query = last_human_text(state)
        found = await retrieve(deps, collection_for(state, config, deps), query, k=K)
        retrieval = Retrieval(
            collection=found.collection, query=query, status=found.status, best_score=found.best_score
        )
        return {"retrieval": retrieval, "sources": found.sources, "passages": found.passages}

    async def researcher_answer(state: ResearchState, config: RunnableConfig) -> dict[str, Any]:
        retrieval = state["retrieval"]
        sources = merge_sources(state.get("sources", []), tool_sources(state["messages"]))
        if not sources:
            return {"messages": [AIMessage(nothing_found(retrieval))], "sources": []}
        passages = state.get("passages", {})
        if answer_mode(deps) == "extractive":
            text = await extractive_answer(deps.embeddings, retrieval["query"], sources, passages)
            return {"messages": [checked(AIMessage(text), sources)], "sources": sources}
        listed = "\n\n".join(
            f"[{s['id']}] {s['title']}: {passages.get(s['id'], s['text'])[:PASSAGE_CHARS]}" for s in sources
        )
        prompt: list[BaseMessage] = [SystemMessage(PROMPT.format(example=sources[0]["id"], passages=listed))]
        prompt += current_turn(state["messages"])
        tool_model = deps.tool_model()
        if tool_model is not None:
            model = tool_model.bind_tools([*tools, *frontend_tools(config)]).with_config(tags=[INTERNAL])
            reply = await model.ainvoke(prompt)
        else:
            reply = await deps.chat().with_config(tags=[INTERNAL]).ainvoke(prompt)
        reply = checked(reply, sources)
        if not reply.tool_calls:
            reply = with_citations(reply, sources)
        return {"messages": [reply], "sources": sources}

    graph.add_node("researcher_retrieve", researcher_retrieve)
    graph.add_node("researcher_answer", researcher_answer)
    graph.add_edge("researcher_retrieve", "researcher_answer")
    add_tool_loop(graph, "researcher_answer", "researcher_tools", tools)
    return "researcher_retrieve"
