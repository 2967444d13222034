"""The graph registry: every face lists, describes and runs graphs by name through it.

registry = build_registry(deps, checkpointer, store)
entry = registry.get("assistant")        # NotFound (404) naming the graphs there are
state = entry.spec.validate_input(body)  # InvalidInput (422) naming the first bad field
await entry.graph.ainvoke(state, {"configurable": {"thread_id": ..., "user_id": ...}})
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore

from citadel.agents.deps import AgentDeps
from citadel.errors import NotFound
from citadel.graphs import assistant, rag, workflow
from citadel.graphs.spec import GraphSpec, ServedGraph

SPECS: tuple[GraphSpec, ...] = (assistant.SPEC, rag.SPEC, workflow.SPEC)
DEFAULT_GRAPH = "assistant"


@dataclass(frozen=True)
class RegisteredGraph:
    spec: ServedGraph
    graph: Pregel[Any, Any, Any, Any]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    @cached_property
    def scratch(self) -> Pregel[Any, Any, Any, Any]:
        """The graph on a checkpointer in this process's memory, for a run whose checkpoints nobody
        else reads: a stateless run that checkpoints only as it ends (`exit`) and whose thread is
        deleted then. It reads its final state from there; if its process dies, the run starts over
        from its input (kept in its row) either way."""
        saver = self.graph.checkpointer
        if not isinstance(saver, BaseCheckpointSaver):
            return self.graph
        return self.graph.copy(update={"checkpointer": InMemorySaver(serde=saver.serde)})

    def for_run(self, scratch: bool) -> Pregel[Any, Any, Any, Any]:
        return self.scratch if scratch else self.graph


class GraphRegistry:
    def __init__(self, graphs: list[RegisteredGraph]) -> None:
        self._graphs = {entry.name: entry for entry in graphs}

    def get(self, name: str) -> RegisteredGraph:
        try:
            return self._graphs[name]
        except KeyError:
            raise NotFound(
                f"unknown graph {name!r}; available: {', '.join(self.names())}", param="assistant_id"
            ) from None

    def list(self) -> list[RegisteredGraph]:
        return list(self._graphs.values())

    def names(self) -> builtins.list[str]:
        return list(self._graphs)

    def __contains__(self, name: object) -> bool:
        return name in self._graphs


def build_registry(
    deps: AgentDeps,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    specs: tuple[GraphSpec, ...] = SPECS,
    user_graphs: builtins.list[RegisteredGraph] | None = None,
) -> GraphRegistry:
    """Compile every built-in graph of `specs` with the shared checkpointer (durable threads,
    interrupts) and store (long-term memory); `user_graphs` (a project's, compiled on the same) are
    served beside them."""
    return GraphRegistry(
        [
            *(
                RegisteredGraph(spec, spec.build(deps).compile(checkpointer=checkpointer, store=store, name=spec.name))
                for spec in specs
            ),
            *(user_graphs or []),
        ]
    )
