"""What the specialist agents need from the rest of Citadel, passed in as one dataclass.

Tests swap parts of it: `replace(deps, tool_model=lambda: ScriptedChatModel(...))` gives the
specialists a chat model that calls tools, as a capable Ollama backend would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from citadel.settings import Settings
from citadel.tools.chat_model import RoutedChatModel
from citadel.tools.embeddings import EmbeddingService
from citadel.tools.llm_router import LLMRouter
from citadel.tools.vector_store import VectorStore


@dataclass
class AgentDeps:
    settings: Settings
    embeddings: EmbeddingService
    vectors: VectorStore
    llm: LLMRouter
    tool_model: Callable[[], BaseChatModel | None]
    """A chat model that can call tools (`bind_tools`) when a configured backend declares
    `tool_calling`, else None: then the specialists use their explicit nodes only."""

    def chat(self, **defaults: Any) -> RoutedChatModel:
        """The LLM router as a chat model (tokens stream through LangGraph's `messages` mode)."""
        return RoutedChatModel(router=self.llm, **defaults)
