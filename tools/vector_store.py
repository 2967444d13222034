"""The vector-search tool: collections of documents, each collection tied to one embedding model.

Built on qdrant-client's async client, the same code for a Qdrant server (`CITADEL_QDRANT_URL`)
and for Qdrant's local mode in the data directory. A collection's one named dense vector is called
after its model, so the model (and with it the vector size) is read back from Qdrant itself.

A hybrid collection (the default) also keeps a sparse keyword vector per chunk (`bm25`: term
weights from `citadel.tools.bm25`, IDF applied by Qdrant). Search then runs in one of three modes:
`dense` (cosine similarity of the embeddings), `sparse` (BM25) or `hybrid`, both fused by Qdrant's
Query API with distribution-based score fusion (DBSF: each list's scores normalised by their mean
and spread, then summed), which measured better than reciprocal-rank fusion on SciFact.

Documents longer than the model's training length are cut into chunks (each keeps its document's
id and metadata); search returns the best chunk per document.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from langchain_text_splitters import RecursiveCharacterTextSplitter

from citadel.errors import Conflict, InvalidRequest, NotFound
from citadel.settings import Settings
from citadel.tools import bm25
from citadel.tools.embedding_models import EMBEDDING_MODELS, EmbeddingModel
from citadel.tools.embeddings import EmbeddingService

if TYPE_CHECKING:  # qdrant-client is imported when the store is first used (about 47 MB and 0.5-1 s)
    from qdrant_client import AsyncQdrantClient, models

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_POINT_NAMESPACE = uuid.UUID("6f1d3f0e-4d8a-4b8e-9a57-3c1e2d7b9c10")
MAX_K = 100
SPARSE = "bm25"
"""The name of a hybrid collection's sparse vector."""
SearchMode = Literal["dense", "sparse", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = ("dense", "sparse", "hybrid")
PREFETCH = 100
"""Chunks each of the dense and sparse searches hands to the fusion in hybrid mode."""


@dataclass
class Document:
    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchHit:
    id: str
    score: float
    """What the mode ranks by: cosine similarity (dense), BM25 (sparse) or the fused score (hybrid)."""
    text: str
    metadata: dict[str, Any]
    similarity: float
    """Cosine similarity of the chunk's embedding to the query's, whatever the mode: a relevance
    measure on one scale for every mode."""


@dataclass
class CollectionInfo:
    name: str
    model: str
    dims: int
    chunks: int
    hybrid: bool
    """Whether it keeps keyword (sparse) vectors beside the embeddings, for sparse and hybrid search."""


@dataclass
class PreparedUpsert:
    document_ids: list[str]
    points: list[models.PointStruct]


@dataclass
class UpsertResult:
    documents: int
    chunks: int


def point_id(document_id: str, chunk: int) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{document_id}\x00{chunk}"))


def metadata_filter(spec: dict[str, Any] | None) -> models.Filter | None:
    """A Qdrant filter from Citadel's simple form: `{"field": value}` (equals), `{"field": [a, b]}`
    (any of), `{"field": {"gte": 1, "lt": 5}}` (range). Fields are document metadata keys."""
    from qdrant_client import models

    if not spec:
        return None
    if not isinstance(spec, dict):
        raise InvalidRequest("filter must be an object of metadata field -> value", param="filter")
    conditions: list[models.Condition] = []
    for key, value in spec.items():
        path = f"metadata.{key}"
        if isinstance(value, bool | str | int) and not isinstance(value, float):
            conditions.append(models.FieldCondition(key=path, match=models.MatchValue(value=value)))
        elif isinstance(value, list) and value and all(isinstance(v, str | int) for v in value):
            conditions.append(models.FieldCondition(key=path, match=models.MatchAny(any=value)))
        elif isinstance(value, dict) and value and set(value) <= {"gt", "gte", "lt", "lte"}:
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
                raise InvalidRequest(f"filter.{key}: range bounds must be numbers", param="filter")
            conditions.append(models.FieldCondition(key=path, range=models.Range(**value)))
        else:
            raise InvalidRequest(
                f"filter.{key}: expected a string, integer or boolean, a non-empty list of them, "
                "or a range object with gt/gte/lt/lte",
                param="filter",
            )
    return models.Filter(must=conditions)


class VectorStore:
    def __init__(self, settings: Settings, embeddings: EmbeddingService, *, chunk_tokens: int | None = None) -> None:
        """`chunk_tokens`: the length documents are cut into when not their model's training length
        (the SciFact eval's chunk-length sweep)."""
        self._settings = settings
        self._embeddings = embeddings
        self._chunk_tokens = chunk_tokens
        self._client: AsyncQdrantClient | None = None
        self._opening = asyncio.Lock()
        self._owner_lock: int | None = None
        # The splitter measures every word it may cut at (about 200 calls a SciFact abstract): the
        # same words recur, so their token counts are remembered (exact, bounded).
        self._piece_tokens = functools.lru_cache(maxsize=1 << 16)(self._count_piece_tokens)

    @property
    def location(self) -> str:
        return self._settings.qdrant_url or str(self._settings.data_dir / "qdrant")

    async def start(self) -> None:
        """Claims local mode's directory for this process (as Qdrant's own lock would); the client
        itself is opened on first use, so a server whose graphs never search never loads it."""
        if self._settings.qdrant_url:
            return
        path = self._settings.data_dir / "qdrant"
        path.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path / ".citadel-owner", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise RuntimeError(self._in_use(path)) from None
        self._owner_lock = descriptor

    @staticmethod
    def _in_use(path: object) -> str:
        return (
            f"the local vector store {path} is in use by another Citadel process; stop it, "
            "or send the work to it over HTTP (e.g. `citadel ingest --server URL`)"
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._owner_lock is not None:
            os.close(self._owner_lock)  # closing the descriptor releases the lock
            self._owner_lock = None

    async def qdrant(self) -> AsyncQdrantClient:
        """The Qdrant client, opened on first use."""
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    # Local mode reads every stored point from disk as it opens: off the event loop.
                    self._client = await asyncio.to_thread(self._open)
        return self._client

    def _open(self) -> AsyncQdrantClient:
        from qdrant_client import AsyncQdrantClient

        if self._settings.qdrant_url:
            key = self._settings.qdrant_api_key.get_secret_value() if self._settings.qdrant_api_key else None
            return AsyncQdrantClient(url=self._settings.qdrant_url, api_key=key, timeout=30)
        assert self._owner_lock is not None, "VectorStore.start() was not awaited"
        path = self._settings.data_dir / "qdrant"
        try:
            return AsyncQdrantClient(path=str(path))
        except RuntimeError as error:  # portalocker: a process other than a Citadel holds the store
            raise RuntimeError(self._in_use(path)) from error

    async def ping(self) -> None:
        """A Qdrant server is asked; local mode is this process's own (its directory claimed at start)
        and is not opened just to be probed."""
        if self._settings.qdrant_url or self._client is not None:
            qdrant = await self.qdrant()
            await qdrant.get_collections()

    # --- collections --------------------------------------------------------------------------
    async def list_collections(self) -> list[CollectionInfo]:
        qdrant = await self.qdrant()
        response = await qdrant.get_collections()
        infos = [await self.info(c.name) for c in response.collections]
        return sorted(infos, key=lambda info: info.name)

    async def info(self, name: str) -> CollectionInfo:
        qdrant = await self.qdrant()
        if not _NAME.match(name) or not await qdrant.collection_exists(name):
            raise NotFound(f"collection {name!r} does not exist", param="collection")
        details = await qdrant.get_collection(name)
        vectors = details.config.params.vectors
        if not isinstance(vectors, dict) or len(vectors) != 1:
            raise Conflict(f"collection {name!r} was not made by Citadel (expected one named vector)")
        ((model, params),) = vectors.items()
        hybrid = SPARSE in (details.config.params.sparse_vectors or {})
        count = await qdrant.count(name, exact=True)
        return CollectionInfo(name=name, model=model, dims=params.size, chunks=count.count, hybrid=hybrid)

    async def create_collection(
        self, name: str, model: str | None = None, *, hybrid: bool = True
    ) -> tuple[CollectionInfo, bool]:
        """(info, created). Creating an existing collection the same way is a no-op."""
        if not _NAME.match(name):
            raise InvalidRequest(
                "collection name must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit",
                param="name",
            )
        from qdrant_client import models

        spec = self._embeddings.model(model)
        qdrant = await self.qdrant()
        if await qdrant.collection_exists(name):
            info = await self.info(name)
            if info.model != spec.name:
                raise Conflict(f"collection {name!r} exists for model {info.model!r}, not {spec.name!r}", param="model")
            if info.hybrid != hybrid:
                raise Conflict(f"collection {name!r} exists with hybrid={str(info.hybrid).lower()}", param="hybrid")
            return info, False
        await qdrant.create_collection(
            name,
            vectors_config={spec.name: models.VectorParams(size=spec.dims, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)} if hybrid else None,
        )
        if self._settings.qdrant_url:  # local mode has no payload indexes
            await qdrant.create_payload_index(name, "doc_id", models.PayloadSchemaType.KEYWORD)
        return CollectionInfo(name=name, model=spec.name, dims=spec.dims, chunks=0, hybrid=hybrid), True

    async def delete_collection(self, name: str) -> None:
        await self.info(name)
        qdrant = await self.qdrant()
        await qdrant.delete_collection(name)

    # --- documents ----------------------------------------------------------------------------
    def chunk(self, text: str, model: EmbeddingModel) -> list[str]:
        limit = min(self._chunk_tokens or model.chunk_tokens, model.max_tokens) - 2  # [CLS] and [SEP]
        if self._embeddings.count_tokens([text])[0] - 2 <= limit:
            return [text]
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=limit,
            chunk_overlap=limit // 8,
            length_function=self._piece_tokens,
        )
        return splitter.split_text(text)

    def _count_piece_tokens(self, piece: str) -> int:
        return self._embeddings.count_tokens([piece])[0] - 2  # [CLS] and [SEP]

    async def upsert(self, name: str, documents: list[Document]) -> UpsertResult:
        """Add or replace documents. A document's old chunks are removed once its new ones are embedded."""
        return await self.write(name, await self.prepare(name, documents))

    async def prepare(self, name: str, documents: list[Document]) -> PreparedUpsert:
        """The first half of `upsert`: documents checked, chunked and embedded, nothing written yet
        (`ingest` embeds the next batch while the last one is written)."""
        from qdrant_client import models

        info = await self.info(name)
        model = EMBEDDING_MODELS[info.model]
        if not documents:
            raise InvalidRequest("documents must not be empty", param="documents")
        seen: set[str] = set()
        for index, doc in enumerate(documents):
            if not doc.id or not doc.text.strip():
                raise InvalidRequest(f"documents[{index}] needs a non-empty id and text", param="documents")
            if doc.id in seen:
                raise InvalidRequest(f"documents[{index}]: id {doc.id!r} appears twice", param="documents")
            seen.add(doc.id)
        points_text: list[tuple[Document, int, int, str]] = []
        for doc in documents:
            chunks = self.chunk(doc.text, model)
            points_text += [(doc, i, len(chunks), piece) for i, piece in enumerate(chunks)]
        # A title, when a document has one, is part of what each of its chunks means.
        texts = [
            f"{doc.metadata['title']} {piece}" if doc.metadata.get("title") else piece
            for doc, _, _, piece in points_text
        ]
        vectors = await self._embed_documents(texts, model)
        points = []
        for (doc, chunk, total, piece), text, vector in zip(points_text, texts, vectors, strict=True):
            named: dict[str, Any] = {model.name: vector.tolist()}
            if info.hybrid:
                named[SPARSE] = bm25.document_vector(text)
            payload = {"doc_id": doc.id, "chunk": chunk, "chunks": total, "text": piece, "metadata": doc.metadata}
            points.append(models.PointStruct(id=point_id(doc.id, chunk), vector=named, payload=payload))
        return PreparedUpsert(document_ids=list(seen), points=points)

    async def write(self, name: str, prepared: PreparedUpsert) -> UpsertResult:
        """The second half of `upsert`: the documents' old chunks replaced by the prepared ones."""
        qdrant = await self.qdrant()
        await qdrant.delete(name, points_selector=self._doc_filter(prepared.document_ids), wait=True)
        await qdrant.upsert(name, points=prepared.points, wait=True)
        return UpsertResult(documents=len(prepared.document_ids), chunks=len(prepared.points))

    async def _embed_documents(self, texts: list[str], model: EmbeddingModel) -> np.ndarray:
        """Vectors for `texts`, embedded shortest first: the model's batches then hold texts of
        about one length, so none is padded far beyond its own (`benchmarks/ingest.py` measures the effect).

        The texts are tokenised once here (in one batch) for both the order and the fit: only a chunk
        that a title pushed past the model's limit is cut. Stored documents bypass the embedding
        cache, which is for texts asked again (queries), not for chunks embedded once."""
        lengths = self._embeddings.count_tokens(texts)
        fitted = [
            self._embeddings.truncate(text, model) if length > model.max_tokens else text
            for text, length in zip(texts, lengths, strict=True)
        ]
        order = sorted(range(len(fitted)), key=lengths.__getitem__)
        embedded = await self._embeddings.embed([fitted[i] for i in order], model.name, cache=False)
        vectors = np.empty_like(embedded.vectors)
        vectors[order] = embedded.vectors
        return vectors

    async def has_document(self, name: str, document_id: str) -> bool:
        await self.info(name)
        qdrant = await self.qdrant()
        found = await qdrant.count(name, count_filter=self._doc_filter([document_id]), exact=True)
        return found.count > 0

    async def delete(self, name: str, ids: list[str] | None = None, filter: dict[str, Any] | None = None) -> None:
        await self.info(name)
        if bool(ids) == bool(filter):
            raise InvalidRequest("give either ids or filter (not both, not neither)", param="ids")
        selector = self._doc_filter(ids) if ids else metadata_filter(filter)
        assert selector is not None
        qdrant = await self.qdrant()
        await qdrant.delete(name, points_selector=selector, wait=True)

    @staticmethod
    def _doc_filter(ids: list[str]) -> models.Filter:
        from qdrant_client import models

        return models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=ids))])

    async def search(
        self,
        name: str,
        query: str | None = None,
        vector: list[float] | None = None,
        k: int = 10,
        filter: dict[str, Any] | None = None,
        score_threshold: float | None = None,
        mode: SearchMode | None = None,
    ) -> list[SearchHit]:
        """The `k` best documents. `mode` defaults to hybrid on a hybrid collection (dense with only
        a vector); `score_threshold` bounds the hits' cosine `similarity` in every mode."""
        info = await self.info(name)
        if (query is None) == (vector is None):
            raise InvalidRequest("give either query (text) or vector", param="query")
        if not 1 <= k <= MAX_K:
            raise InvalidRequest(f"k must be between 1 and {MAX_K}", param="k")
        if mode is None:
            mode = "hybrid" if info.hybrid and query is not None else "dense"
        if mode not in SEARCH_MODES:
            raise InvalidRequest(f"mode must be one of {', '.join(SEARCH_MODES)}", param="mode")
        if mode != "dense" and not info.hybrid:
            raise InvalidRequest(
                f"collection {name!r} keeps no keyword vectors (created with hybrid=false); use mode dense",
                param="mode",
            )
        if mode != "dense" and query is None:
            raise InvalidRequest(f"{mode} search needs a text query, not a vector", param="mode")
        if vector is not None:
            if len(vector) != info.dims:
                raise InvalidRequest(
                    f"vector has {len(vector)} dimensions; collection {name!r} ({info.model}) takes {info.dims}",
                    param="vector",
                )
        else:
            assert query is not None
            vector = (await self._embeddings.embed([query], info.model)).vectors[0].tolist()
        search = _Search(
            using=info.model, vector=vector, filter=metadata_filter(filter), score_threshold=score_threshold
        )
        if mode != "dense":
            assert query is not None
            keywords = bm25.query_vector(query)
            if not keywords.indices:  # only stop words: nothing for keywords to match
                if mode == "sparse":
                    return []
                return await self.search(name, vector=vector, k=k, filter=filter, score_threshold=score_threshold)
            search.keywords, search.fused = keywords, mode == "hybrid"
        return [_hit(point, info.model, vector) for point in await self._best_chunks(name, search, k)]

    async def _best_chunks(self, name: str, search: _Search, k: int) -> list[models.ScoredPoint]:
        """The best chunk of each of the `k` best documents, best first."""
        qdrant = await self.qdrant()
        if self._settings.qdrant_url:
            response = await qdrant.query_points_groups(
                name, group_by="doc_id", limit=k, group_size=1, **search.arguments(PREFETCH)
            )
            return search.above_threshold([group.hits[0] for group in response.groups])
        # Local mode groups by building every point of the collection, payload copied, on every
        # query (0.7 s a query at 9k chunks). Take the best chunks instead, more until k documents.
        limit = 4 * k
        while True:
            found = await qdrant.query_points(name, limit=limit, **search.arguments(max(PREFETCH, limit)))
            best: dict[str, models.ScoredPoint] = {}
            for point in search.above_threshold(found.points):
                best.setdefault(str((point.payload or {}).get("doc_id")), point)
            if len(best) >= k or len(found.points) < limit:
                return list(best.values())[:k]
            limit *= 4


@dataclass
class _Search:
    """One search's Query API arguments: the dense query alone, the keywords alone, or both fused."""

    using: str
    vector: list[float]
    filter: models.Filter | None
    score_threshold: float | None
    keywords: models.SparseVector | None = None
    fused: bool = False

    def arguments(self, prefetch: int) -> dict[str, Any]:
        from qdrant_client import models

        common: dict[str, Any] = {"query_filter": self.filter, "with_payload": True, "with_vectors": [self.using]}
        if self.keywords is None:  # dense: Qdrant applies the similarity threshold itself
            return {"query": self.vector, "using": self.using, "score_threshold": self.score_threshold, **common}
        if not self.fused:
            return {"query": self.keywords, "using": SPARSE, **common}
        return {
            "prefetch": [
                models.Prefetch(query=self.vector, using=self.using, filter=self.filter, limit=prefetch),
                models.Prefetch(query=self.keywords, using=SPARSE, filter=self.filter, limit=prefetch),
            ],
            "query": models.FusionQuery(fusion=models.Fusion.DBSF),
            **common,
        }

    def above_threshold(self, points: list[models.ScoredPoint]) -> list[models.ScoredPoint]:
        if self.score_threshold is None or self.keywords is None:
            return points
        threshold = self.score_threshold
        return [p for p in points if _similarity(p, self.using, self.vector) >= threshold]


def _similarity(point: models.ScoredPoint, using: str, query: list[float]) -> float:
    """Cosine similarity (Qdrant keeps cosine collections' vectors at unit length)."""
    stored = point.vector.get(using) if isinstance(point.vector, dict) else None
    if not isinstance(stored, list):
        return 0.0
    wanted = np.asarray(query, dtype=np.float32)
    return float(np.dot(np.asarray(stored, dtype=np.float32), wanted) / max(float(np.linalg.norm(wanted)), 1e-12))


def _hit(point: models.ScoredPoint, using: str, query: list[float]) -> SearchHit:
    payload = point.payload or {}
    return SearchHit(
        id=str(payload.get("doc_id", point.id)),
        score=point.score,
        text=payload.get("text", ""),
        metadata=payload.get("metadata", {}),
        similarity=round(_similarity(point, using, query), 6),
    )
