"""Every long-lived client and model Citadel uses, opened together and closed together.

`open_services(settings)` is the one place resources are built: the HTTP app's lifespan uses it,
and so do the CLI commands that work without a server (`citadel ingest`, `citadel models`). What it
yields is the core's `Services` value, which the faces receive.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from langgraph.store.base import IndexConfig
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from citadel.core.services import Services
from citadel.memory.app_store import AppStore
from citadel.memory.cache import ByteCache, MemoryCache, RedisCache
from citadel.memory.database import create_engine, ensure_schema, ping, redact_url
from citadel.memory.persistence import open_persistence
from citadel.settings import Settings
from citadel.tools.embedded_chat import EmbeddedLLM
from citadel.tools.embeddings import EmbeddingService
from citadel.tools.llm_backends import ChatBackend, EmbeddedBackend, OllamaBackend
from citadel.tools.llm_router import LLMRouter
from citadel.tools.semantic_router import SemanticRouter, load_routes
from citadel.tools.vector_store import VectorStore

log = logging.getLogger(__name__)


def memory_index(embeddings: EmbeddingService) -> IndexConfig:
    """The long-term store's index: memories embedded with the default model (texts fitted to it)."""
    model = embeddings.model(None)

    async def embed(texts: Sequence[str]) -> list[list[float]]:
        fitted = [embeddings.truncate(t, model) or " " for t in texts]
        vectors: Any = (await embeddings.embed(fitted, model.name)).vectors
        return vectors.tolist()  # type: ignore[no-any-return]

    return {"dims": model.dims, "embed": embed, "fields": ["text"]}


def default_routes_file() -> Path:
    return Path(str(resources.files("citadel.tools").joinpath("llm_routes.json")))


@contextlib.asynccontextmanager
async def open_services(settings: Settings, *, llm: bool = True, state: bool = False) -> AsyncIterator[Services]:
    """Open everything `settings` configures; close it all on exit, in reverse order.

    `llm=False` skips the chat backends; `state=True` opens the databases (app tables, checkpoints,
    long-term memory), which the server needs and commands that only embed and store do not."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        cache: ByteCache
        if settings.redis_url:
            cache = RedisCache(
                settings.redis_url,
                settings.embedding_cache_ttl,
                timeout=settings.redis_timeout,
                retry_seconds=settings.redis_retry_seconds,
            )
        else:
            cache = MemoryCache(settings.embedding_cache_size)
        stack.push_async_callback(cache.aclose)

        embeddings = EmbeddingService(settings, cache)
        stack.push_async_callback(embeddings.aclose)
        await embeddings.start()

        vectors = VectorStore(settings, embeddings)
        stack.push_async_callback(vectors.aclose)
        await vectors.start()

        engine = app_store = persistence = None
        if state:
            engine = create_engine(settings)
            stack.push_async_callback(engine.dispose)
            await _check_database(settings, engine)
            app_store = AppStore(engine, timeout=settings.database_timeout)
            stack.push_async_callback(app_store.close)
            persistence = await stack.enter_async_context(open_persistence(settings, memory_index(embeddings)))

        router = await _open_router(settings, embeddings) if llm else None
        if router is not None:
            stack.push_async_callback(router.aclose)
        yield Services(
            settings=settings,
            cache=cache,
            embeddings=embeddings,
            vectors=vectors,
            llm=router,  # type: ignore[arg-type]  # None only where the caller asked for no LLM
            engine=engine,
            app_store=app_store,
            persistence=persistence,
        )


async def _check_database(settings: Settings, engine: AsyncEngine) -> None:
    try:
        await ping(engine)
    except (OSError, SQLAlchemyError, TimeoutError) as error:
        if settings.database_url:
            where = f"PostgreSQL at {redact_url(settings.database_url)} (CITADEL_DATABASE_URL)"
        else:
            where = f"the SQLite database {settings.data_dir / 'citadel.db'}"
        raise RuntimeError(f"cannot reach {where}: {type(error).__name__}: {error}") from error
    if await ensure_schema(engine):
        log.info("created the app tables (threads, runs, audit) in the empty database")


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
    router = LLMRouter(settings, backends, semantic)
    await router.start()
    return router
