"""A registered graph as ag-ui-langgraph sees it, with its runs going through Citadel's RunManager.

ag-ui-langgraph drives `graph.astream_events(...)` itself. Handing it the compiled graph would run
the graph beside the RunManager, around the rules every face shares (thread ownership, one run per
thread, the run's durable row and lease, the thread's status). `RunGraph` stands in for the graph:
reads (`aget_state`, history, schemas) go to the compiled graph on the shared checkpointer, and
`astream_events` starts a run through `RunManager` in its `events` stream mode and yields the run's
events, so an AG-UI run is an ordinary Citadel run: listed under `/threads/{id}/runs`, cancellable
there, resumed after a crash, and refused (409) while another run holds the thread.

The RunManager publishes events as plain JSON (what its SSE clients get); the messages ag-ui-langgraph
reads as objects (streamed chunks, model and tool outputs, node updates) are turned back into
LangChain messages here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    ToolMessageChunk,
)
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from citadel.core.registry import RegisteredGraph
from citadel.core.runs import RunManager, RunRequest
from citadel.errors import CitadelError
from citadel.memory.app_store import Run

_MESSAGE_TYPES: dict[str, type[BaseMessage]] = {
    "ai": AIMessage,
    "AIMessageChunk": AIMessageChunk,
    "human": HumanMessage,
    "system": SystemMessage,
    "tool": ToolMessage,
    "ToolMessageChunk": ToolMessageChunk,
}
_MESSAGE_FIELDS = ("type", "content", "id", "name", "tool_call_id", "tool_calls")


class GraphRunFailed(CitadelError):
    """The graph raised while it ran; the run is recorded as failed, the thread stays usable."""

    code = "graph_error"


def revive_message(value: Any) -> Any:
    if isinstance(value, Mapping) and "content" in value and value.get("type") in _MESSAGE_TYPES:
        return _MESSAGE_TYPES[value["type"]].model_validate(dict(value))
    return value


def _revive_update(value: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list):
        return {**value, "messages": [revive_message(m) for m in value["messages"]]}
    return value


def revive_event(event: dict[str, Any]) -> dict[str, Any]:
    """An `astream_events` (v2) event from its JSON form, with its messages as LangChain objects."""
    data = event.get("data")
    if not isinstance(data, dict):
        return event
    kind = event.get("event")
    if kind == "on_chat_model_stream" and "chunk" in data:
        data["chunk"] = revive_message(data["chunk"])
    elif kind in ("on_chat_model_end", "on_tool_end") and "output" in data:
        data["output"] = revive_message(data["output"])
    elif kind == "on_chain_end" and "output" in data:
        data["output"] = _revive_update(data["output"])
    elif kind == "on_chain_stream" and "chunk" in data:
        data["chunk"] = _revive_update(data["chunk"])
    return event


def message_input(message: BaseMessage) -> dict[str, Any]:
    """A LangChain message as a graph's input takes it (the thread/run API's message shape)."""
    dumped = message.model_dump(include=set(_MESSAGE_FIELDS), exclude_none=True)
    if not dumped.get("tool_calls"):
        dumped.pop("tool_calls", None)
    dumped["type"] = message.type
    return dumped


class RunGraph:
    """What ag-ui-langgraph's `LangGraphAgent` uses of a compiled graph, for one request."""

    def __init__(
        self,
        entry: RegisteredGraph,
        runs: RunManager,
        owner: str,
        *,
        configurable: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        snapshot: Any = None,
    ) -> None:
        self._entry = entry
        self._graph = entry.graph
        self._runs = runs
        self._owner = owner
        self._configurable = configurable or {}
        self._metadata = metadata or {}
        self.nodes = entry.graph.nodes
        self.context_schema = None
        self._snapshot = snapshot
        """The thread's state as the request read it; the agent's first read gets it, not a second read."""
        self.run: Run | None = None
        """The Citadel run once accepted."""
        self.finished = False

    # --- reads: the compiled graph on the shared checkpointer -----------------------------------
    async def aget_state(self, config: RunnableConfig, **kwargs: Any) -> Any:
        prefetched, self._snapshot = self._snapshot, None
        if prefetched is not None and not kwargs and "checkpoint_id" not in (config.get("configurable") or {}):
            return prefetched
        return await self._graph.aget_state(config, **kwargs)

    async def aupdate_state(self, config: RunnableConfig, values: Any, as_node: str | None = None) -> Any:
        return await self._graph.aupdate_state(config, values, as_node=as_node)

    def aget_state_history(self, config: RunnableConfig, **kwargs: Any) -> AsyncIterator[Any]:
        return self._graph.aget_state_history(config, **kwargs)

    def get_input_jsonschema(self, config: RunnableConfig | None = None) -> dict[str, Any]:
        return self._entry.spec.input_schema()

    def get_output_jsonschema(self, config: RunnableConfig | None = None) -> dict[str, Any]:
        return self._entry.spec.output_schema()

    def get_config_jsonschema(self) -> dict[str, Any]:
        return self._entry.spec.config_schema()

    # --- runs: through the RunManager -------------------------------------------------------------
    def request(self, input: Any, config: RunnableConfig | None) -> RunRequest:
        """The Citadel run for what ag-ui-langgraph would have streamed."""
        configurable = dict((config or {}).get("configurable") or {})
        request = RunRequest(
            graph=self._entry.name,
            owner=self._owner,
            thread_id=str(configurable["thread_id"]),
            stream_mode=["events"],
            if_not_exists="create",
            config={"configurable": dict(self._configurable)},
            metadata={"source": "ag-ui", **self._metadata},
            checkpoint_id=configurable.get("checkpoint_id"),
        )
        if isinstance(input, Command):
            request.command = {"resume": input.resume}
            return request
        fields = self._entry.spec.input_model.model_fields
        graph_input: dict[str, Any] = {}
        for key, value in (input or {}).items():
            if key == "messages":
                graph_input[key] = [message_input(m) if isinstance(m, BaseMessage) else m for m in value]
            elif key in fields:
                graph_input[key] = value
        request.input = graph_input
        return request

    async def astream_events(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        version: str = "v2",
        subgraphs: bool = False,
        context: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        run, _ = await self._runs.create(self.request(input, config))
        self.run = run
        await self._runs.launch(run)
        failure: Any = None
        try:
            # The stream ends once the run is recorded as over (the thread is free again), so the
            # client's RUN_FINISHED or RUN_ERROR comes when it may start the next run.
            async for _, name, data in self._runs.stream(run):
                if name == "events":
                    yield revive_event(data)
                elif name == "error":
                    failure = data
            self.finished = True
        finally:
            if not self.finished:  # the client went away (or the stream broke): stop the run
                await asyncio.shield(self._runs.cancel(run))
        if failure is not None:
            message = failure.get("message") if isinstance(failure, Mapping) else failure
            raise GraphRunFailed(f"graph {self._entry.name!r} failed: {message}")
