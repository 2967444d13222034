"""What the specialist agents need from the rest of Citadel, passed in as one dataclass.

Tests swap parts of it: `replace(deps, tool_model=lambda: ScriptedChatModel(...))` gives the
specialists a chat model that calls tools, as a capable Ollama backend would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from runtime.settings import Settings
from tools.chat_model import RoutedChatModel
from tools.embeddings import EmbeddingService
from tools.llm_router import LLMRouter
from tools.vector_store import VectorStore


@dataclass
class AgentDeps:
    settings: Settings
    embeddings: EmbeddingService
    vectors: VectorStore
    llm: LLMRouter
    tool_model: Callable[[], BaseChatModel | None]
    """A chat model that can call tools (`bind_tools`) when a configured backend declares
    `tool_calling`, else None: then the specialists use their explicit nodes only."""

    @classmethod
    def from_services(cls, services: Any) -> AgentDeps:
        """From `runtime.services.Services` (typed loosely: agents do not import the runtime's wiring)."""
        return cls(
            settings=services.settings,
            embeddings=services.embeddings,
            vectors=services.vectors,
            llm=services.llm,
            tool_model=services.llm.tool_model if services.llm is not None else lambda: None,
        )

    def chat(self, **defaults: Any) -> RoutedChatModel:
        """The LLM router as a chat model (tokens stream through LangGraph's `messages` mode)."""
        return RoutedChatModel(router=self.llm, **defaults)
