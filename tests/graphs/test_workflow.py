"""The workflow graph: steps in order with their outputs chained, progress after each step, a step
that waits for approval, and a step that fails."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.types import Command

from citadel.core.registry import GraphRegistry
from citadel.graphs.errors import InvalidInput
from tests.graphs.run_inputs import config

STEPS: list[dict[str, Any]] = [
    {"type": "embedding", "text": "How much sunlight do solar panels convert?"},
    {"type": "vector_search", "k": 2},
    {"type": "llm_query", "prompt": "Summarise in one sentence:\n{prev}", "max_tokens": 16},
]


async def test_embedding_then_search_then_llm_query_chain_their_outputs(registry: GraphRegistry, docs: str) -> None:
    graph = registry.get("workflow").graph
    progress = []
    async for update in graph.astream({"steps": STEPS}, config("w1"), stream_mode="updates"):
        for values in update.values():
            if values and "progress" in values:
                progress.append(values["progress"])
    assert progress == [
        {"completed": 0, "total": 3, "current": "step 0: embedding"},
        {"completed": 1, "total": 3, "current": "step 1: vector_search"},
        {"completed": 2, "total": 3, "current": "step 2: llm_query"},
        {"completed": 3, "total": 3, "current": None},
    ]
    state = (await graph.aget_state(config("w1"))).values
    assert state["status"] == "done"
    embedded, searched, answered = state["results"]
    assert embedded["output"]["model"] == "all-minilm"
    assert embedded["output"]["dims"] == len(embedded["output"]["vectors"][0]) == 384
    assert searched["output"]["collection"] == "docs"
    assert searched["output"]["query"] is None  # searched by the embedding step's vector
    assert searched["output"]["hits"][0]["id"] == "solar-101"
    assert answered["output"]["prompt"].startswith("Summarise in one sentence:\n[solar-101] How solar panels work:")
    assert answered["output"]["backend"] == "embedded"
    assert state["messages"][-1].text == answered["text"]


async def test_placeholders_name_earlier_steps(registry: GraphRegistry, docs: str) -> None:
    steps = [
        {"type": "llm_query", "prompt": "Say: wind", "max_tokens": 4, "temperature": 0},
        {"type": "vector_search", "query": "wind turbines {step_0}", "k": 1},
        {"type": "embedding", "texts": ["{step_1}", "{prev}"]},
    ]
    state = await registry.get("workflow").graph.ainvoke({"steps": steps}, config("w1"))
    assert state["status"] == "done"
    first = state["results"][0]["text"]
    assert state["results"][1]["output"]["query"] == f"wind turbines {first}"
    assert state["results"][1]["output"]["hits"][0]["id"] == "wind-202"
    assert state["results"][2]["output"]["count"] == 2


async def test_a_step_marked_approve_waits_and_runs_once_approved(registry: GraphRegistry, docs: str) -> None:
    graph = registry.get("workflow").graph
    steps = [STEPS[0], {**STEPS[1], "approve": True}]
    paused = await graph.ainvoke({"steps": steps}, config("w1"))
    (request,) = paused["__interrupt__"]
    assert request.value["kind"] == "workflow_step"
    assert request.value["step"] == 1
    assert paused["progress"] == {"completed": 1, "total": 2, "current": "step 1: vector_search"}
    assert len(paused["results"]) == 1

    done = await graph.ainvoke(Command(resume=True), config("w1"))
    assert done["status"] == "done"
    assert done["results"][1]["output"]["hits"][0]["id"] == "solar-101"


async def test_a_rejected_step_stops_the_workflow(registry: GraphRegistry, docs: str) -> None:
    graph = registry.get("workflow").graph
    steps = [STEPS[0], {**STEPS[1], "approve": True}, STEPS[2]]
    await graph.ainvoke({"steps": steps}, config("w1"))
    done = await graph.ainvoke(Command(resume="reject"), config("w1"))
    assert done["status"] == "rejected"
    assert len(done["results"]) == 1
    assert done["progress"] == {"completed": 1, "total": 3, "current": None}


async def test_a_failing_step_stops_the_workflow_and_says_why(registry: GraphRegistry) -> None:
    steps = [{"type": "vector_search", "query": "anything", "collection": "missing"}, STEPS[2]]
    state = await registry.get("workflow").graph.ainvoke({"steps": steps}, config("w1"))
    assert state["status"] == "failed"
    assert state["error"] == {"step": 0, "code": "not_found", "message": "collection 'missing' does not exist"}
    assert state["results"] == []


async def test_a_reference_to_a_later_step_fails_that_step(registry: GraphRegistry) -> None:
    steps = [{"type": "embedding", "text": "{step_1}"}, {"type": "embedding", "text": "x"}]
    state = await registry.get("workflow").graph.ainvoke({"steps": steps}, config("w1"))
    assert state["status"] == "failed"
    assert state["error"]["step"] == 0
    assert "only steps" in state["error"]["message"]


async def test_steps_that_do_not_fit_the_schema_are_refused(registry: GraphRegistry) -> None:
    with pytest.raises(InvalidInput) as caught:
        await registry.get("workflow").graph.ainvoke({"steps": [{"type": "translate"}]}, config("w1"))
    assert caught.value.status == 422
    assert caught.value.param == "steps.0"
