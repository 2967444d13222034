"""Where the specialists' tool-calling model comes from: a backend that declares it can call tools."""

from __future__ import annotations

from typing import Any

from langchain_ollama import ChatOllama

from citadel.settings import LLMServer
from citadel.tools.llm_backends import OllamaBackend
from citadel.tools.llm_router import LLMRouter


async def test_the_tool_model_is_the_first_backend_that_declares_tool_calling(make_settings: Any) -> None:
    plain = OllamaBackend(LLMServer(name="llm-01", url="http://127.0.0.1:9", models=["small"]))
    capable = OllamaBackend(
        LLMServer(name="llm-02", url="http://127.0.0.1:9", models=["qwen2.5:7b", "other"], tool_calling=True)
    )
    router = LLMRouter(make_settings(), [plain, capable], semantic=None)
    try:
        model = router.tool_model()
        assert isinstance(model, ChatOllama)
        assert model.model == "qwen2.5:7b"
        router.health["llm-02"] = (False, "down")
        assert router.tool_model() is None, "not a backend whose last health check failed"
    finally:
        await router.aclose()


async def test_without_such_a_backend_there_is_no_tool_model(make_settings: Any) -> None:
    router = LLMRouter(
        make_settings(), [OllamaBackend(LLMServer(name="llm-01", url="http://127.0.0.1:9", models=["m"]))], None
    )
    try:
        assert router.tool_model() is None
    finally:
        await router.aclose()
