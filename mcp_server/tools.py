"""The tools MCP clients call: embeddings, vector search and storage, routed generation, and reading
threads. Each is a plain async function over the same services the HTTP API uses; `register` adds
them to the server with their titles and annotations (which say truthfully whether a tool changes
anything, destroys anything, can be repeated safely, or reaches outside Citadel: none do).

Graph tools (`ask_assistant`, ...) live in `graph_tools`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from citadel.core.services import Core
from citadel.core.wire import to_jsonable
from citadel.errors import InvalidRequest
from citadel.mcp_server._bounds import clip, share, shrink
from citadel.mcp_server.auth import caller
from citadel.mcp_server.errors import tool_errors
from citadel.mcp_server.state import state_of
from citadel.tools.llm_backends import GenerationParams
from citadel.tools.vector_store import Document, SearchMode

Ctx = Context[Core, Any]

MAX_EMBED_TEXTS = 64
MAX_DOCUMENTS = 500
UPSERT_BATCH = 32
FILTER_HELP = (
    'Metadata filter: {"field": value} (equals), {"field": [a, b]} (any of), '
    '{"field": {"gte": 1, "lt": 5}} (range). Fields are the documents\' metadata keys.'
)


# --- results ------------------------------------------------------------------------------------
class Embedded(BaseModel):
    model: str = Field(description="The model that made the vectors.")
    dims: int = Field(description="Length of each vector.")
    vectors: list[list[float]] = Field(description="One unit-length vector per text, in the order given.")
    tokens: int = Field(description="Tokens the texts came to.")
    cached: int = Field(description="How many vectors came from the cache.")


class EmbeddingModelInfo(BaseModel):
    name: str
    dims: int = Field(description="Vector size.")
    max_tokens: int = Field(description="Longest text it takes, in tokens; longer texts are refused.")
    description: str
    default: bool = Field(description="Used when a call names no model.")
    providers: list[str] = Field(description="Where its vectors come from, with each circuit's state.")


class EmbeddingModels(BaseModel):
    models: list[EmbeddingModelInfo]


class Hit(BaseModel):
    id: str = Field(description="The document's id.")
    score: float = Field(
        description="What the search mode ranks by: cosine similarity (dense), BM25 (sparse) or the fused score "
        "(hybrid)."
    )
    similarity: float = Field(description="Cosine similarity of its best chunk to the query (-1 to 1), in any mode.")
    text: str = Field(description="That chunk's text.")
    metadata: dict[str, Any] = Field(description="The document's metadata.")


class SearchResults(BaseModel):
    collection: str
    model: str = Field(description="The collection's embedding model.")
    results: list[Hit] = Field(description="One per document, best first.")


class DocumentInput(BaseModel):
    id: str = Field(min_length=1, max_length=256, description="Your id for the document; reusing one replaces it.")
    text: str = Field(min_length=1, description="The text. Long texts are cut into overlapping chunks.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Any JSON fields to filter on; a `title` is embedded with every chunk."
    )


class Upserted(BaseModel):
    collection: str
    documents: int = Field(description="Documents added or replaced.")
    chunks: int = Field(description="Chunks they were cut into.")
    created: bool = Field(description="Whether the collection was created by this call.")


class Deleted(BaseModel):
    collection: str
    chunks_removed: int = Field(description="Chunks (parts of documents) removed.")
    chunks_left: int = Field(description="Chunks the collection still holds.")


class CollectionInfo(BaseModel):
    name: str
    model: str = Field(description="Embedding model its vectors are made with (queries use it too).")
    dims: int = Field(description="Vector size.")
    chunks: int = Field(description="Stored chunks (a document has one or more).")
    hybrid: bool = Field(description="Whether it keeps keyword vectors too (sparse and hybrid search).")


class Collections(BaseModel):
    collections: list[CollectionInfo]


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class Generated(BaseModel):
    text: str = Field(description="The answer.")
    backend: str = Field(description="The LLM backend that answered.")
    model: str = Field(description="The model that answered.")
    route: str | None = Field(description="Task class the request was routed as (code, analysis, ...), if any.")
    reason: str = Field(description="Why that backend was chosen.")
    passed_over: list[str] = Field(description="Backends tried first, and why each was passed over.")
    first_token_ms: float = Field(description="Time to the first token.")


class ThreadMessage(BaseModel):
    role: str = Field(description="user, assistant, system or tool.")
    content: str


class LastRun(BaseModel):
    run_id: str
    status: str = Field(description="pending, running, success, error or interrupted (cancelled).")
    error: str | None


class ThreadView(BaseModel):
    thread_id: str
    graph: str | None = Field(description="The graph the thread talks to.")
    status: str = Field(description="idle, busy, interrupted (waiting for approval) or error.")
    title: str | None
    created_at: str
    updated_at: str
    messages: list[ThreadMessage] = Field(description="The latest messages, oldest first.")
    earlier_messages: int = Field(description="Messages before those (not shown).")
    state: dict[str, Any] = Field(
        description="The rest of the thread's state: sources, specialist, progress, results, report, ..."
    )
    waiting_for: list[dict[str, Any]] = Field(description="Pending approval requests (empty unless interrupted).")
    last_run: LastRun | None = Field(description="The thread's latest run.")


# --- embeddings ----------------------------------------------------------------------------------
async def embed_texts(
    ctx: Ctx,
    texts: Annotated[
        list[str],
        Field(min_length=1, max_length=MAX_EMBED_TEXTS, description="Texts to embed (each within the model's limit)."),
    ],
    model: Annotated[
        str | None, Field(description="Embedding model (see list_embedding_models); the default if omitted.")
    ] = None,
) -> Annotated[CallToolResult, Embedded]:
    """Embed texts into unit-length vectors with one of Citadel's embedding models (the embedded
    all-MiniLM-L6-v2, 384 dimensions, unless others are configured). Vectors are cached, so repeated
    texts are cheap. Returns the vectors in input order, the model that made them and their size."""
    with tool_errors():
        result = await state_of(ctx).services.embeddings.embed(texts, model)
    vectors = [[round(float(x), 6) for x in row] for row in result.vectors]
    embedded = Embedded(
        model=result.model, dims=len(vectors[0]), vectors=vectors, tokens=result.tokens, cached=result.cached
    )
    # The text copy of the result is compact JSON: indented, 384 numbers a vector take a line each.
    return CallToolResult(
        content=[TextContent(type="text", text=embedded.model_dump_json())],
        structured_content=embedded.model_dump(mode="json"),
    )


async def list_embedding_models(ctx: Ctx) -> EmbeddingModels:
    """List the embedding models that can be used here: name, vector size, longest input, which is
    the default, and the servers behind each with their circuit state."""
    embeddings = state_of(ctx).services.embeddings
    return EmbeddingModels(
        models=[
            EmbeddingModelInfo(
                name=model.name,
                dims=model.dims,
                max_tokens=model.max_tokens,
                description=model.description,
                default=model.name == embeddings.default_model,
                providers=[f"{name} ({state.value})" for name, state in embeddings.providers(model.name)],
            )
            for model in embeddings.models()
        ]
    )


# --- vector search -------------------------------------------------------------------------------
async def search(
    ctx: Ctx,
    collection: Annotated[str, Field(description="Collection to search (see list_collections).")],
    query: Annotated[str, Field(min_length=1, description="What to look for, in words; it is embedded.")],
    k: Annotated[int, Field(ge=1, le=100, description="How many documents to return.")] = 5,
    filter: Annotated[dict[str, Any] | None, Field(description=FILTER_HELP)] = None,
    score_threshold: Annotated[
        float | None, Field(ge=-1, le=1, description="Leave out documents scoring below this similarity.")
    ] = None,
    mode: Annotated[
        SearchMode | None,
        Field(
            description="hybrid: meaning and keywords fused (the default on collections that keep keywords); "
            "dense: meaning only; sparse: keywords only (BM25)."
        ),
    ] = None,
) -> SearchResults:
    """Search a collection: the k documents that best match the query, best first, one result per
    document (its best-matching chunk), by meaning and keywords together (hybrid) unless `mode` says
    otherwise, with scores, cosine similarity and metadata. Filter on metadata to narrow it."""
    state = state_of(ctx)
    with tool_errors():
        info = await state.services.vectors.info(collection)
        hits = await state.services.vectors.search(
            collection, query=query, k=k, filter=filter, score_threshold=score_threshold, mode=mode
        )
    limit = share(state.settings.mcp_max_output_chars, len(hits))
    return SearchResults(
        collection=collection,
        model=info.model,
        results=[
            Hit(
                id=h.id,
                score=round(h.score, 4),
                similarity=round(h.similarity, 4),
                text=clip(h.text, limit),
                metadata=shrink(h.metadata, limit),
            )
            for h in hits
        ],
    )


async def upsert_documents(
    ctx: Ctx,
    collection: Annotated[str, Field(description="Collection to store into.")],
    documents: Annotated[
        list[DocumentInput], Field(min_length=1, max_length=MAX_DOCUMENTS, description="Documents to add or replace.")
    ],
    create: Annotated[
        bool, Field(description="Create the collection if it does not exist (else that is an error).")
    ] = False,
    model: Annotated[
        str | None, Field(description="Embedding model for a collection this call creates (default: the default).")
    ] = None,
) -> Upserted:
    """Add documents to a collection, or replace them: a document whose id is already there has all
    its old chunks replaced. Long texts are cut into overlapping chunks that keep the document's id
    and metadata. Reports progress as batches are embedded."""
    vectors = state_of(ctx).services.vectors
    created = False
    ids = [d.id for d in documents]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    with tool_errors():
        if duplicates:
            raise InvalidRequest(f"document ids appear more than once: {', '.join(duplicates[:5])}", param="documents")
        if create:
            _, created = await vectors.create_collection(collection, model)
        else:
            await vectors.info(collection)
        total_chunks = 0
        for start in range(0, len(documents), UPSERT_BATCH):
            batch = [Document(d.id, d.text, d.metadata) for d in documents[start : start + UPSERT_BATCH]]
            total_chunks += (await vectors.upsert(collection, batch)).chunks
            done = start + len(batch)
            await ctx.report_progress(done, len(documents), f"{done}/{len(documents)} documents embedded")
    return Upserted(collection=collection, documents=len(documents), chunks=total_chunks, created=created)


async def delete_documents(
    ctx: Ctx,
    collection: Annotated[str, Field(description="Collection to delete from.")],
    ids: Annotated[list[str] | None, Field(description="Ids of the documents to delete (all their chunks).")] = None,
    filter: Annotated[
        dict[str, Any] | None, Field(description="Delete every document matching this instead. " + FILTER_HELP)
    ] = None,
) -> Deleted:
    """Delete documents from a collection, by id or by metadata filter (give one of the two). Every
    chunk of each matching document goes; this cannot be undone."""
    vectors = state_of(ctx).services.vectors
    with tool_errors():
        before = (await vectors.info(collection)).chunks
        await vectors.delete(collection, ids=ids, filter=filter)
        after = (await vectors.info(collection)).chunks
    return Deleted(collection=collection, chunks_removed=before - after, chunks_left=after)


async def list_collections(ctx: Ctx) -> Collections:
    """List the collections that can be searched: name, embedding model, vector size and how many
    chunks each holds."""
    with tool_errors():
        infos = await state_of(ctx).services.vectors.list_collections()
    return Collections(
        collections=[
            CollectionInfo(name=i.name, model=i.model, dims=i.dims, chunks=i.chunks, hybrid=i.hybrid) for i in infos
        ]
    )


# --- generation ----------------------------------------------------------------------------------
def _conversation(prompt: str | None, messages: list[ChatMessage] | None, system: str | None) -> list[BaseMessage]:
    if (prompt is None) == (messages is None):
        raise InvalidRequest("give either prompt or messages (not both, not neither)", param="prompt")
    converted: list[BaseMessage] = [SystemMessage(system)] if system else []
    if prompt is not None:
        return [*converted, HumanMessage(prompt)]
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return converted + [kinds[m.role](m.content) for m in messages or []]


async def generate(
    ctx: Ctx,
    prompt: Annotated[str | None, Field(min_length=1, description="The question or instruction.")] = None,
    messages: Annotated[
        list[ChatMessage] | None, Field(min_length=1, description="A conversation instead of a prompt.")
    ] = None,
    system: Annotated[str | None, Field(description="A system prompt.")] = None,
    model: Annotated[
        str | None, Field(description="A model by name; omit to let Citadel route (and fail over).")
    ] = None,
    route: Annotated[
        str | None,
        Field(description="Force a task class (code, analysis, creative, chat) instead of classifying the prompt."),
    ] = None,
    max_tokens: Annotated[int | None, Field(ge=1, le=8192, description="Answer length in tokens.")] = None,
    temperature: Annotated[float, Field(ge=0, le=2, description="Sampling temperature.")] = 0.3,
) -> Generated:
    """Generate text with Citadel's LLM router: the prompt is classified by meaning (code, analysis,
    creative, chat) and sent to the backend suited to it, failing over to the next healthy one.
    Reports which backend and model answered, and why. Progress counts tokens as they arrive."""
    state = state_of(ctx)
    llm = state.services.llm
    limit = max_tokens or llm.default_max_tokens
    with tool_errors():
        conversation = _conversation(prompt, messages, system)
        stream = await llm.stream(
            conversation,
            model=model,
            route=route,
            params=GenerationParams(max_tokens=limit, temperature=temperature),
        )
        parts: list[str] = []
        try:
            async for chunk in stream:
                parts.append(chunk.text)
                if len(parts) % 16 == 1:  # the first token, then every 16th
                    await ctx.report_progress(len(parts), limit, f"{len(parts)} tokens")
        finally:
            await stream.aclose()
    decision = stream.decision
    return Generated(
        text=clip("".join(parts), state.settings.mcp_max_output_chars),
        backend=decision.backend,
        model=decision.model,
        route=decision.route,
        reason=decision.reason,
        passed_over=decision.attempts,
        first_token_ms=round(decision.first_token_seconds * 1000, 1),
    )


# --- threads -------------------------------------------------------------------------------------
ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


async def read_thread(ctx: Ctx, thread_id: str, limit: int = 20) -> ThreadView:
    """The thread as its owner (the caller) sees it; NotFound for anyone else's."""
    state = state_of(ctx)
    runs = state.runs
    # The last run first, then the thread: a run's end and its thread's release are written together,
    # so in this order an ended run is never shown beside a thread still marked busy.
    latest = await runs.store.list_runs(thread_id, limit=1)
    thread = await runs.store.get_thread(thread_id, caller(ctx).owner_filter)
    values: dict[str, Any] = {}
    waiting: list[dict[str, Any]] = []
    if thread.graph:
        snapshot = await state.registry.get(thread.graph).graph.aget_state({"configurable": {"thread_id": thread_id}})
        values = to_jsonable(snapshot.values) or {}
        waiting = [to_jsonable(i.value) for i in snapshot.interrupts]
    messages = [m for m in values.pop("messages", []) if isinstance(m, dict)]
    budget = state.settings.mcp_max_output_chars
    shown = messages[-limit:]
    text_limit = share(budget // 2, len(shown))
    return ThreadView(
        thread_id=thread.thread_id,
        graph=thread.graph,
        status=thread.status,
        title=thread.title,
        created_at=thread.created_at.isoformat(),
        updated_at=thread.updated_at.isoformat(),
        messages=[
            ThreadMessage(role=ROLES.get(str(m.get("type")), str(m.get("type"))), content=clip(_text(m), text_limit))
            for m in shown
        ],
        earlier_messages=len(messages) - len(shown),
        state=shrink(values, share(budget // 2, 8)) if values else {},
        waiting_for=shrink(waiting, 1000),
        last_run=LastRun(run_id=latest[0].run_id, status=latest[0].status, error=latest[0].error) if latest else None,
    )


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


async def get_thread(
    ctx: Ctx,
    thread_id: Annotated[str, Field(min_length=1, description="The thread id a graph tool returned.")],
    limit: Annotated[int, Field(ge=1, le=200, description="How many of the latest messages to show.")] = 20,
) -> ThreadView:
    """Read a conversation thread: its latest messages, status (interrupted = waiting for approval),
    what it is waiting for, and the rest of its state (sources of the last answer, the analyst's
    report, a workflow's progress and results). Only your own threads can be read."""
    with tool_errors():
        return await read_thread(ctx, thread_id, limit)


# --- registration --------------------------------------------------------------------------------
ANSWERED_AT_ONCE = frozenset({list_embedding_models.__name__, list_collections.__name__, get_thread.__name__})
"""Tools that read what the server holds: no model runs, no progress to report. Over streamable HTTP
a 2026-07-28 call of one is answered with one JSON response, without the SSE stream's set-up
(`http.py`); a tool added here must never report progress or send a notification."""


def _annotations(title: str, *, read_only: bool, destructive: bool = False, idempotent: bool) -> ToolAnnotations:
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=destructive if not read_only else None,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


def register(server: MCPServer[Core]) -> None:
    server.add_tool(
        embed_texts, title="Embed texts", annotations=_annotations("Embed texts", read_only=True, idempotent=True)
    )
    server.add_tool(
        list_embedding_models,
        title="List embedding models",
        annotations=_annotations("List embedding models", read_only=True, idempotent=True),
    )
    server.add_tool(
        search, title="Search a collection", annotations=_annotations("Search", read_only=True, idempotent=True)
    )
    server.add_tool(
        upsert_documents,
        title="Add or replace documents",
        annotations=_annotations("Add or replace documents", read_only=False, destructive=True, idempotent=True),
    )
    server.add_tool(
        delete_documents,
        title="Delete documents",
        annotations=_annotations("Delete documents", read_only=False, destructive=True, idempotent=True),
    )
    server.add_tool(
        list_collections,
        title="List collections",
        annotations=_annotations("List collections", read_only=True, idempotent=True),
    )
    server.add_tool(
        generate, title="Generate text", annotations=_annotations("Generate text", read_only=True, idempotent=False)
    )
    server.add_tool(
        get_thread, title="Read a thread", annotations=_annotations("Read a thread", read_only=True, idempotent=True)
    )
