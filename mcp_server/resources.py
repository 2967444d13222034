"""Resources (the graph registry, the collections, each thread by URI) and prompts.

- `citadel://graphs`: every graph, with its name, description, tool and input schema;
- `citadel://collections`: every collection, with its model, vector size and chunk count;
- `citadel://collections/{name}`: one collection;
- `citadel://threads/{thread_id}`: one of the caller's threads (messages, status, state);
- prompts `research` (answer a question from a collection) and `review_thread` (bring a thread in).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.types import EmbeddedResource, TextResourceContents

from citadel.core.services import Core
from citadel.errors import CitadelError, NotFound
from citadel.graphs.spec import ServedGraph
from citadel.mcp_server.graph_tools import tool_name
from citadel.mcp_server.state import state_of
from citadel.mcp_server.tools import read_thread

Ctx = Context[Core, Any]
JSON = "application/json"


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _resource_error(error: CitadelError) -> ResourceError:
    if isinstance(error, NotFound):
        return ResourceNotFoundError(error.message)
    return ResourceError(f"{error.code}: {error.message}")


def register(server: MCPServer[Core], specs: Sequence[ServedGraph], current: Callable[[], Core]) -> None:
    """`current` answers the state the server runs with (static resources get no Context)."""

    @server.resource(
        "citadel://graphs",
        name="graphs",
        title="Graph registry",
        description="Every graph Citadel runs: its name, what it does, the tool that runs it, its input schema.",
        mime_type=JSON,
    )
    def graphs() -> str:
        return _dumps(
            [
                {
                    "name": spec.name,
                    "description": spec.description,
                    "tool": tool_name(spec.name, spec.tool_name),
                    "input_schema": spec.input_schema(),
                }
                for spec in specs
            ]
        )

    @server.resource(
        "citadel://collections",
        name="collections",
        title="Collections",
        description="Every document collection: name, embedding model, vector size and chunk count.",
        mime_type=JSON,
    )
    async def collections() -> str:
        try:
            infos = await current().services.vectors.list_collections()
        except CitadelError as error:
            raise _resource_error(error) from error
        return _dumps([{"name": i.name, "model": i.model, "dims": i.dims, "chunks": i.chunks} for i in infos])

    @server.resource(
        "citadel://collections/{name}",
        name="collection",
        title="A collection",
        description="One collection: its embedding model, vector size and chunk count.",
        mime_type=JSON,
    )
    async def collection(name: str, ctx: Ctx) -> str:
        try:
            info = await state_of(ctx).services.vectors.info(name)
        except CitadelError as error:
            raise _resource_error(error) from error
        return _dumps({"name": info.name, "model": info.model, "dims": info.dims, "chunks": info.chunks})

    @server.resource(
        "citadel://threads/{thread_id}",
        name="thread",
        title="A thread",
        description="One of your conversation threads: its latest messages, status and state (as get_thread).",
        mime_type=JSON,
    )
    async def thread(thread_id: str, ctx: Ctx) -> str:
        try:
            view = await read_thread(ctx, thread_id)
        except CitadelError as error:
            raise _resource_error(error) from error
        return view.model_dump_json(indent=2)

    @server.prompt(
        name="research",
        title="Research a question",
        description="Answer a question from a document collection with Citadel's researcher, citing its sources.",
    )
    def research(question: str, collection: str | None = None) -> str:
        where = f"the collection {collection!r}" if collection else "Citadel's default collection"
        argument = f', "collection": {json.dumps(collection)}' if collection else ""
        return (
            f"Answer this question from the documents in {where}.\n\n"
            f"Call the ask_rag tool with "
            f'{{"messages": [{{"role": "user", "content": {json.dumps(question)}}}]{argument}}}. '
            "Base the answer on the sources it returns and cite their ids in brackets; if it found nothing "
            "relevant, say so rather than guessing. Keep its thread_id to ask follow-up questions.\n\n"
            f"Question: {question}"
        )

    @server.prompt(
        name="review_thread",
        title="Review a thread",
        description="Bring one of your Citadel threads into the conversation, to summarise it or carry it on.",
    )
    async def review_thread(thread_id: str, ctx: Ctx) -> list[Message]:
        try:
            view = await read_thread(ctx, thread_id)
        except CitadelError as error:
            raise ValueError(error.message) from error
        uri = f"citadel://threads/{thread_id}"
        contents = TextResourceContents(uri=uri, text=view.model_dump_json(indent=2), mime_type=JSON)
        return [
            UserMessage(EmbeddedResource(type="resource", resource=contents)),
            UserMessage(
                f"This is Citadel thread {thread_id} ({view.graph or 'no graph yet'}, status {view.status}). "
                "Summarise where it stands: what was asked, what was answered and from which sources, and what is "
                f"pending. To continue it, call the {tool_name(view.graph or 'assistant')} tool with "
                f"thread_id {thread_id!r}."
            ),
        ]
