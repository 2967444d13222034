"""Long-term memory for a user, across threads: the `remember` specialist stores what the user
asks it to remember; the generalist recalls the facts relevant to each turn.

Facts live in the LangGraph store (reached through the node's `Runtime`) under the namespace
`("memories", user_id)`, `user_id` being `configurable.user_id` (default `anonymous`), as
`{"text": fact, "created_at": iso-time}` keyed by the fact's hash (remembering it twice keeps one).
Recall uses the store's own semantic search when it has an embedding index, else ranks the user's
facts by meaning itself.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore

from citadel.agents.state import ConversationState
from citadel.tools.embeddings import EmbeddingService

NAMESPACE = "memories"
DEFAULT_USER = "anonymous"
RECALL_LIMIT = 5
SCAN_LIMIT = 200
_LEAD = re.compile(
    r"^\s*(?:(?:please|hey|ok|okay|also|and|so)[\s,]+)*"
    r"(?:(?:can|could|would|will) you |i (?:want|need|would like) you to |i'd like you to )?"
    r"(?:please\s+)?"
    r"(?:remember|note(?: down)?|keep in mind|bear in mind|don'?t forget|do not forget|make a note|"
    r"take note|for future reference|store (?:this|the) fact|save (?:this )?to memory|memori[sz]e)"
    r"(?:\s*(?:that|this|:|,|-|of))*\s*",
    re.IGNORECASE,
)
_PERSON = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "i'm": "you're",
    "i've": "you've",
    "i'd": "you'd",
    "i'll": "you'll",
    "am": "are",
}
_WORD = re.compile(r"\b(i'm|i've|i'd|i'll|myself|mine|my|me|i|am)\b", re.IGNORECASE)


class MemoryState(ConversationState, total=False):
    memories: list[str]
    """The facts recalled for this turn (or the one just remembered)."""


def user_id(config: RunnableConfig | None) -> str:
    return str((config or {}).get("configurable", {}).get("user_id") or DEFAULT_USER)


def namespace(user: str) -> tuple[str, str]:
    return (NAMESPACE, user)


def extract_fact(text: str) -> str:
    """`Please remember that my favourite colour is green.` → `my favourite colour is green`."""
    fact = _LEAD.sub("", text.strip(), count=1).strip().rstrip(".!?").strip()
    fact = re.sub(r"[\s,]+please$", "", fact, flags=re.IGNORECASE)
    return fact or text.strip()


def to_second_person(fact: str) -> str:
    """The fact as said back to the user (`my colour` → `your colour`), for confirmations."""
    return _WORD.sub(lambda m: _PERSON[m.group(1).lower()], fact)


async def remember(state: ConversationState, runtime: Runtime[Any]) -> dict[str, Any]:
    """The `remember` node: store the fact from the last user message and confirm it."""
    text = next((m.text for m in reversed(state["messages"]) if m.type == "human"), "")
    fact = extract_fact(text)
    if runtime.store is None:
        reply = "I cannot remember things here: this deployment has no long-term memory store."
        return {"messages": [AIMessage(reply)], "memories": []}
    key = hashlib.sha256(" ".join(fact.lower().split()).encode()).hexdigest()[:24]
    value = {"text": fact, "created_at": datetime.now(UTC).isoformat()}
    await runtime.store.aput(namespace(user_id(get_config())), key, value)
    return {"messages": [AIMessage(f"Got it: I'll remember that {to_second_person(fact)}.")], "memories": [fact]}


async def recall(
    store: BaseStore | None, user: str, query: str, embeddings: EmbeddingService, *, limit: int = RECALL_LIMIT
) -> list[str]:
    """The user's facts most related to `query`, best first."""
    if store is None:
        return []
    if getattr(store, "index_config", None) and query.strip():
        items = await store.asearch(namespace(user), query=query, limit=limit)
        return [str(item.value["text"]) for item in items if "text" in item.value]
    items = await store.asearch(namespace(user), limit=SCAN_LIMIT)
    facts = [str(item.value["text"]) for item in items if "text" in item.value]
    if len(facts) <= limit or not query.strip():
        return facts[:limit]
    model = embeddings.model(None)
    embedded = await embeddings.embed([embeddings.truncate(t, model) for t in [query, *facts]])
    scores = embedded.vectors[1:] @ embedded.vectors[0]
    return [facts[i] for i in np.argsort(-scores)[:limit]]
