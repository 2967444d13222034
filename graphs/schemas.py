"""Pydantic pieces the graphs' published input and output schemas share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

ROLES = {"user", "assistant", "system", "tool", "human", "ai", "developer"}
TYPES = {"human", "ai", "system", "tool", "user", "assistant"}


class MessageInput(BaseModel):
    """A chat message, in OpenAI style (`role`) or LangChain style (`type`); other fields (id,
    name, tool_calls, ...) pass through to LangChain's message parsing."""

    model_config = ConfigDict(extra="allow")

    role: str | None = Field(default=None, description="`user`, `assistant`, `system` or `tool`.")
    type: str | None = Field(default=None, description="`human`, `ai`, `system` or `tool` (instead of `role`).")
    content: str | list[dict[str, Any]] = Field(description="The text, or a list of content blocks.")

    @model_validator(mode="after")
    def _has_a_role(self) -> MessageInput:
        if self.role is None and self.type is None:
            raise ValueError("a message needs a `role` (user, assistant, system, tool) or a `type`")
        if self.role is not None and self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; use one of user, assistant, system, tool")
        if self.type is not None and self.type not in TYPES:
            raise ValueError(f"unknown type {self.type!r}; use one of human, ai, system, tool")
        return self


class ConversationOutput(BaseModel):
    """The conversation part of a graph's state."""

    messages: list[dict[str, Any]] = Field(default_factory=list, description="The thread's messages.")
