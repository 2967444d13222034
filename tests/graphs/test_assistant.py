"""The assistant graph end to end on the embedded defaults: the supervisor's routing, the
researcher's sources, long-term memory across threads, and token streaming. The model is tiny, so
these assert structure, routing and sources, never the prose."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from langchain_core.messages import AIMessageChunk
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from citadel.agents.citations import check_citations
from citadel.agents.deps import AgentDeps
from citadel.agents.tags import INTERNAL
from citadel.core.registry import GraphRegistry, build_registry
from citadel.tools.chat_model import ROUTE_METADATA
from tests.graphs.run_inputs import config, user


async def test_a_question_about_the_documents_is_researched_and_cites_them(registry: GraphRegistry, docs: str) -> None:
    graph = registry.get("assistant").graph
    state = await graph.ainvoke(user("What do our documents say about solar panel efficiency?"), config("t1"))
    assert state["specialist"] == "researcher"
    assert state["route_reason"].startswith("semantic: researcher")
    assert state["retrieval"]["collection"] == "docs"
    assert state["retrieval"]["status"] == "found"
    assert state["sources"][0]["id"] == "solar-101"
    assert {"id", "title", "score", "text"} <= set(state["sources"][0])
    answer = state["messages"][-1]
    assert answer.type == "ai"
    # On the embedded defaults the answer is extractive: the passage's own sentence, no LLM call.
    assert "convert about 20 percent" in answer.text
    assert "[solar-101]" in answer.text
    assert ROUTE_METADATA not in answer.response_metadata


async def test_a_generative_answer_comes_from_the_llm_and_cites_only_what_was_found(deps: AgentDeps, docs: str) -> None:
    settings = deps.settings.model_copy(update={"answer_mode": "generative"})
    graph = build_registry(replace(deps, settings=settings), InMemorySaver(), InMemoryStore()).get("assistant").graph
    state = await graph.ainvoke(user("What do our documents say about solar panel efficiency?"), config("t1"))
    answer = state["messages"][-1]
    assert answer.response_metadata[ROUTE_METADATA]["backend"] == "embedded"
    assert "[solar-101]" in answer.text  # cited by the model, or in the sources line added when it cited none
    found = {source["id"] for source in state["sources"]}
    assert check_citations(answer.text, found, where="test").removed == []


async def test_the_researcher_says_so_when_nothing_is_relevant(registry: GraphRegistry, docs: str) -> None:
    graph = registry.get("assistant").graph
    state = await graph.ainvoke(
        user("What do our documents say about the lasagne recipe for the Christmas party?"), config("t1")
    )
    assert state["specialist"] == "researcher"
    assert state["retrieval"]["status"] == "nothing_relevant"
    assert state["sources"] == []
    assert "found nothing relevant" in state["messages"][-1].text
    assert ROUTE_METADATA not in state["messages"][-1].response_metadata  # no LLM call, nothing invented


async def test_the_researcher_says_so_when_the_collection_does_not_exist(registry: GraphRegistry) -> None:
    graph = registry.get("assistant").graph
    state = await graph.ainvoke(
        user("Search the knowledge base for the onboarding checklist"), config("t1", collection="handbook")
    )
    assert state["specialist"] == "researcher"
    assert state["retrieval"] == {
        "collection": "handbook",
        "query": "Search the knowledge base for the onboarding checklist",
        "status": "no_collection",
        "best_score": None,
    }
    assert "no collection named 'handbook'" in state["messages"][-1].text


async def test_conversation_goes_to_the_generalist_and_a_new_turn_clears_the_last_sources(
    registry: GraphRegistry, docs: str
) -> None:
    graph = registry.get("assistant").graph
    first = await graph.ainvoke(user("According to the docs, how do wind turbines make electricity?"), config("t1"))
    assert first["specialist"] == "researcher"
    assert first["sources"]
    second = await graph.ainvoke(user("Thanks! How are you today?"), config("t1"))
    assert second["specialist"] == "generalist"
    assert second["sources"] == []
    assert [m.type for m in second["messages"]] == ["human", "ai", "human", "ai"]
    assert second["messages"][-1].text.strip()


async def test_a_fact_is_remembered_across_threads_of_the_same_user_only(registry: GraphRegistry) -> None:
    graph = registry.get("assistant").graph
    told = await graph.ainvoke(
        user("Please remember that my favourite colour is green"), config("thread-a", user_id="ada")
    )
    assert told["specialist"] == "remember"
    assert told["memories"] == ["my favourite colour is green"]
    assert "your favourite colour is green" in told["messages"][-1].text

    later = await graph.ainvoke(user("What is my favourite colour?"), config("thread-b", user_id="ada"))
    assert later["specialist"] == "generalist"
    assert later["memories"] == ["my favourite colour is green"]
    assert [m.type for m in later["messages"]] == ["human", "ai"]  # a new thread: only the store carries it

    stranger = await graph.ainvoke(user("What is my favourite colour?"), config("thread-c", user_id="bob"))
    assert stranger["specialist"] == "generalist"
    assert stranger["memories"] == []


async def test_tokens_stream_with_their_route_and_internal_calls_are_tagged(registry: GraphRegistry, docs: str) -> None:
    graph = registry.get("assistant").graph
    chunks: list[tuple[Any, dict[str, Any]]] = []
    async for message, metadata in graph.astream(
        {**user("Analyse this text"), "document": "# Costs\nThe budget is tight.\n\n# Plans\nWe hire two people."},
        config("t1"),
        stream_mode="messages",
    ):
        chunks.append((message, metadata))
    sections = [(m, meta) for m, meta in chunks if meta["langgraph_node"] == "analyst_section"]
    assert sections, "the per-section LLM calls stream their tokens"
    assert all(isinstance(m, AIMessageChunk) for m, _ in sections)
    assert all(INTERNAL in meta.get("tags", []) for _, meta in sections)
    assert any(ROUTE_METADATA in m.response_metadata for m, _ in sections)
    report = [m for m, meta in chunks if meta["langgraph_node"] == "analyst_report"]
    assert len(report) == 1
    assert report[0].text.startswith("# Analysis report")

    answer: list[tuple[Any, dict[str, Any]]] = []
    async for message, metadata in graph.astream(
        user("What is the capital of France?"), config("t2"), stream_mode="messages"
    ):
        if metadata["langgraph_node"] == "generalist":
            answer.append((message, metadata))
    assert len(answer) > 1, "the answer streams token by token"
    assert not any(INTERNAL in meta.get("tags", []) for _, meta in answer)
    first = answer[0][0]
    assert first.response_metadata[ROUTE_METADATA]["backend"] == "embedded"

    # The researcher's answer comes whole, once its citations are checked: nothing unchecked streams.
    researched: list[tuple[Any, dict[str, Any]]] = []
    async for message, metadata in graph.astream(
        user("What do our documents say about grid batteries?"), config("t3"), stream_mode="messages"
    ):
        if metadata["langgraph_node"] == "researcher_answer":
            researched.append((message, metadata))
    assert len(researched) == 1
    assert "[battery-303]" in researched[0][0].text
