"""The LLM router as a LangChain chat model, so graph nodes can call it like any other model.

Calling it inside a LangGraph node lets LangGraph's `messages` stream mode see every token (it
listens to chat-model callbacks), while the router keeps choosing the backend, failing over and
counting. The routing decision travels with the answer: `response_metadata["citadel_route"]` holds
the backend, model, route and reason.

Per call, `route=`, `model=`, `max_tokens=` and `temperature=` may be passed as keyword arguments
(`await chat.ainvoke(messages, route="code")`) or bound (`chat.bind(route="code")`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import agenerate_from_stream
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from citadel.tools.llm_backends import GenerationParams
from citadel.tools.llm_router import LLMRouter, RouteDecision

ROUTE_METADATA = "citadel_route"


def decision_metadata(decision: RouteDecision) -> dict[str, Any]:
    return {
        "backend": decision.backend,
        "model": decision.model,
        "route": decision.route,
        "reason": decision.reason,
    }


class RoutedChatModel(BaseChatModel):
    """Chat answers from `LLMRouter.stream`: async only (Citadel has no sync callers)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    router: LLMRouter
    route: str | None = None
    """Task class to route to; None lets the router's semantic router pick from the last user message."""
    model: str | None = None
    """A model to ask for by name (the router then only uses the backends serving it)."""
    max_tokens: int | None = None
    """Answer length; None = the router's default (`CITADEL_LLM_MAX_TOKENS`)."""
    temperature: float = 0.3

    @property
    def _llm_type(self) -> str:
        return "citadel-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"route": self.route, "model": self.model, "max_tokens": self.max_tokens}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("RoutedChatModel is async only: use ainvoke / astream")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await agenerate_from_stream(self._astream(messages, stop, **kwargs))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        params = GenerationParams(
            max_tokens=kwargs.get("max_tokens", self.max_tokens) or self.router.default_max_tokens,
            temperature=kwargs.get("temperature", self.temperature),
            stop=stop,
        )
        stream = await self.router.stream(
            messages,
            model=kwargs.get("model", self.model),
            route=kwargs.get("route", self.route),
            params=params,
        )
        first = True
        try:
            async for chunk in stream:
                if first:
                    metadata = {**chunk.response_metadata, ROUTE_METADATA: decision_metadata(stream.decision)}
                    chunk = chunk.model_copy(update={"response_metadata": metadata})
                    first = False
                yield ChatGenerationChunk(message=chunk)
        finally:
            await stream.aclose()
