"""The plan's API (`/api/v1/...`, its appendix A.1): thin routes over the functions the
OpenAI-compatible and collection routes use, for clients written against the plan.

- `POST /api/v1/embed {"text", "model", "cache"}`: vectors for a text or a list of texts;
- `POST /api/v1/vectors/store` and `/update {"id", "text", "metadata", "collection"?}`: one document
  in a collection (the default one, made on first use, unless `collection` names another); update
  answers 404 when the document is not there;
- `POST /api/v1/vectors/search {"query", "limit", "collection"?, "filter"?, "mode"?}`;
- `DELETE /api/v1/vectors/{vector_id}?collection=`: the document, all its chunks;
- `GET /api/v1/status`: models, backends, circuits and runs in flight.
`GET /health/detailed` lives with the other health routes.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from citadel.core.dependencies import RunsDep, ServicesDep
from citadel.core.identity import require_role
from citadel.core.services import Services
from citadel.errors import InvalidRequest, NotFound
from citadel.tools.vector_store import MAX_K, Document, SearchMode

router = APIRouter(prefix="/api/v1", tags=["the plan's API"])
DEVELOPER = require_role("developer")


class EmbedRequest(BaseModel):
    text: str | list[str] = Field(description="A text, or a list of texts.")
    model: str | None = Field(default=None, description="Embedding model; the configured default when omitted.")
    cache: bool = Field(default=True, description="Answer from (and fill) the embedding cache.")


class StoreRequest(BaseModel):
    id: str = Field(min_length=1, max_length=512, description="The document's id; storing it again replaces it.")
    text: str = Field(min_length=1, description="The text; long texts are cut into chunks.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="JSON fields to filter on.")
    collection: str | None = Field(default=None, description="Collection (default: CITADEL_DEFAULT_COLLECTION).")


class VectorSearchRequest(BaseModel):
    query: str = Field(min_length=1, description="What to look for, in words.")
    limit: int = Field(default=10, ge=1, le=MAX_K, description="How many documents to return.")
    collection: str | None = Field(default=None, description="Collection (default: CITADEL_DEFAULT_COLLECTION).")
    filter: dict[str, Any] | None = Field(default=None, description="Metadata filter, as in /v1/collections.")
    mode: SearchMode | None = Field(default=None, description="dense, sparse or hybrid (see /v1/collections).")


@router.post("/embed")
async def embed(body: EmbedRequest, services: ServicesDep) -> dict[str, Any]:
    texts = [body.text] if isinstance(body.text, str) else body.text
    result = await services.embeddings.embed(texts, body.model, cache=body.cache)
    vectors = result.vectors.tolist()
    shaped: dict[str, Any] = {"embedding": vectors[0]} if isinstance(body.text, str) else {"embeddings": vectors}
    return {**shaped, "model": result.model, "dims": len(vectors[0]), "tokens": result.tokens, "cached": result.cached}


async def _store(services: Services, body: StoreRequest, *, must_exist: bool) -> dict[str, Any]:
    name = body.collection or services.settings.default_collection
    if must_exist:
        if not await services.vectors.has_document(name, body.id):
            raise NotFound(f"no document {body.id!r} in collection {name!r}; store it first", param="id")
    elif body.collection is None:  # the default collection is made on first use
        try:
            await services.vectors.info(name)
        except NotFound:
            await services.vectors.create_collection(name)
    result = await services.vectors.upsert(name, [Document(body.id, body.text, body.metadata)])
    return {"id": body.id, "collection": name, "chunks": result.chunks}


@router.post("/vectors/store", dependencies=[DEVELOPER])
async def store(body: StoreRequest, services: ServicesDep) -> dict[str, Any]:
    return await _store(services, body, must_exist=False)


@router.post("/vectors/update", dependencies=[DEVELOPER])
async def update(body: StoreRequest, services: ServicesDep) -> dict[str, Any]:
    return await _store(services, body, must_exist=True)


@router.post("/vectors/search")
async def search(body: VectorSearchRequest, services: ServicesDep) -> dict[str, Any]:
    if not body.query.strip():
        raise InvalidRequest("query must not be empty", param="query")
    name = body.collection or services.settings.default_collection
    hits = await services.vectors.search(name, query=body.query, k=body.limit, filter=body.filter, mode=body.mode)
    return {"collection": name, "results": [asdict(hit) for hit in hits]}


@router.delete("/vectors/{vector_id}", dependencies=[DEVELOPER])
async def delete(
    vector_id: str, services: ServicesDep, collection: str | None = Query(default=None, description="Collection.")
) -> dict[str, Any]:
    name = collection or services.settings.default_collection
    if not await services.vectors.has_document(name, vector_id):
        raise NotFound(f"no document {vector_id!r} in collection {name!r}", param="vector_id")
    await services.vectors.delete(name, ids=[vector_id])
    return {"deleted": vector_id, "collection": name}


@router.get("/status")
async def status(services: ServicesDep, runs: RunsDep) -> dict[str, Any]:
    embeddings = services.embeddings
    models = [
        {
            "name": model.name,
            "kind": "embedding",
            "dims": model.dims,
            "default": model.name == embeddings.default_model,
            "providers": [{"name": name, "circuit": state.value} for name, state in embeddings.providers(model.name)],
        }
        for model in embeddings.models()
    ]
    backends: list[dict[str, Any]] = []
    if services.llm is not None:
        for backend in services.llm.backends:
            healthy, detail = services.llm.health[backend.name]
            backends.append(
                {
                    "name": backend.name,
                    "kind": "llm",
                    "models": backend.models,
                    "healthy": healthy,
                    "health": detail,
                    "circuit": services.llm.breakers[backend.name].state.value,
                    "tool_calling": backend.tool_calling,
                }
            )
    circuits = {name: state.value for m in embeddings.models() for name, state in embeddings.providers(m.name)}
    circuits |= {backend["name"]: backend["circuit"] for backend in backends}
    return {
        "models": models,
        "backends": backends,
        "circuits": circuits,
        "runs_in_flight": await runs.store.count_active_runs(),
        "vectors": "qdrant server" if services.settings.qdrant_url else "qdrant local mode",
    }
