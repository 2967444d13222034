"""The supervisor's routing: semantic first, the LLM only when unsure, the generalist by default."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph

from citadel.agents.deps import AgentDeps
from citadel.agents.supervisor import RoutingState, Supervisor, parse_specialist, routing_text, split_request
from citadel.agents.tags import INTERNAL


@pytest.mark.parametrize(
    ("text", "specialist"),
    [
        ("What does the security handbook in our docs say about guest Wi-Fi?", "researcher"),
        ("Please review the following report and assess each section", "analyst"),
        ("Write a haiku about autumn leaves", "generalist"),
        ("Remember that my cat is called Miso", "remember"),
    ],
)
async def test_clear_requests_are_routed_by_meaning(deps: AgentDeps, text: str, specialist: str) -> None:
    decision = await Supervisor(deps).decide(text)
    assert decision.specialist == specialist
    assert decision.method == "semantic"
    assert decision.reason.startswith(f"semantic: {specialist} (score ")


async def test_an_empty_message_goes_to_the_generalist(deps: AgentDeps) -> None:
    decision = await Supervisor(deps).decide("   ")
    assert (decision.specialist, decision.method) == ("generalist", "default")


async def test_when_unsure_the_llm_picks_between_the_two_best_or_the_generalist_answers(deps: AgentDeps) -> None:
    supervisor = Supervisor(deps, threshold=2.0)  # nothing is ever confident
    graph = StateGraph(RoutingState)
    graph.add_node("supervisor", supervisor.node)
    graph.add_edge(START, "supervisor")
    compiled = graph.compile(checkpointer=InMemorySaver())
    tags: list[list[str]] = []
    config = {"configurable": {"thread_id": "t"}}
    async for _, metadata in compiled.astream(
        {"messages": [{"role": "user", "content": "Remember that my cat is called Miso"}]},
        config,
        stream_mode="messages",
    ):
        tags.append(metadata.get("tags", []))
    state = (await compiled.aget_state(config)).values
    reason = state["route_reason"]
    assert reason.startswith("semantic unsure (best remember")
    if "LLM chose" in reason:
        assert reason.endswith(f"LLM chose {state['specialist']}")
    else:
        assert "names neither" in reason
        assert state["specialist"] == "generalist"
    assert tags, "the LLM decision streams"
    assert all(INTERNAL in t for t in tags), "and is tagged internal, so faces can hide it"


async def test_without_the_llm_an_unsure_decision_is_the_generalist(deps: AgentDeps) -> None:
    decision = await Supervisor(deps, threshold=2.0).decide("Remember that my cat is called Miso", use_llm=False)
    assert (decision.specialist, decision.method) == ("generalist", "default")


async def test_a_document_in_the_input_goes_to_the_analyst(deps: AgentDeps) -> None:
    update = await Supervisor(deps).node(MessagesState(messages=[]) | {"document": "# A\ntext"})  # type: ignore[arg-type]
    assert update == {"specialist": "analyst", "route_reason": "a document was given with the input"}


@pytest.mark.parametrize(
    ("answer", "specialist"),
    [
        ("researcher", "researcher"),
        ("Research.", "researcher"),
        ("The correct answer is: Analysis", "analyst"),
        ("analyze it", "analyst"),
        ("  GENERALIST", "generalist"),
        ("remember: the user asks", "remember"),
        ("I'd say memory", "remember"),
        ("no idea", None),
        ("", None),
    ],
)
def test_llm_answers_are_parsed_leniently(answer: str, specialist: str | None) -> None:
    assert parse_specialist(answer) == specialist


def test_a_request_followed_by_a_document_is_routed_on_the_request() -> None:
    message = "Analyse this report:\n\nRevenue grew.\n\nCosts fell."
    assert split_request(message) == ("Analyse this report:", "Revenue grew.\n\nCosts fell.")
    assert routing_text(message) == "Analyse this report:"
    assert routing_text("One paragraph only") == "One paragraph only"
    long_first = "x" * 500 + "\n\nmore"
    assert split_request(long_first) == (long_first, "")
