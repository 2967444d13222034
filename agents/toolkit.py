"""The tools a tool-calling model may use in the specialists' loops, and the loop's wiring.

They wrap the same functions the explicit nodes call (vector search through `citadel.agents.retrieval`,
the embedding service), so a capable backend's follow-up searches behave like the retrieve node.
The embedded model cannot call tools; these are used only when `AgentDeps.tool_model()` returns a
model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from langchain_core.messages import AnyMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from citadel.agents.deps import AgentDeps
from citadel.agents.history import current_turn
from citadel.agents.retrieval import collection_for, retrieve
from citadel.agents.state import Source

MAX_K = 10


def make_tools(deps: AgentDeps) -> list[BaseTool]:
    @tool(response_format="content_and_artifact")
    async def search_documents(
        query: str, config: RunnableConfig, collection: str | None = None, k: int = 4
    ) -> tuple[str, list[Source]]:
        """Search the user's documents for passages relevant to `query`. Returns each passage with
        its id (cite it as [id]), title and similarity score. `collection` defaults to the run's."""
        name = collection or collection_for({}, config, deps)
        found = await retrieve(deps, name, query, k=max(1, min(k, MAX_K)))
        if found.status == "no_collection":
            return f"There is no collection named {name!r}.", []
        if found.status == "nothing_relevant":
            return f"Nothing relevant to {query!r} in {name!r}.", []
        lines = [f"[{s['id']}] {s['title']} (score {s['score']:.2f}): {found.passages[s['id']]}" for s in found.sources]
        return "\n\n".join(lines), found.sources

    @tool
    async def embed_texts(texts: list[str], model: str | None = None) -> str:
        """Embed texts with an embedding model (default: the configured one). Returns the model, the
        vector size and the vectors (rounded), as JSON."""
        embedded = await deps.embeddings.embed(texts, model)
        vectors = [[round(float(x), 4) for x in row] for row in embedded.vectors]
        return json.dumps({"model": embedded.model, "dims": len(vectors[0]), "vectors": vectors})

    return [search_documents, embed_texts]


def tool_sources(messages: Sequence[AnyMessage]) -> list[Source]:
    """The passages the current turn's tool calls found (from their results' artifacts)."""
    found: list[Source] = []
    for message in current_turn(messages):
        if isinstance(message, ToolMessage) and isinstance(message.artifact, list):
            found += [cast(Source, s) for s in message.artifact if isinstance(s, dict) and "id" in s]
    return found


def merge_sources(*groups: Sequence[Source]) -> list[Source]:
    """Sources without repeats (by id), the best score kept, best first."""
    best: dict[str, Source] = {}
    for group in groups:
        for source in group:
            if source["id"] not in best or source["score"] > best[source["id"]]["score"]:
                best[source["id"]] = source
    return sorted(best.values(), key=lambda s: s["score"], reverse=True)


def frontend_tools(config: RunnableConfig | None) -> list[dict[str, Any]]:
    """Tools a client offers to run itself (an AG-UI page's: `configurable.frontend_tools`, each
    `{name, description, parameters}`), as function specs `bind_tools` takes. A call to one ends the
    turn: the client runs it and sends its result with the next turn."""
    offered = ((config or {}).get("configurable") or {}).get("frontend_tools") or []
    return [
        {
            "type": "function",
            "function": {
                "name": tool["name"],
                "description": tool.get("description") or "",
                "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
            },
        }
        for tool in offered
        if isinstance(tool, dict) and tool.get("name")
    ]


def add_tool_loop(graph: StateGraph[Any, Any, Any, Any], agent: str, tools_node: str, tools: list[BaseTool]) -> None:
    """`agent` → `tools_node` (LangGraph's ToolNode) while its last message calls tools, then back to
    `agent`; END after an answer without tool calls, or one calling a client's (frontend) tool."""
    backend = {tool.name for tool in tools}

    def route(state: Any) -> str:
        if tools_condition(state) != "tools":
            return END
        calls = getattr(state["messages"][-1], "tool_calls", None) or []
        return "tools" if all(call["name"] in backend for call in calls) else END

    graph.add_node(tools_node, ToolNode(tools))
    graph.add_conditional_edges(agent, route, {"tools": tools_node, END: END})
    graph.add_edge(tools_node, agent)
