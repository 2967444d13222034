"""The embedding tool: texts in, unit vectors out, from the embedded model or Ollama servers.

Each model has one or more providers (Ollama servers configured for it; the embedded MiniLM for
`all-minilm`). A request is validated against the model's limits, answered from the cache where
it can be, and the rest micro-batched to the first provider whose circuit is closed, failing over
to the model's other providers. Only a caller that accepts another model (`allow_fallback`) is
sent on to the model's fallbacks; a collection never is, since its vector size is fixed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import httpx
import numpy as np

from citadel import metrics
from citadel.errors import BackendError, InvalidRequest, NotFound, Unavailable
from citadel.memory.cache import ByteCache
from citadel.settings import Settings
from citadel.tools.batching import EmbedBatch, MicroBatcher
from citadel.tools.circuit_breaker import CircuitBreaker, State, export_state
from citadel.tools.embedding_models import EMBEDDING_MODELS, EmbeddingModel
from citadel.tools.minilm import MiniLM

log = logging.getLogger(__name__)
_CACHE_HITS = metrics.EMBED_CACHE.labels("hit")
_CACHE_MISSES = metrics.EMBED_CACHE.labels("miss")

Closer = Callable[[], Awaitable[None]]

TRUNCATE_CHARS_PER_TOKEN = 32
"""`truncate` tokenises at most this many characters per token the model takes: ordinary text has
fewer than 10 per token, so the cut is the same, and a multi-megabyte text costs no more than a page."""
INLINE_TOKENIZE_CHARS = 20_000
"""Texts longer than this, together, are counted in a worker thread rather than on the event loop."""


@dataclass
class Embeddings:
    vectors: np.ndarray
    """(n, dims) float32, L2-normalised, in the order of the input texts."""
    model: str
    """The model that made them: the one asked for unless a fallback answered."""
    tokens: int
    cached: int


class _Provider:
    """One place a model's vectors come from, behind its own batcher and circuit breaker.

    The breaker sees each model call once, however many callers' texts the batch carried."""

    def __init__(
        self, name: str, embed: EmbedBatch, settings: Settings, aclose: Closer | None = None, parallel: int = 1
    ) -> None:
        self.name = name
        self.breaker = CircuitBreaker(
            name,
            failure_threshold=settings.breaker_failures,
            reset_timeout=settings.breaker_reset_seconds,
            on_change=export_state,
        )
        self._embed = embed
        self.batcher = MicroBatcher(
            name,
            self._guarded,
            max_batch=settings.embedding_batch_size,
            max_wait=settings.embedding_batch_wait_ms / 1000,
            parallel=parallel,
        )
        self._aclose = aclose

    async def _guarded(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        try:
            vectors = await self._embed(texts)
        except BackendError as error:
            if error.retryable:
                self.breaker.record_failure()
            metrics.BACKEND_CALLS.labels(self.name, "failure").inc()
            raise
        self.breaker.record_success()
        metrics.BACKEND_CALLS.labels(self.name, "success").inc()
        metrics.BACKEND_LATENCY.labels(self.name).observe(time.perf_counter() - started)
        return vectors

    async def aclose(self) -> None:
        await self.batcher.aclose()
        if self._aclose:
            await self._aclose()


def _ollama_embed(url: str, model: EmbeddingModel, timeout: float) -> tuple[str, EmbedBatch, Closer]:
    from langchain_ollama import OllamaEmbeddings  # only when an Ollama server is configured
    from ollama import ResponseError

    client = OllamaEmbeddings(model=model.ollama_name, base_url=url, client_kwargs={"timeout": timeout})
    backend = f"ollama:{model.name}@{url}"

    async def embed(texts: list[str]) -> np.ndarray:
        try:
            vectors = await client.aembed_documents(texts)
        except ResponseError as error:
            raise BackendError(
                backend, error.error, retryable=error.status_code >= 500 or error.status_code == 429
            ) from error
        except (httpx.TransportError, ConnectionError) as error:
            raise BackendError(backend, f"unreachable ({type(error).__name__})", retryable=True) from error
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != model.dims:
            raise BackendError(
                backend, f"returned vectors of shape {array.shape}, expected (n, {model.dims})", retryable=False
            )
        return array / np.clip(np.linalg.norm(array, axis=1, keepdims=True), 1e-12, None)

    async def aclose() -> None:
        # langchain-ollama builds its ollama clients itself and offers no close; close them here.
        if client._async_client is not None:
            await client._async_client.close()
        if client._client is not None:
            client._client.close()

    return backend, embed, aclose


class EmbeddingService:
    def __init__(self, settings: Settings, cache: ByteCache) -> None:
        self._settings = settings
        self._cache = cache
        self._minilm: MiniLM | None = None
        self._providers: dict[str, list[_Provider]] = {}

    async def start(self) -> None:
        """Load the embedded model and build each configured model's providers. The embedded model
        runs `embedding_threads` batches at once (one per core by default), each on one thread."""
        self._minilm = await asyncio.to_thread(MiniLM, 1)
        parallel = self._settings.embedding_threads or os.cpu_count() or 1
        minilm = self._minilm

        async def embed_locally(texts: list[str]) -> np.ndarray:
            return await asyncio.to_thread(minilm.encode, texts)

        for name, urls in self._settings.embedding_servers.items():
            model = self.model(name, configured_only=False)
            for url in urls:
                backend, embed, aclose = _ollama_embed(url, model, self._settings.embedding_timeout)
                self._providers.setdefault(name, []).append(_Provider(backend, embed, self._settings, aclose))
        # The embedded model serves all-minilm, last in line behind any Ollama server of the same model.
        self._providers.setdefault("all-minilm", []).append(
            _Provider("embedded:all-minilm", embed_locally, self._settings, parallel=parallel)
        )
        if self._settings.embedding_model not in self._providers:
            raise ValueError(
                f"CITADEL_EMBEDDING_MODEL={self._settings.embedding_model!r} has no server; "
                f"configure it in CITADEL_EMBEDDING_SERVERS or use one of {sorted(self._providers)}"
            )

    async def aclose(self) -> None:
        for providers in self._providers.values():
            for provider in providers:
                await provider.aclose()
        self._providers.clear()

    @property
    def default_model(self) -> str:
        return self._settings.embedding_model

    def models(self) -> list[EmbeddingModel]:
        """The models that have at least one provider, i.e. that requests may name."""
        return [EMBEDDING_MODELS[name] for name in self._providers]

    def providers(self, model: str) -> list[tuple[str, State]]:
        return [(p.name, p.breaker.state) for p in self._providers.get(model, [])]

    def model(self, name: str | None, *, configured_only: bool = True) -> EmbeddingModel:
        """The named model (or the default), or NotFound listing the ones that can be used."""
        name = name or self.default_model
        if name in EMBEDDING_MODELS and (not configured_only or name in self._providers):
            return EMBEDDING_MODELS[name]
        available = ", ".join(sorted(self._providers)) or "none"
        if name in EMBEDDING_MODELS:
            raise NotFound(
                f"embedding model {name!r} has no server configured (CITADEL_EMBEDDING_SERVERS); "
                f"available: {available}",
                param="model",
            )
        raise NotFound(f"unknown embedding model {name!r}; available: {available}", param="model")

    def count_tokens(self, texts: list[str]) -> list[int]:
        """WordPiece token counts: exact for all-minilm, an estimate for the Ollama models."""
        assert self._minilm is not None, "EmbeddingService.start() was not awaited"
        return self._minilm.count_tokens(texts)

    def truncate(self, text: str, model: EmbeddingModel) -> str:
        """`text` cut at a token boundary so that it fits `model` (for callers that only need its gist,
        such as routing; stored documents are chunked instead)."""
        assert self._minilm is not None, "EmbeddingService.start() was not awaited"
        # Tokenising a text costs time in proportion to its length, on the caller's thread (often the
        # event loop): look only at a head long enough to hold `max_tokens` tokens of ordinary text.
        text = text[: model.max_tokens * TRUNCATE_CHARS_PER_TOKEN]
        encoding = self._minilm.tokenizer.encode(text)
        if len(encoding.ids) <= model.max_tokens:
            return text
        keep = model.max_tokens - 1  # [SEP] comes after the last kept token
        return text[: encoding.offsets[keep - 1][1]]

    def _check_inputs(self, texts: list[str]) -> None:
        """Raise InvalidRequest if the list is empty or too long, or a text is empty."""
        if not texts:
            raise InvalidRequest("input must contain at least one text", param="input")
        if len(texts) > self._settings.embedding_max_inputs:
            raise InvalidRequest(
                f"input has {len(texts)} texts; at most {self._settings.embedding_max_inputs} per request",
                param="input",
            )
        for index, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise InvalidRequest(f"input[{index}] is empty", param="input")

    async def _count(self, texts: list[str], counts: list[int | None], model: EmbeddingModel) -> int:
        """Fill in the token counts not yet known (tokenising those texts), raise InvalidRequest
        naming the first text too long for `model`, and return the total."""
        unknown = [index for index, count in enumerate(counts) if count is None]
        if unknown:
            pending = [texts[index] for index in unknown]
            if sum(len(text) for text in pending) > INLINE_TOKENIZE_CHARS:  # seconds for megabytes: off the loop
                found = await asyncio.to_thread(self.count_tokens, pending)
            else:
                found = self.count_tokens(pending)
            for index, count in zip(unknown, found, strict=True):
                counts[index] = count
        known = cast("list[int]", counts)
        for index, count in enumerate(known):
            if count > model.max_tokens:
                raise InvalidRequest(
                    f"input[{index}] has {count} tokens; {model.name} takes at most {model.max_tokens}", param="input"
                )
        return sum(known)

    async def embed(
        self, texts: list[str], model: str | None = None, *, allow_fallback: bool = False, cache: bool = True
    ) -> Embeddings:
        """`cache=False` embeds afresh (and leaves the cache as it is). Texts are checked against the
        model's limits before any is embedded; a cached text's token count comes from the cache."""
        spec = self.model(model)
        self._check_inputs(texts)
        counts: list[int | None] = [None] * len(texts)
        chain = [spec.name]
        if allow_fallback:
            chain += [m for m in self._settings.embedding_fallbacks.get(spec.name, []) if m in self._providers]
        last_error: Unavailable | None = None
        for name in chain:
            try:
                if cache:
                    vectors, tokens, cached = await self._embed_cached(texts, name, counts, spec)
                else:
                    tokens = await self._count(texts, counts, spec)
                    vectors, cached = await self._embed_uncached(texts, name), 0
            except Unavailable as error:
                last_error = error
                continue
            if name != spec.name:
                log.warning("embedding model %s unavailable; answered with fallback %s", spec.name, name)
            return Embeddings(vectors=vectors, model=name, tokens=tokens, cached=cached)
        assert last_error is not None
        raise last_error

    async def _embed_cached(
        self, texts: list[str], model: str, counts: list[int | None], spec: EmbeddingModel
    ) -> tuple[np.ndarray, int, int]:
        """(vectors, tokens, texts found in the cache). An entry holds the vector's float32 bytes then
        the text's token count (uint32), so a hit needs no tokenising; any other length is a miss."""
        keys = [f"emb:{model}:{hashlib.blake2b(t.encode(), digest_size=16).hexdigest()}" for t in texts]
        found = await self._cache.get_many(keys)
        dims = EMBEDDING_MODELS[model].dims
        vectors = np.empty((len(texts), dims), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for index, blob in enumerate(found):
            if blob is not None and len(blob) == dims * 4 + 4:
                vectors[index] = np.frombuffer(blob, dtype=np.float32, count=dims)
                counts[index] = int.from_bytes(blob[-4:], "little")
            else:
                missing.setdefault(texts[index], []).append(index)
        tokens = await self._count(texts, counts, spec)
        cached = len(texts) - sum(len(rows) for rows in missing.values())
        _CACHE_HITS.inc(cached)
        if missing:
            _CACHE_MISSES.inc(len(texts) - cached)
            unique = list(missing)
            fresh = await self._embed_uncached(unique, model)
            store: dict[str, bytes] = {}
            for text, vector in zip(unique, fresh, strict=True):
                rows = missing[text]
                vectors[rows] = vector
                count = counts[rows[0]]
                assert count is not None
                store[keys[rows[0]]] = vector.astype(np.float32).tobytes() + count.to_bytes(4, "little")
            await self._cache.set_many(store)
        return vectors, tokens, cached

    async def _embed_uncached(self, texts: list[str], model: str) -> np.ndarray:
        errors: list[str] = []
        for provider in self._providers[model]:
            if provider.breaker.state is State.OPEN:
                errors.append(f"{provider.name}: circuit open")
                continue
            try:
                vectors = await provider.batcher.embed(texts)
            except BackendError as error:
                log.warning("embedding provider failed, trying the next: %s", error.message)
                errors.append(error.message)
                continue
            metrics.EMBEDDED_TEXTS.labels(model, provider.name.split(":")[0]).inc(len(texts))
            return vectors
        retry_after = min((p.breaker.retry_after() for p in self._providers[model]), default=5.0) or 1.0
        raise Unavailable(f"no server could embed with {model}: " + "; ".join(errors), retry_after=retry_after)
