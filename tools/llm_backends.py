"""The places chat answers come from: Ollama servers and the embedded model.

Both turn their own failures into Citadel's errors at this boundary: `BackendError` (retryable or
not) when the backend failed, `InvalidRequest` when the request itself cannot be served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage

from citadel.errors import BackendError, InvalidRequest
from citadel.settings import LLMServer
from citadel.tools.embedded_chat import MODEL_NAME, EmbeddedLLM

if TYPE_CHECKING:  # langchain-ollama is imported when an Ollama server is configured, not at every start
    from langchain_ollama import ChatOllama


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int
    temperature: float = 0.3
    top_p: float = 0.9
    stop: list[str] | None = None


class ChatBackend(Protocol):
    name: str
    models: list[str]
    timeout: float
    tool_calling: bool

    def stream(
        self, messages: list[BaseMessage], model: str, params: GenerationParams
    ) -> AsyncIterator[AIMessageChunk]:
        """Tokens from `model`; raises BackendError / InvalidRequest."""
        ...

    async def check_health(self) -> float:
        """Seconds the check took; raises BackendError when the backend cannot serve."""
        ...

    def chat_model(self, model: str) -> BaseChatModel | None:
        """A LangChain chat model for `model` that can call tools (`bind_tools`), when
        `tool_calling` is declared; None otherwise."""
        ...

    async def aclose(self) -> None: ...


class OllamaBackend:
    def __init__(self, server: LLMServer) -> None:
        from langchain_ollama import ChatOllama

        self._chat_class = ChatOllama
        self.name = server.name
        self.url = server.url.rstrip("/")
        self.models = list(server.models)
        self.timeout = server.timeout
        self.tool_calling = server.tool_calling
        self._chats: dict[str, ChatOllama] = {}
        self._http = httpx.AsyncClient(base_url=self.url, timeout=min(5.0, server.timeout))

    def chat_model(self, model: str) -> BaseChatModel | None:
        return self._chat(model) if self.tool_calling else None

    def _chat(self, model: str) -> ChatOllama:
        if model not in self._chats:
            chat = self._chat_class(model=model, base_url=self.url, client_kwargs={"timeout": self.timeout})
            self._chats[model] = chat
        return self._chats[model]

    async def stream(
        self, messages: list[BaseMessage], model: str, params: GenerationParams
    ) -> AsyncIterator[AIMessageChunk]:
        options: dict[str, Any] = {
            "num_predict": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            options["stop"] = params.stop
        from ollama import ResponseError  # imported with langchain-ollama by __init__

        try:
            async for chunk in self._chat(model).astream(messages, options=options):
                yield chunk  # type: ignore[misc]
        except ResponseError as error:
            status = error.status_code
            if 400 <= status < 500 and status not in (404, 408, 429):
                raise InvalidRequest(f"{self.name}: {error.error}") from error
            raise BackendError(
                self.name, f"HTTP {status}: {error.error}", retryable=status >= 500 or status in (408, 429)
            ) from error
        except (httpx.TransportError, ConnectionError) as error:
            raise BackendError(self.name, f"unreachable ({type(error).__name__}: {error})", retryable=True) from error

    async def check_health(self) -> float:
        started = time.perf_counter()
        try:
            response = await self._http.get("/api/tags")
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise BackendError(
                self.name, f"health check failed ({type(error).__name__}: {error})", retryable=True
            ) from error
        served = {m.get("name") for m in response.json().get("models", [])} | {
            m.get("model") for m in response.json().get("models", [])
        }
        missing = [m for m in self.models if m not in served and f"{m}:latest" not in served]
        if missing:
            raise BackendError(self.name, f"does not serve {', '.join(missing)}", retryable=True)
        return time.perf_counter() - started

    async def aclose(self) -> None:
        await self._http.aclose()
        for chat in self._chats.values():
            # langchain-ollama builds its ollama clients itself and offers no close; close them here.
            if chat._async_client is not None:
                await chat._async_client.close()
            if chat._client is not None:
                chat._client.close()
        self._chats.clear()


class EmbeddedBackend:
    name = "embedded"
    tool_calling = False

    def __init__(self, llm: EmbeddedLLM, timeout: float = 120.0) -> None:
        self._llm = llm
        self.models = [MODEL_NAME]
        self.timeout = timeout

    async def stream(
        self, messages: list[BaseMessage], model: str, params: GenerationParams
    ) -> AsyncIterator[AIMessageChunk]:
        async for chunk in self._llm.stream(
            messages, max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p, stop=params.stop
        ):
            yield chunk

    async def check_health(self) -> float:
        return 0.0

    def chat_model(self, model: str) -> BaseChatModel | None:
        return None

    async def aclose(self) -> None:
        await asyncio.to_thread(self._llm.close)  # waits for a generation still running
