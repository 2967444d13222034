"""Every long-lived client and model Citadel uses, opened together and closed together.

`open_services(settings)` is the one place resources are built: the HTTP app's lifespan uses it,
and so do the CLI commands that work without a server (`citadel ingest`, `citadel models`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from memory.cache import ByteCache, MemoryCache, RedisCache
from runtime.settings import Settings
from tools.embedded_chat import EmbeddedLLM
from tools.embeddings import EmbeddingService
from tools.llm_backends import ChatBackend, EmbeddedBackend, OllamaBackend
from tools.llm_router import LLMRouter
from tools.semantic_router import SemanticRouter, load_routes
from tools.vector_store import VectorStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    cache: ByteCache
    embeddings: EmbeddingService
    vectors: VectorStore
    llm: LLMRouter
    database: asyncpg.Pool | None


def default_routes_file() -> Path:
    return Path(str(resources.files("tools").joinpath("llm_routes.json")))


@contextlib.asynccontextmanager
async def open_services(settings: Settings, *, llm: bool = True) -> AsyncIterator[Services]:
    """Open everything `settings` configures; close it all on exit, in reverse order.

    `llm=False` skips the chat backends, for commands that only embed and store."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        cache: ByteCache
        if settings.redis_url:
            cache = RedisCache(settings.redis_url, settings.embedding_cache_ttl)
        else:
            cache = MemoryCache(settings.embedding_cache_size)
        stack.push_async_callback(cache.aclose)

        embeddings = EmbeddingService(settings, cache)
        stack.push_async_callback(embeddings.aclose)
        await embeddings.start()

        vectors = VectorStore(settings, embeddings)
        stack.push_async_callback(vectors.aclose)
        await vectors.start()

        database: asyncpg.Pool | None = None
        if settings.database_url:
            database = await _open_database(settings, settings.database_url)
            stack.push_async_callback(database.close)

        router = await _open_router(settings, embeddings) if llm else None
        if router is not None:
            stack.push_async_callback(router.aclose)
        yield Services(
            settings=settings,
            cache=cache,
            embeddings=embeddings,
            vectors=vectors,
            llm=router,  # type: ignore[arg-type]  # None only where the caller asked for no LLM
            database=database,
        )


def redact_url(url: str) -> str:
    """A service URL without its credentials, fit for logs and error messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{host}{port}", parts.path, "", ""))


async def _open_database(settings: Settings, url: str) -> asyncpg.Pool:
    try:
        return await asyncpg.create_pool(
            url,
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
            timeout=settings.database_timeout,
            command_timeout=settings.database_timeout,
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        raise RuntimeError(
            f"cannot reach PostgreSQL at {redact_url(url)} (CITADEL_DATABASE_URL): {type(error).__name__}: {error}"
        ) from error


async def _open_router(settings: Settings, embeddings: EmbeddingService) -> LLMRouter:
    backends: list[ChatBackend] = [OllamaBackend(server) for server in settings.llm_servers]
    if settings.local_llm:
        llm = EmbeddedLLM(
            settings.local_llm_path, context=settings.local_llm_context, threads=settings.local_llm_threads
        )
        backends.append(EmbeddedBackend(llm))
    semantic = SemanticRouter(
        load_routes(settings.llm_routes_file or default_routes_file()),
        embeddings,
        threshold=settings.llm_route_threshold,
    )
    await semantic.start()
    router = LLMRouter(settings, backends, semantic)
    await router.start()
    return router
