"""The rag graph: the researcher alone, over the collection the run names."""

from __future__ import annotations

from citadel.agents.citations import check_citations
from citadel.agents.extractive import extractive_answer
from citadel.agents.state import Source
from citadel.core.registry import GraphRegistry
from citadel.runtime.services import Services
from citadel.tools.vector_store import Document
from tests.graphs.run_inputs import config, user


async def test_rag_answers_from_the_collection_the_config_names(registry: GraphRegistry, services: Services) -> None:
    await services.vectors.create_collection("recipes")
    await services.vectors.upsert(
        "recipes",
        [
            Document("pancakes", "Whisk flour, milk and eggs; fry thin pancakes in butter.", {"title": "Pancakes"}),
            Document("soup", "Simmer tomatoes with garlic and basil for a quick soup.", {"title": "Tomato soup"}),
        ],
    )
    graph = registry.get("rag").graph
    state = await graph.ainvoke(user("How do I make pancakes?"), config("t1", collection="recipes"))
    assert state["retrieval"]["collection"] == "recipes"
    assert state["sources"][0]["id"] == "pancakes"
    assert state["sources"][0]["title"] == "Pancakes"
    assert "[pancakes]" in state["messages"][-1].text
    assert "specialist" not in state


async def test_the_input_collection_wins_over_the_config(registry: GraphRegistry, docs: str) -> None:
    graph = registry.get("rag").graph
    state = await graph.ainvoke(
        {**user("How do wind turbines work?"), "collection": "docs"}, config("t1", collection="elsewhere")
    )
    assert state["retrieval"]["collection"] == "docs"
    assert state["sources"][0]["id"] == "wind-202"


async def test_rag_says_so_when_nothing_is_relevant(registry: GraphRegistry, docs: str) -> None:
    graph = registry.get("rag").graph
    state = await graph.ainvoke(user("Who won the 1998 football world cup?"), config("t1"))
    assert state["retrieval"]["status"] == "nothing_relevant"
    assert state["retrieval"]["best_score"] is not None
    assert state["sources"] == []
    assert "found nothing relevant" in state["messages"][-1].text


async def test_the_embedded_answer_quotes_retrieved_sentences_with_their_ids(
    registry: GraphRegistry, docs: str
) -> None:
    state = await registry.get("rag").graph.ainvoke(user("How efficient are solar panels?"), config("t1"))
    answer = state["messages"][-1].text
    assert "convert about 20 percent" in answer
    assert "[solar-101]" in answer
    assert check_citations(answer, {s["id"] for s in state["sources"]}, where="test").removed == []


async def test_brackets_quoted_from_a_passage_are_not_taken_for_citations(services: Services) -> None:
    text = "Uptake of [3H]thymidine rose in treated cells [12]. Nothing else changed."
    source = Source(id="paper-1", title="Paper", score=0.9, text=text)
    answer = await extractive_answer(services.embeddings, "thymidine uptake", [source], {"paper-1": text})
    assert "(3H)thymidine" in answer
    assert check_citations(answer, {"paper-1"}, where="test").removed == []
