"""Which messages of a thread go to the model on a turn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AnyMessage, BaseMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately


def last_human_text(state: Mapping[str, Any]) -> str:
    """The text of the latest user message in a state's `messages`."""
    return next((m.text for m in reversed(state.get("messages", [])) if m.type == "human"), "")


def current_turn(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """The last human message and what followed it (tool calls and their results)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].type == "human":
            return list(messages[index:])
    return list(messages)


def recent_history(messages: Sequence[AnyMessage], max_tokens: int) -> list[BaseMessage]:
    """The latest messages that fit in `max_tokens` (estimated), starting on a human message and
    never splitting a tool call from its result. Always at least the current turn."""
    kept = trim_messages(
        list(messages),
        max_tokens=max_tokens,
        token_counter=count_tokens_approximately,
        strategy="last",
        start_on="human",
        allow_partial=False,
    )
    return kept or list(current_turn(messages))
