"""A participant's voice conversation is a Citadel thread owned by that user.

Who the participant is comes from their LiveKit token, which only the holder of the API secret can
sign: `POST /voice/token` puts the caller's identity and their thread in the participant's metadata
(`{"citadel": {"user_id", "thread_id", "graph"}}`) and denies them the grant to change it. A token
minted elsewhere (a SIP trunk, the LiveKit CLI) without it maps to the participant's identity and a
new thread. The thread is checkpointed like chat, so the same person continues it on either face.

An approval interrupt is asked aloud; the next thing the user says answers it (`spoken_decision`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from citadel.core.runs import RunManager
from citadel.errors import NotFound

METADATA_KEY = "citadel"
SOURCE = "voice"

_NO = re.compile(
    r"\b(no|nope|nah|don'?t|do not|stop|cancel|reject|rejected|decline|never ?mind|negative|not now|skip it)\b"
)
_YES = re.compile(
    r"\b(yes|yeah|yep|yup|sure|ok|okay|go ahead|approve|approved|do it|please do|continue|proceed|affirmative|"
    r"alright|all right|of course|certainly|absolutely|fine)\b"
)


@dataclass(frozen=True)
class Caller:
    """Who a participant is, and which conversation they asked for."""

    user_id: str
    thread_id: str | None = None
    graph: str | None = None


def caller_from_participant(identity: str, metadata: str | None) -> Caller:
    """From a participant's identity and metadata (JSON, as `POST /voice/token` writes it)."""
    try:
        data = json.loads(metadata) if metadata else {}
    except ValueError:
        data = {}
    ours = data.get(METADATA_KEY) if isinstance(data, dict) else None
    if not isinstance(ours, dict):
        return Caller(user_id=identity)
    return Caller(
        user_id=str(ours.get("user_id") or identity),
        thread_id=str(ours["thread_id"]) if ours.get("thread_id") else None,
        graph=str(ours["graph"]) if ours.get("graph") else None,
    )


def participant_metadata(user_id: str, thread_id: str, graph: str) -> str:
    return json.dumps({METADATA_KEY: {"user_id": user_id, "thread_id": thread_id, "graph": graph}})


def spoken_decision(text: str) -> Literal["approve", "reject"] | None:
    """What a spoken answer to a yes/no question means; None when it says neither (or both)."""
    said = " ".join(re.sub(r"[^\w' ]+", " ", text.lower()).split())
    no, yes = bool(_NO.search(said)), bool(_YES.search(said))
    if no == yes:
        return None
    return "approve" if yes else "reject"


def approval_question(interrupt: dict[str, Any]) -> str:
    message = str(interrupt.get("message") or "This step needs your approval.").strip()
    return f"{message} Please say yes or no."


@dataclass
class Conversation:
    """One participant's conversation: the thread, its owner, and an approval awaiting an answer."""

    user_id: str
    thread_id: str
    graph: str
    pending_approval: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    """`config` for each run (e.g. `{"configurable": {"collection": "docs"}}`)."""


async def open_conversation(runs: RunManager, caller: Caller, default_graph: str) -> Conversation:
    """The caller's thread (created if it does not exist yet), with any approval it is waiting on.

    A thread that exists but belongs to someone else is refused (NotFound), as on every face."""
    graph = caller.graph or default_graph
    runs.registry.get(graph)  # NotFound for an unknown graph, before any thread is made
    if caller.thread_id is None:
        thread = await runs.store.create_thread(caller.user_id, graph=graph, metadata={"source": SOURCE})
    else:
        try:
            thread = await runs.store.get_thread(caller.thread_id, caller.user_id)
        except NotFound:
            thread = await runs.store.create_thread(
                caller.user_id, thread_id=caller.thread_id, graph=graph, metadata={"source": SOURCE}
            )
    graph = thread.graph or graph
    conversation = Conversation(user_id=caller.user_id, thread_id=thread.thread_id, graph=graph)
    if thread.status == "interrupted":
        conversation.pending_approval = await pending_approval(runs, conversation)
    return conversation


async def pending_approval(runs: RunManager, conversation: Conversation) -> dict[str, Any] | None:
    """The approval the thread's graph paused for, if it did (e.g. in the chat page)."""
    snapshot = await runs.registry.get(conversation.graph).graph.aget_state(
        {"configurable": {"thread_id": conversation.thread_id}}
    )
    for interrupt in snapshot.interrupts:
        if isinstance(interrupt.value, dict):
            return interrupt.value
    return None
