"""State shapes more than one specialist or graph shares (each specialist's own state lives
with it)."""

from __future__ import annotations

from typing import Annotated

from langchain_core.messages import AnyMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.graph.message import _messages_delta_reducer
from typing_extensions import TypedDict

# Messages are checkpointed as deltas (LangGraph's DeltaChannel, beta in langgraph 1.2): with the
# plain `add_messages` reducer every checkpoint stores the whole conversation again, so a thread's
# storage grows with the square of its turns (27 MB after 500 turns, measured by
# `benchmarks/checkpoints.py`); with deltas it grows linearly (2.4 MB).
Messages = Annotated[list[AnyMessage], DeltaChannel(_messages_delta_reducer)]


class ConversationState(TypedDict):
    """The conversation every graph keeps: its messages."""

    messages: Messages


class Source(TypedDict):
    """A passage an answer drew on."""

    id: str
    title: str
    score: float
    """Cosine similarity of the passage to the question (whatever the search mode ranked by)."""
    text: str
    """A snippet of the passage (the start of the matching chunk)."""


class Progress(TypedDict):
    completed: int
    total: int
    current: str | None
    """What runs now (e.g. `section 3: Pricing`), None when nothing does."""
