"""What an AG-UI request asks of a thread: to resume it, to run a new turn, or only to restore it.

AG-UI clients send the whole conversation with every run. Against the thread's checkpoint that
reads as:
- `resume`: an answer to the interrupt the thread is paused at (`resume[]`, or CopilotKit's older
  `forwardedProps.command.resume`);
- `start`: new messages (or, for a graph that takes no messages, new input in `state`) → a run;
- `restore`: nothing new. Citadel then runs nothing and answers with the thread's state and
  messages (and its pending interrupt): this is how a page reloaded, or opened after a restart,
  gets its conversation back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ag_ui.core import RunAgentInput

from citadel.graphs.spec import ServedGraph
from citadel.ui_bridge.run_graph import message_input
from citadel.ui_bridge.ui_state import is_synthetic

CONVERSATION_ROLES = {"user", "assistant", "tool"}


@dataclass
class RunPlan:
    kind: Literal["restore", "resume", "start"]
    graph_input: dict[str, Any] = field(default_factory=dict)
    """What a `start` passes to the graph (validated against its input schema before streaming)."""


def forwarded(input: RunAgentInput) -> dict[str, Any]:
    props = input.forwarded_props
    return dict(props) if isinstance(props, Mapping) else {}


def resume_requested(input: RunAgentInput) -> bool:
    if input.resume:
        return True
    command = forwarded(input).get("command")
    return isinstance(command, Mapping) and command.get("resume") is not None


def conversation(input: RunAgentInput) -> list[Any]:
    """The client's messages less the display-only cards."""
    return [m for m in input.messages if not is_synthetic(m)]


def plan_run(spec: ServedGraph, input: RunAgentInput, values: Mapping[str, Any]) -> RunPlan:
    if resume_requested(input):
        return RunPlan("resume")
    known = {getattr(m, "id", None) for m in values.get("messages") or []}
    new = [m for m in conversation(input) if m.role in CONVERSATION_ROLES and m.id not in known]
    fields = spec.input_model.model_fields
    graph_input: dict[str, Any] = {}
    if new:
        # ag-ui-langgraph (and the langchain agents it loads) on the first run, not at the server's start
        from ag_ui_langgraph.utils import agui_messages_to_langchain

        graph_input["messages"] = [message_input(m) for m in agui_messages_to_langchain(new)]
    state = input.state if isinstance(input.state, Mapping) else {}
    changed = {k: v for k, v in state.items() if k in fields and k != "messages" and v != values.get(k)}
    graph_input |= {k: v for k, v in state.items() if k in fields and k != "messages" and v is not None}
    if new or (changed and not spec.takes_messages):
        return RunPlan("start", graph_input)
    return RunPlan("restore")
