"""What the MCP tests' clients bring: the documents they store, inputs that make graph runs fast, slow
or pause for approval, a progress recorder, and an elicitation answerer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp.types as types
from mcp.client.session import ClientRequestContext

from tests.graphs.run_inputs import DOCS

TOOLS = {
    "embed_texts",
    "list_embedding_models",
    "search",
    "upsert_documents",
    "delete_documents",
    "list_collections",
    "generate",
    "ask_assistant",
    "ask_rag",
    "run_workflow",
    "get_thread",
    "resume_thread",
}
DOCUMENTS = [{"id": d.id, "text": d.text, "metadata": d.metadata} for d in DOCS]
FAST_STEPS = [{"type": "embedding", "text": "sunlight into electricity"}, {"type": "vector_search", "k": 2}]
SLOW_STEPS = [
    {"type": "llm_query", "prompt": f"Tell a long story about the number {i}.", "max_tokens": 400} for i in range(6)
]
APPROVAL_STEPS = [{"type": "embedding", "text": "first", "approve": True}, {"type": "embedding", "text": "second"}]
STARTED = re.compile(r"run (?P<run>[0-9a-f-]{36}) started on thread (?P<thread>[0-9a-f-]{36})")
LLM_DEADLINE = 180.0
"""Generous: the embedded model on 2 cores, under a parallel test load."""


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}},
}
"""A handshake-era client's first request: it opens a session."""
JSON_AND_SSE = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **extra}


@dataclass
class Progress:
    """Records progress notifications; `started` is set by the first, `stepped` once a graph step finished."""

    seen: list[tuple[float, float | None, str | None]] = field(default_factory=list)
    started: anyio.Event = field(default_factory=anyio.Event)
    stepped: anyio.Event = field(default_factory=anyio.Event)

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))
        self.started.set()
        if progress >= 1:
            self.stepped.set()

    @property
    def messages(self) -> list[str]:
        return [m or "" for _, _, m in self.seen]

    def run_and_thread(self) -> tuple[str, str]:
        found = STARTED.search(self.messages[0])
        assert found, self.messages
        return found["run"], found["thread"]


@dataclass
class Approver:
    """An elicitation callback that answers every approval form the same way."""

    action: str = "accept"
    approve: bool = True
    asked: list[str] = field(default_factory=list)

    async def __call__(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        assert "approve" in params.requested_schema["properties"]
        self.asked.append(params.message)
        content = {"approve": self.approve} if self.action == "accept" else None
        return types.ElicitResult(action=self.action, content=content)  # type: ignore[arg-type]


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))
