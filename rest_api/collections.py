"""Collections of documents for vector search: `/v1/collections/...`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from citadel.core.dependencies import ServicesDep
from citadel.core.identity import require_role
from citadel.errors import InvalidRequest
from citadel.tools.vector_store import MAX_K, Document, SearchMode

router = APIRouter(prefix="/v1/collections", tags=["collections"])
# Managing collections and their documents is for developers; searching is for every user.
DEVELOPER = require_role("developer")


class CreateCollection(BaseModel):
    name: str = Field(description="1-64 letters, digits, '_', '-' or '.'.")
    model: str | None = Field(default=None, description="Embedding model; fixes the vector size.")
    hybrid: bool = Field(
        default=True,
        description="Keep keyword (BM25) vectors beside the embeddings, for `sparse` and `hybrid` search "
        "(on SciFact, hybrid ranks better than either alone: see the README).",
    )


class DocumentIn(BaseModel):
    id: str = Field(min_length=1, max_length=512)
    text: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpsertRequest(BaseModel):
    documents: list[DocumentIn] = Field(min_length=1, max_length=1000)


class DeleteRequest(BaseModel):
    ids: list[str] | None = Field(default=None, description="Document ids to delete.")
    filter: dict[str, Any] | None = Field(default=None, description="Or a metadata filter.")


class SearchRequest(BaseModel):
    query: str | None = Field(default=None, description="Text to search for (embedded with the collection's model).")
    vector: list[float] | None = Field(default=None, description="Or a vector of the collection's size.")
    k: int = Field(default=10, ge=1, le=MAX_K)
    filter: dict[str, Any] | None = None
    score_threshold: float | None = Field(
        default=None, ge=-1, le=1, description="Leave out hits whose cosine `similarity` is below this."
    )
    mode: SearchMode | None = Field(
        default=None,
        description="dense (embeddings), sparse (BM25 keywords) or hybrid (both, fused); "
        "default hybrid on a hybrid collection, else dense.",
    )


def _info(info: Any) -> dict[str, Any]:
    return asdict(info)


@router.get("")
async def list_collections(services: ServicesDep) -> dict[str, Any]:
    return {"collections": [_info(c) for c in await services.vectors.list_collections()]}


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=[DEVELOPER])
async def create_collection(body: CreateCollection, services: ServicesDep, response: Response) -> dict[str, Any]:
    info, created = await services.vectors.create_collection(body.name, body.model, hybrid=body.hybrid)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _info(info)


@router.get("/{name}")
async def get_collection(name: str, services: ServicesDep) -> dict[str, Any]:
    return _info(await services.vectors.info(name))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[DEVELOPER])
async def delete_collection(name: str, services: ServicesDep) -> None:
    await services.vectors.delete_collection(name)


@router.post("/{name}/points", dependencies=[DEVELOPER])
async def upsert_points(name: str, body: UpsertRequest, services: ServicesDep) -> dict[str, Any]:
    documents = [Document(d.id, d.text, d.metadata) for d in body.documents]
    result = await services.vectors.upsert(name, documents)
    return {"upserted": result.documents, "chunks": result.chunks}


@router.delete("/{name}/points", dependencies=[DEVELOPER])
async def delete_points(name: str, body: DeleteRequest, services: ServicesDep) -> dict[str, Any]:
    await services.vectors.delete(name, ids=body.ids, filter=body.filter)
    return {"deleted": True}


@router.post("/{name}/search")
async def search(name: str, body: SearchRequest, services: ServicesDep) -> dict[str, Any]:
    if body.query is not None and not body.query.strip():
        raise InvalidRequest("query must not be empty", param="query")
    hits = await services.vectors.search(
        name,
        query=body.query,
        vector=body.vector,
        k=body.k,
        filter=body.filter,
        score_threshold=body.score_threshold,
        mode=body.mode,
    )
    return {"results": [asdict(hit) for hit in hits]}
