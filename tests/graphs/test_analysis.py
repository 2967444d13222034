"""The analyst in the assistant graph: sections, per-section routing and progress, and the
approval a long document asks for (interrupt → resume with approve or reject)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

from citadel.agents.deps import AgentDeps
from citadel.core.registry import GraphRegistry, build_registry
from tests.graphs.run_inputs import config, user

DOCUMENT = """# Revenue
Revenue grew 12 percent year over year, driven by subscriptions in Europe.

# Code changes
The login handler now retries `fetch_token()` three times before it raises an error.

# Risks
A pending patent lawsuit and currency swings could cut next year's profit.
"""


@pytest.fixture
def strict_registry(deps: AgentDeps) -> GraphRegistry:
    """Documents of more than two sections ask for approval."""
    settings = deps.settings.model_copy(update={"analyst_approval_sections": 2})
    return build_registry(replace(deps, settings=settings), InMemorySaver(), InMemoryStore())


async def test_a_document_is_analysed_section_by_section_with_progress(registry: GraphRegistry) -> None:
    graph = registry.get("assistant").graph
    progress: list[dict[str, Any]] = []
    async for update in graph.astream(
        {**user("Please analyse this report"), "document": DOCUMENT}, config("t1"), stream_mode="updates"
    ):
        for node, values in update.items():
            if node == "analyst_section":
                progress.append(values["progress"])
    assert progress == [
        {"completed": 1, "total": 3, "current": "section 2: Code changes"},
        {"completed": 2, "total": 3, "current": "section 3: Risks"},
        {"completed": 3, "total": 3, "current": None},
    ]
    state = (await graph.aget_state(config("t1"))).values
    assert state["specialist"] == "analyst"
    assert state["route_reason"] == "a document was given with the input"
    assert state["analysis"] == "done"
    assert state["document"] is None
    assert [s["title"] for s in state["sections"]] == ["Revenue", "Code changes", "Risks"]
    routes = set(services_routes := [s["content_type"] for s in state["sections"]])
    assert routes <= {"code", "analysis", "creative", "chat"}, services_routes
    assert all(s["finding"] and s["backend"] == "embedded" for s in state["sections"])
    report = state["messages"][-1].text
    assert report == state["report"]
    assert report.startswith("# Analysis report (3 sections)")
    assert "## 2. Code changes" in report


async def test_a_pasted_document_goes_to_the_analyst_by_its_request(registry: GraphRegistry) -> None:
    graph = registry.get("assistant").graph
    state = await graph.ainvoke(user(f"Analyse the document below section by section.\n\n{DOCUMENT}"), config("t1"))
    assert state["specialist"] == "analyst"
    assert state["route_reason"].startswith("semantic: analyst")
    assert [s["title"] for s in state["sections"]] == ["Revenue", "Code changes", "Risks"]
    assert state["progress"]["completed"] == 3


async def test_a_long_document_waits_for_approval_then_runs(strict_registry: GraphRegistry) -> None:
    graph = strict_registry.get("assistant").graph
    paused = await graph.ainvoke({**user("Analyse this"), "document": DOCUMENT}, config("t1"))
    (request,) = paused["__interrupt__"]
    assert request.value["type"] == "approval"
    assert request.value["kind"] == "long_document"
    assert request.value["sections"] == 3
    snapshot = await graph.aget_state(config("t1"))
    assert snapshot.next == ("analyst_approve",)
    assert snapshot.values["analysis"] == "planned"
    assert all(s["finding"] is None for s in snapshot.values["sections"])

    done = await graph.ainvoke(Command(resume="approve"), config("t1"))
    assert done["analysis"] == "done"
    assert done["progress"] == {"completed": 3, "total": 3, "current": None}
    assert done["messages"][-1].text.startswith("# Analysis report (3 sections)")


async def test_a_rejected_analysis_says_so_and_calls_no_model(strict_registry: GraphRegistry) -> None:
    graph = strict_registry.get("assistant").graph
    await graph.ainvoke({**user("Analyse this"), "document": DOCUMENT}, config("t1"))
    done = await graph.ainvoke(Command(resume={"approved": False}), config("t1"))
    assert done["analysis"] == "rejected"
    assert done["progress"]["completed"] == 0
    assert all(s["finding"] is None for s in done["sections"])
    assert "did not analyse" in done["messages"][-1].text
    assert (await graph.aget_state(config("t1"))).next == ()
