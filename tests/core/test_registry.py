"""The graph registry: names, descriptions, input validation and published schemas."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from citadel.agents.deps import AgentDeps
from citadel.core.registry import GraphRegistry, build_registry
from citadel.errors import NotFound
from citadel.graphs.errors import InvalidInput


def test_every_graph_is_listed_and_compiled_with_the_shared_persistence(deps: AgentDeps) -> None:
    saver, store = InMemorySaver(), InMemoryStore()
    registry = build_registry(deps, saver, store)
    assert registry.names() == ["assistant", "rag", "workflow"]
    for entry in registry.list():
        assert entry.graph.name == entry.name
        assert entry.graph.checkpointer is saver
        assert entry.graph.store is store
        assert entry.description


def test_an_unknown_graph_is_not_found_and_the_error_lists_the_graphs(registry: GraphRegistry) -> None:
    with pytest.raises(NotFound) as caught:
        registry.get("planner")
    assert caught.value.status == 404
    assert caught.value.message == "unknown graph 'planner'; available: assistant, rag, workflow"


@pytest.mark.parametrize(
    ("graph", "payload", "field"),
    [
        ("assistant", {}, "messages"),
        ("assistant", {"messages": []}, "messages"),
        ("assistant", {"messages": [{"content": "hi"}]}, "messages.0"),
        ("assistant", {"messages": [{"role": "robot", "content": "hi"}]}, "messages.0"),
        ("rag", {"messages": [{"role": "user"}]}, "messages.0.content"),
        ("workflow", {"steps": [{"type": "translate"}]}, "steps.0"),
        ("workflow", {"steps": [{"type": "vector_search", "k": 0}]}, "steps.0.vector_search.k"),
        ("workflow", {"steps": [{"type": "embedding"}]}, "steps.0.embedding"),
        ("workflow", {"steps": [{"type": "llm_query", "prompt": "x", "colour": "red"}]}, "steps.0.llm_query.colour"),
    ],
)
def test_input_that_does_not_fit_names_the_field(
    registry: GraphRegistry, graph: str, payload: object, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        registry.get(graph).spec.validate_input(payload)
    assert caught.value.status == 422
    assert caught.value.param == field
    assert caught.value.message.startswith(f"input does not fit graph {graph!r}: {field}")


def test_valid_input_is_returned_as_the_graph_takes_it(registry: GraphRegistry) -> None:
    assistant = registry.get("assistant").spec
    message = {"role": "user", "content": "hi", "id": "m1"}
    assert assistant.validate_input({"messages": [message]}) == {"messages": [message]}
    workflow = registry.get("workflow").spec
    assert workflow.validate_input({"steps": [{"type": "embedding", "text": "a"}]}) == {
        "steps": [{"type": "embedding", "texts": ["a"]}]
    }


def test_schemas_are_published_with_descriptions(registry: GraphRegistry) -> None:
    spec = registry.get("assistant").spec
    inputs = spec.input_schema()
    assert inputs["required"] == ["messages"]
    assert inputs["properties"]["collection"]["description"].startswith("Collection the researcher searches")
    outputs = spec.output_schema()["properties"]
    assert {"messages", "specialist", "route_reason", "sources", "sections", "progress", "report"} <= set(outputs)
    configurable = spec.config_schema()["properties"]
    assert set(configurable) == {"user_id", "collection"}
    steps = registry.get("workflow").spec.input_schema()["properties"]["steps"]
    assert steps["items"]["discriminator"]["propertyName"] == "type"
