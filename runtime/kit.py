"""Citadel's services for a project's own graphs: search, embeddings and the routed chat model.

    from citadel.runtime import kit

    TOOLS = kit.tools()                               # LangChain tools: search_documents, embed_texts

    async def call_model(state, config):
        model = await kit.chat_model()                # the routed chat model (streams tokens)
        capable = await kit.tool_model()              # a model that calls tools, or None
        ...

Inside `citadel serve` these are the services the server opened (the same embedding models, vector
store and LLM backends its built-in graphs use, with no clients of the graph's own). Anywhere else
(`langgraph dev`, a notebook, a test) the first call opens services from the environment
(`CITADEL_*`, as the server reads it), for the rest of the process: the same graph imports and runs
under both, unchanged. Call `chat_model()` / `tool_model()` inside nodes, where a run is going on;
`tools()` may be called at import time (the tools find the services when they are called).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool

from citadel.agents.deps import AgentDeps
from citadel.agents.toolkit import make_tools
from citadel.runtime.services import open_services
from citadel.settings import Settings

__all__ = ["chat_model", "services", "tool_model", "tools"]

_bound: AgentDeps | None = None
_own: dict[asyncio.AbstractEventLoop, AgentDeps] = {}
_opening: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
_stacks: list[contextlib.AsyncExitStack] = []


@contextlib.contextmanager
def bind(deps: AgentDeps) -> Iterator[None]:
    """What the server does while it serves: the kit hands out its services."""
    global _bound
    before, _bound = _bound, deps
    try:
        yield
    finally:
        _bound = before


async def services() -> AgentDeps:
    """The services the kit works with: the server's, else its own (opened on first use)."""
    if _bound is not None:
        return _bound
    loop = asyncio.get_running_loop()
    async with _opening.setdefault(loop, asyncio.Lock()):
        if loop not in _own:
            stack = contextlib.AsyncExitStack()
            opened = await stack.enter_async_context(open_services(Settings()))
            _stacks.append(stack)  # kept open for the life of the process, as a server keeps its own
            _own[loop] = opened.agent_deps()
    return _own[loop]


async def chat_model(**defaults: Any) -> BaseChatModel:
    """Citadel's LLM router as a LangChain chat model: each call goes to a healthy backend, with
    failover; `route=`, `model=` and `max_tokens=` narrow it (see `RoutedChatModel`)."""
    return (await services()).chat(**defaults)


async def tool_model() -> BaseChatModel | None:
    """A chat model that calls tools (`bind_tools`): a configured backend declared `tool_calling`;
    None when there is none (the embedded model cannot): then a graph calls its tools itself."""
    return (await services()).tool_model()


def tools() -> list[BaseTool]:
    """Citadel's tools as LangChain tools: `search_documents(query, collection=None, k=4)` (passages
    of a collection, with ids to cite; the run's `configurable.collection` or
    `CITADEL_DEFAULT_COLLECTION` when none is named) and `embed_texts(texts, model=None)`."""
    return [_deferred(template) for template in make_tools(_UNBOUND)]


_UNBOUND: Any = None
"""The tools' shapes (names, descriptions, arguments) do not depend on the services."""


def _deferred(template: BaseTool) -> BaseTool:
    """`template` calling the same tool made on the kit's services, found when it is called."""
    name = template.name

    async def call(config: RunnableConfig, **arguments: Any) -> Any:
        made = {t.name: t for t in make_tools(await services())}[name]
        coroutine = getattr(made, "coroutine", None)
        assert coroutine is not None, f"{name} is an async tool"
        if "config" in inspect.signature(coroutine).parameters:
            arguments["config"] = config
        return await coroutine(**arguments)

    return StructuredTool(
        name=name,
        description=template.description,
        args_schema=template.args_schema,
        coroutine=call,
        response_format=template.response_format,
    )
