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
from typing import TYPE_CHECKING, Any, Literal

from citadel.errors import NotFound

if TYPE_CHECKING:  # the server's voice token route imports this module; the SDK client stays out of it
    from citadel.agents.voice.server_api import ServerAPI

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


async def open_conversation(api: ServerAPI, caller: Caller, default_graph: str) -> Conversation:
    """The caller's thread on the server (created if it does not exist yet), with any approval it is
    waiting on.

    A thread that exists but belongs to someone else is refused (the server answers it like a
    missing one, and refuses to create it again), as on every face."""
    graph = caller.graph or default_graph
    await api.check_graph(caller.user_id, graph)  # NotFound for an unknown graph, before any thread is made
    metadata = {"source": SOURCE}
    if caller.thread_id is None:
        thread = await api.create_thread(caller.user_id, graph, metadata)
    else:
        try:
            thread = await api.get_thread(caller.user_id, caller.thread_id)
        except NotFound:
            thread = await api.create_thread(caller.user_id, graph, metadata, thread_id=caller.thread_id)
    thread_graph = (thread.get("metadata") or {}).get("graph_id")
    conversation = Conversation(user_id=caller.user_id, thread_id=thread["thread_id"], graph=thread_graph or graph)
    if thread.get("status") == "interrupted":
        conversation.pending_approval = pending_approval(thread)
    return conversation


def pending_approval(thread: dict[str, Any]) -> dict[str, Any] | None:
    """The approval the thread's graph paused for, if it did (e.g. in the chat page), from the
    thread as the server describes it (`interrupts`: task id → its interrupts)."""
    for interrupts in (thread.get("interrupts") or {}).values():
        for interrupt in interrupts or []:
            value = interrupt.get("value") if isinstance(interrupt, dict) else None
            if isinstance(value, dict):
                return value
    return None
