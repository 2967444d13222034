"""One Citadel graph as an AG-UI agent: CopilotKit's `LangGraphAGUIAgent` (ag-ui-langgraph underneath)
translating the graph's events, with what Citadel adds to it:

- its runs go through the RunManager (`RunGraph`), so the REST API's rules hold;
- LLM calls tagged `citadel:internal` (the supervisor's decision, the analyst's per-section calls)
  never reach the chat; the routing decision of a visible answer is sent as a CUSTOM
  `citadel_llm_route` event;
- backend tools run as graph nodes become tool-call cards (`ui_state.ToolCard`) when the node ends;
- messages a node returns without streaming them (a "nothing relevant found" answer, a merged
  report, a model that does not stream) are sent when the node ends, and text a node appends to a
  streamed answer (the researcher's sources line) is sent as the message's last delta, before its
  TEXT_MESSAGE_END;
- the state is the page's view of it (`ui_state`), and a MESSAGES_SNAPSHOT is sent only when the
  client's copy of the conversation would otherwise differ from the thread's;
- a request with nothing new runs nothing and restores the thread (`plan.RunPlan`): its state, its
  messages with the latest turn's cards, and its pending interrupt.
RAW events are off unless the client asks (`forwardedProps.emitRawEvents: true`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from typing import Any

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    EventType,
    MessagesSnapshotEvent,
    RunAgentInput,
    RunFinishedEvent,
    RunStartedEvent,
    StateSnapshotEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallStartEvent,
)
from ag_ui_langgraph.utils import langchain_messages_to_agui
from copilotkit import LangGraphAGUIAgent
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig

from citadel.agents.tags import INTERNAL
from citadel.graphs.spec import ServedGraph
from citadel.tools.chat_model import ROUTE_METADATA
from citadel.ui_bridge.plan import CONVERSATION_ROLES, RunPlan, conversation, forwarded
from citadel.ui_bridge.run_graph import RunGraph
from citadel.ui_bridge.ui_state import ToolCard, node_cards, state_cards, ui_keys, ui_state

CHAT_EVENTS = {"on_chat_model_start", "on_chat_model_stream", "on_chat_model_end"}
FLUSH_BEFORE = {
    EventType.TEXT_MESSAGE_START,
    EventType.TOOL_CALL_START,
    EventType.STEP_STARTED,
    EventType.STEP_FINISHED,
    EventType.MESSAGES_SNAPSHOT,
    EventType.RUN_FINISHED,
    EventType.RUN_ERROR,
}
"""Events before which an answer held open (its END deferred to its node's end) is closed."""
LLM_ROUTE_EVENT = "citadel_llm_route"
DROPPED_PROPS = ("node_name", "nodeName")
"""Forwarded props that would make ag-ui-langgraph write state outside a run (its `continue` mode)."""


def _tags(event: Mapping[str, Any]) -> list[str]:
    return list(event.get("tags") or [])


class CitadelAGUIAgent(LangGraphAGUIAgent):
    def __init__(
        self,
        *,
        name: str,
        graph: Any,
        description: str | None = None,
        config: RunnableConfig | dict[str, Any] | None = None,
        spec: ServedGraph,
        plan: RunPlan,
        thread_values: Mapping[str, Any] | None = None,
        emit_raw: bool = False,
    ) -> None:
        super().__init__(name=name, graph=graph, description=description, config=config)
        self.spec = spec
        self.plan = plan
        self.thread_values = thread_values or {}
        self.emit_raw_events = emit_raw
        # Interrupts end the run with AG-UI's structured outcome (what CopilotKit's useInterrupt
        # reads), not the legacy `on_interrupt` custom event beside it.
        self.enable_legacy_on_interrupt_event = False
        self.emit_interrupt_outcome = True
        self._client_ids: set[str] = set()
        self._known_ids: set[str] = set()
        """Ids of the messages this run sent the client (texts, tool-call parents, tool results)."""
        self._texts: dict[str, str] = {}
        self._text_nodes: dict[str, str | None] = {}
        self._deferred: dict[str, TextMessageEndEvent] = {}
        self._finals: dict[str, str] = {}
        self._cards: list[ToolCard] = []
        self._turn = "turn"

    def clone(self) -> CitadelAGUIAgent:
        return CitadelAGUIAgent(
            name=self.name,
            graph=self.graph,
            description=self.description,
            config=dict(self.config) if self.config else None,
            spec=self.spec,
            plan=self.plan,
            thread_values=self.thread_values,
            emit_raw=self.emit_raw_events,
        )

    # --- the request ----------------------------------------------------------------------------
    async def run(self, input: RunAgentInput) -> AsyncIterator[Any]:  # type: ignore[override]
        messages = conversation(input)
        props = {k: v for k, v in forwarded(input).items() if k not in DROPPED_PROPS}
        if input.resume:
            props.pop("command", None)
        # The run's state starts from the thread's (what the client sent may be stale or partial),
        # with the graph input the client set in it (a workflow's new steps, the collection).
        sent = input.state if isinstance(input.state, Mapping) else {}
        inputs = {k: v for k, v in sent.items() if k in self.spec.input_model.model_fields and k != "messages"}
        state = {**self.get_state_snapshot(self.thread_values), **inputs}
        input = input.model_copy(update={"messages": messages, "forwarded_props": props, "state": state})
        self._client_ids = {m.id for m in messages if m.role in CONVERSATION_ROLES}
        self._turn = input.run_id
        async for event in super().run(input):
            if event.type in FLUSH_BEFORE:
                for pending in self._flush():
                    yield pending
            yield event

    def get_schema_keys(self, config: RunnableConfig) -> dict[str, list[str]]:
        return {
            "input": [*self.spec.input_model.model_fields, "messages"],
            "output": ui_keys(self.spec),
            "config": [],
            "context": [],
        }

    def get_stream_kwargs(
        self,
        input: Any,
        subgraphs: bool = False,
        version: str = "v2",
        config: RunnableConfig | dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        fork: Any = None,
    ) -> dict[str, Any]:
        """What `RunGraph.astream_events` takes, without probing its signature twice a run (ag-ui-
        langgraph's and CopilotKit's `inspect.signature`) to build a `context` it does not read:
        a Citadel run's context is its config."""
        kwargs: dict[str, Any] = {"input": input, "subgraphs": subgraphs, "version": version}
        if config:
            kwargs["config"] = config
        if fork:
            kwargs.update(fork)
        return kwargs

    def get_state_snapshot(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return ui_state(self.spec, state)

    async def prepare_stream(self, input: RunAgentInput, agent_state: Any, config: RunnableConfig) -> Any:
        if self.plan.kind != "restore":
            return await super().prepare_stream(input, agent_state, config)
        values = agent_state.values or {}
        events: list[BaseEvent] = [
            RunStartedEvent(type=EventType.RUN_STARTED, thread_id=input.thread_id, run_id=input.run_id)
        ]
        if values:
            events.append(StateSnapshotEvent(type=EventType.STATE_SNAPSHOT, snapshot=self.get_state_snapshot(values)))
            cards = state_cards(values, "restored")
            events.append(
                MessagesSnapshotEvent(type=EventType.MESSAGES_SNAPSHOT, messages=self._snapshot_messages(values, cards))
            )
        interrupts = self._collect_interrupts(agent_state.tasks)
        if interrupts:
            events += self._emit_interrupt_finish(
                thread_id=input.thread_id, run_id=input.run_id, lg_interrupts=interrupts
            )
        else:
            events.append(RunFinishedEvent(type=EventType.RUN_FINISHED, thread_id=input.thread_id, run_id=input.run_id))
        return {"stream": None, "state": None, "config": None, "events_to_dispatch": events}

    # --- events ---------------------------------------------------------------------------------
    def _dispatch_event(self, event: Any) -> Any:
        event = super()._dispatch_event(event)
        if event is None:
            return None
        kind = event.type
        if kind == EventType.TEXT_MESSAGE_START:
            self._texts[event.message_id] = ""
            self._text_nodes[event.message_id] = (self.active_run or {}).get("node_name")
            self._known_ids.add(event.message_id)
        elif kind == EventType.TEXT_MESSAGE_CONTENT and event.message_id in self._texts:
            self._texts[event.message_id] += event.delta
        elif kind == EventType.TEXT_MESSAGE_END and event.message_id in self._texts:
            self._deferred[event.message_id] = event  # closed when its node ends (see _node_end)
            return None
        elif kind == EventType.TOOL_CALL_START and event.parent_message_id:
            self._known_ids.add(event.parent_message_id)
        elif kind == EventType.TOOL_CALL_RESULT:
            self._known_ids.add(event.message_id)
        return event

    def _flush(self) -> Iterator[BaseEvent]:
        """Close the answers held open: their last delta (text their node appended), then END."""
        for message_id, end in list(self._deferred.items()):
            del self._deferred[message_id]
            streamed, final = self._texts.get(message_id, ""), self._finals.get(message_id) or ""
            suffix = ""
            if final.startswith(streamed):
                suffix = final[len(streamed) :]
            elif final.startswith(streamed.rstrip()):  # the node trimmed the answer before appending
                suffix = final[len(streamed.rstrip()) :]
            if suffix:
                self._texts[message_id] += suffix
                yield TextMessageContentEvent(type=EventType.TEXT_MESSAGE_CONTENT, message_id=message_id, delta=suffix)
            yield end

    async def _handle_single_event(self, event: Any, state: Any) -> AsyncGenerator[Any, None]:
        kind = event.get("event")
        if kind in CHAT_EVENTS and INTERNAL in _tags(event):
            return  # the work behind an answer, not the answer
        if kind == "on_chat_model_stream":
            chunk = (event.get("data") or {}).get("chunk")
            decision = (getattr(chunk, "response_metadata", None) or {}).get(ROUTE_METADATA)
            if decision:
                yield self._dispatch_event(CustomEvent(type=EventType.CUSTOM, name=LLM_ROUTE_EVENT, value=decision))
        async for processed in super()._handle_single_event(event, state):
            yield processed
        metadata = event.get("metadata") or {}
        node = metadata.get("langgraph_node")
        output = (event.get("data") or {}).get("output")
        if kind == "on_chain_end" and node and event.get("name") == node and isinstance(output, Mapping):
            for produced in self._node_end(node, output, state):
                yield produced

    def _node_end(self, node: str, update: Mapping[str, Any], state: Any) -> Iterator[BaseEvent]:
        for message in update.get("messages") or []:
            if isinstance(message, AIMessage):
                yield from self._finish_message(node, message)
        yield from self._flush()
        current = {**state, **update} if isinstance(state, Mapping) else dict(update)
        for card in node_cards(node, current, f"{self._turn}-{len(self._cards)}"):
            self._cards.append(card)
            for produced in card.events():
                yield self._dispatch_event(produced)

    def _finish_message(self, node: str, message: AIMessage) -> Iterator[BaseEvent]:
        streamed = message.id if message.id in self._texts else None
        if streamed is None:  # streamed under another id? match it by its node
            open_here = [i for i in self._deferred if self._text_nodes.get(i) == node and i not in self._finals]
            streamed = open_here[0] if open_here else None
        if streamed is not None:
            self._finals[streamed] = message.text
        elif message.id and message.text.strip():
            # Not streamed (a node's own answer, or a model that does not stream): send it whole.
            yield from self._whole_text(message.id, message.text)
        # Without an id the checkpoint gives it one: the run's final MESSAGES_SNAPSHOT carries it.
        yield from self._unstreamed_tool_calls(message)

    def _whole_text(self, message_id: str, text: str) -> Iterator[BaseEvent]:
        yield from self._flush()
        start = TextMessageStartEvent(type=EventType.TEXT_MESSAGE_START, message_id=message_id, role="assistant")
        yield self._dispatch_event(start)
        yield self._dispatch_event(
            TextMessageContentEvent(type=EventType.TEXT_MESSAGE_CONTENT, message_id=message_id, delta=text)
        )
        self._finals[message_id] = text
        self._dispatch_event(TextMessageEndEvent(type=EventType.TEXT_MESSAGE_END, message_id=message_id))  # held
        yield from self._flush()

    def _unstreamed_tool_calls(self, message: AIMessage) -> Iterator[BaseEvent]:
        """Tool calls of a message whose model did not stream them (frontend tools among them)."""
        streamed_ids = (self.active_run or {}).setdefault("streamed_tool_call_ids", set())
        for call in message.tool_calls:
            call_id = self._resolve_public_tool_call_id(str(call.get("id") or uuid.uuid4()))
            key = self._streamed_call_key(call_id)
            if key in streamed_ids:
                continue
            streamed_ids.add(key)
            yield from self._flush()
            parent = message.id or f"{call_id}-call"
            for produced in (
                ToolCallStartEvent(
                    type=EventType.TOOL_CALL_START,
                    tool_call_id=call_id,
                    tool_call_name=call["name"],
                    parent_message_id=parent,
                ),
                ToolCallArgsEvent(type=EventType.TOOL_CALL_ARGS, tool_call_id=call_id, delta=_json(call["args"])),
                ToolCallEndEvent(type=EventType.TOOL_CALL_END, tool_call_id=call_id),
            ):
                yield self._dispatch_event(produced)

    # --- snapshots ------------------------------------------------------------------------------
    async def get_state_and_messages_snapshots(self, config: RunnableConfig) -> AsyncGenerator[Any, None]:
        for pending in self._flush():
            yield pending
        snapshot = await self.graph.aget_state(config)
        values = snapshot.values or {}
        yield self._dispatch_event(
            StateSnapshotEvent(type=EventType.STATE_SNAPSHOT, snapshot=self.get_state_snapshot(values))
        )
        if self._client_out_of_date(values):
            yield self._dispatch_event(
                MessagesSnapshotEvent(
                    type=EventType.MESSAGES_SNAPSHOT, messages=self._snapshot_messages(values, self._cards)
                )
            )

    def _client_out_of_date(self, values: Mapping[str, Any]) -> bool:
        """Whether the client's conversation (what it sent plus what this run streamed) differs
        from the thread's, so that it needs the whole of it."""
        thread_ids = {str(m.id) for m in values.get("messages") or []}
        return not thread_ids <= (self._client_ids | self._known_ids) or bool(self._client_ids - thread_ids)

    def _snapshot_messages(self, values: Mapping[str, Any], cards: list[ToolCard]) -> list[Any]:
        messages: list[BaseMessage] = self._filter_orphan_tool_messages(list(values.get("messages") or []))
        converted = langchain_messages_to_agui(messages)
        last_user = max((i for i, m in enumerate(converted) if m.role == "user"), default=-1)
        shown = [m for card in cards for m in card.messages()]
        return [*converted[: last_user + 1], *shown, *converted[last_user + 1 :]]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def make_agent(
    graph: RunGraph,
    spec: ServedGraph,
    plan: RunPlan,
    *,
    thread_values: Mapping[str, Any] | None = None,
    emit_raw: bool = False,
) -> CitadelAGUIAgent:
    return CitadelAGUIAgent(
        name=spec.name,
        graph=graph,
        description=spec.description,
        spec=spec,
        plan=plan,
        thread_values=thread_values,
        emit_raw=emit_raw,
    )
