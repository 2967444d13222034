"""The tool-calling loop a capable backend gets: a scripted chat model (standing in for a
tool-calling Ollama model) calls the tools, the graph runs them and feeds the results back."""

from __future__ import annotations

from dataclasses import replace

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from citadel.agents.deps import AgentDeps
from citadel.core.registry import build_registry
from tests.agents.scripted_model import ScriptedChatModel, tool_call
from tests.graphs.run_inputs import config, user


async def test_the_researcher_searches_again_through_the_tool_and_cites_both(deps: AgentDeps, docs: str) -> None:
    model = ScriptedChatModel(
        responses=[
            tool_call("search_documents", {"query": "grid battery capacity fade", "k": 1}),
            AIMessage("Panels convert about 20% of sunlight [solar-101]; batteries fade with cycles [battery-303]."),
        ]
    )
    registry = build_registry(replace(deps, tool_model=lambda: model), InMemorySaver(), InMemoryStore())
    state = await registry.get("rag").graph.ainvoke(user("How efficient are solar panels?"), config("t1"))

    assert model.bound_tools == ["search_documents", "embed_texts"]
    kinds = [type(m).__name__ for m in state["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    result = state["messages"][2]
    assert isinstance(result, ToolMessage)
    assert result.name == "search_documents"
    assert result.text.startswith("[battery-303] Grid batteries")
    assert [s["id"] for s in result.artifact] == ["battery-303"]
    # The model saw the retrieved passage in its prompt, then the tool's result on its second call.
    assert "[solar-101]" in model.prompts[0][0].text
    assert isinstance(model.prompts[1][-1], ToolMessage)
    assert {"solar-101", "battery-303"} <= {s["id"] for s in state["sources"]}
    assert state["messages"][-1].text.endswith("[battery-303].")


async def test_the_generalist_uses_the_embedding_tool(deps: AgentDeps) -> None:
    model = ScriptedChatModel(
        responses=[tool_call("embed_texts", {"texts": ["hello world"]}), AIMessage("Done: 384 numbers.")]
    )
    registry = build_registry(replace(deps, tool_model=lambda: model), InMemorySaver(), InMemoryStore())
    state = await registry.get("assistant").graph.ainvoke(user("Hi there! How are you doing?"), config("t1"))

    assert state["specialist"] == "generalist"
    result = state["messages"][2]
    assert isinstance(result, ToolMessage)
    assert result.name == "embed_texts"
    assert '"model": "all-minilm", "dims": 384' in result.text
    assert state["messages"][-1].text == "Done: 384 numbers."


async def test_without_a_tool_calling_backend_the_explicit_path_is_used(deps: AgentDeps, docs: str) -> None:
    assert deps.tool_model() is None  # the embedded model cannot call tools
    registry = build_registry(deps, InMemorySaver(), InMemoryStore())
    state = await registry.get("rag").graph.ainvoke(user("How efficient are solar panels?"), config("t1"))
    assert [m.type for m in state["messages"]] == ["human", "ai"]
    assert state["sources"][0]["id"] == "solar-101"
