"""What an AG-UI client sees of a graph's state, and the tool-call cards Citadel adds to the chat.

- `ui_state` projects a graph's values onto what the page shows (the chosen specialist and why, the
  sources, the analyst's sections and progress, the workflow's steps and results): the published
  output schema without the conversation (it travels as messages) and without bulky copies (the
  merged report is the last message; a section's full text is the document the user sent).
- `ToolCard`s are Citadel's backend tools rendered as AG-UI tool calls: the supervisor's routing
  decision, the researcher's search and each workflow step (its embedding vectors left out) run
  as explicit graph nodes (the
  embedded model cannot call tools), so no model streams a tool call for them; a card is emitted
  as TOOL_CALL_START/ARGS/END + TOOL_CALL_RESULT when the node finishes. Their ids carry the
  `citadel-ui-` prefix, so the messages a client sends back with its next run can be told from
  the conversation (they are display-only and never enter the graph's state).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ag_ui.core import (
    AssistantMessage,
    BaseEvent,
    EventType,
    FunctionCall,
    ToolCall,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
    ToolMessage,
)
from langchain_core.messages import BaseMessage
from pydantic import BaseModel

from citadel.core.wire import to_jsonable
from citadel.graphs.spec import ServedGraph

SYNTHETIC = "citadel-ui-"
"""Prefix of the ids of display-only messages (tool-call cards)."""
HIDDEN_KEYS = frozenset({"messages", "report"})
EXTRA_KEYS = ("collection",)
"""Input keys the page sets and wants back (the collection it searches)."""


def ui_keys(spec: ServedGraph) -> list[str]:
    """The state keys the page sees: those the graph names (a project's `ui_state_keys`, by default
    all but `messages`), else the built-in's published output less the conversation and bulky copies."""
    if spec.ui_state_keys is not None:
        return list(spec.ui_state_keys)
    keys = [key for key in spec.output_model.model_fields if key not in HIDDEN_KEYS]
    return keys + [key for key in EXTRA_KEYS if key in spec.input_model.model_fields and key not in keys]


def plain(value: Any) -> bool:
    """Whether a value is JSON data (or messages and models, which have a JSON form)."""
    if value is None or isinstance(value, str | int | float | bool | BaseMessage | BaseModel):
        return True
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(plain(v) for v in value)
    return False


def ui_state(spec: ServedGraph, values: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a graph's state an AG-UI client shows, as plain JSON (a value with no JSON form,
    such as a client object a project's graph keeps in its state, is left out)."""
    projected: dict[str, Any] = {}
    for key in ui_keys(spec):
        if key not in values or not plain(values[key]):
            continue
        value = values[key]
        if key == "sections" and isinstance(value, list):
            value = [{k: v for k, v in section.items() if k != "text"} for section in value]
        elif key == "results" and isinstance(value, list):
            value = [_without_vectors(result) for result in value]
        projected[key] = value
    return to_jsonable(projected)  # type: ignore[no-any-return]


def _without_vectors(result: Any) -> Any:
    """A workflow step's result without its embedding vectors (hundreds of numbers no page shows)."""
    if isinstance(result, Mapping) and isinstance(result.get("output"), Mapping) and "vectors" in result["output"]:
        return {**result, "output": {k: v for k, v in result["output"].items() if k != "vectors"}}
    return result


def is_synthetic(message: Any) -> bool:
    """Whether an AG-UI message (as a client sends it back) is a display-only card."""
    ids = [getattr(message, "id", None), getattr(message, "tool_call_id", None)]
    ids += [call.id for call in getattr(message, "tool_calls", None) or []]
    return any(isinstance(i, str) and i.startswith(SYNTHETIC) for i in ids)


def _dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ToolCard:
    """A backend tool's call and result, shown in the chat like a tool call the model made."""

    call_id: str
    name: str
    args: dict[str, Any]
    result: Any

    @property
    def parent_id(self) -> str:
        return f"{self.call_id}-call"

    @property
    def result_id(self) -> str:
        return f"{self.call_id}-result"

    def events(self) -> list[BaseEvent]:
        return [
            ToolCallStartEvent(
                type=EventType.TOOL_CALL_START,
                tool_call_id=self.call_id,
                tool_call_name=self.name,
                parent_message_id=self.parent_id,
            ),
            ToolCallArgsEvent(type=EventType.TOOL_CALL_ARGS, tool_call_id=self.call_id, delta=_dumps(self.args)),
            ToolCallEndEvent(type=EventType.TOOL_CALL_END, tool_call_id=self.call_id),
            ToolCallResultEvent(
                type=EventType.TOOL_CALL_RESULT,
                tool_call_id=self.call_id,
                message_id=self.result_id,
                content=_dumps(self.result),
                role="tool",
            ),
        ]

    def messages(self) -> list[Any]:
        call = ToolCall(id=self.call_id, function=FunctionCall(name=self.name, arguments=_dumps(self.args)))
        return [
            AssistantMessage(id=self.parent_id, role="assistant", tool_calls=[call]),
            ToolMessage(id=self.result_id, role="tool", tool_call_id=self.call_id, content=_dumps(self.result)),
        ]


def node_cards(node: str, update: Mapping[str, Any], key: str) -> list[ToolCard]:
    """The cards a finished node's update shows (`key` makes their ids unique in the thread)."""
    cards = []
    if node == "supervisor" and update.get("specialist"):
        decision = {"specialist": update["specialist"], "reason": update.get("route_reason")}
        cards.append(ToolCard(f"{SYNTHETIC}route-{key}", "route_to_specialist", {}, decision))
    retrieval = update.get("retrieval")
    if node == "researcher_retrieve" and isinstance(retrieval, Mapping):
        args = {"query": retrieval.get("query"), "collection": retrieval.get("collection")}
        result = {
            "status": retrieval.get("status"),
            "best_score": retrieval.get("best_score"),
            "sources": list(update.get("sources") or []),
        }
        cards.append(ToolCard(f"{SYNTHETIC}search-{key}", "search_documents", args, result))
    results = update.get("results")
    if node == "workflow_step" and isinstance(results, list) and results:
        cards.append(_step_card(results[-1], update.get("steps") or [], key))
    return cards


def _step_card(result: Mapping[str, Any], steps: list[Any], key: str) -> ToolCard:
    index = result.get("index", 0)
    params = steps[index] if isinstance(index, int) and 0 <= index < len(steps) else {}
    kind = str(result.get("type") or (params.get("type") if isinstance(params, Mapping) else "step"))
    args = {k: v for k, v in params.items() if k not in ("type", "approve")} if isinstance(params, Mapping) else {}
    return ToolCard(f"{SYNTHETIC}step{index}-{key}", f"workflow_{kind}", args, _without_vectors(result))


def state_cards(values: Mapping[str, Any], key: str) -> list[ToolCard]:
    """The cards of the latest turn, rebuilt from a thread's state (for a restored conversation)."""
    cards = node_cards("supervisor", values, key)
    if values.get("retrieval"):
        cards += node_cards("researcher_retrieve", values, key)
    for result in values.get("results") or []:
        if isinstance(result, Mapping):
            cards.append(_step_card(result, values.get("steps") or [], key))
    return cards
