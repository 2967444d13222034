"""The embedding tool: validation, caching on real Redis and in process, failover and fallback."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import redis.asyncio as redis

from citadel.errors import InvalidRequest, NotFound, Unavailable
from citadel.runtime.services import open_services

DOWN = "http://127.0.0.1:1"  # nothing listens on port 1


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_repeat_texts_come_from_the_cache(make_settings: Any, redis_url: str, backend: str) -> None:
    overrides = {"redis_url": redis_url} if backend == "redis" else {}
    client = redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    async with open_services(make_settings(**overrides), llm=False) as services:
        assert services.cache.name == backend
        first = await services.embeddings.embed(["alpha text", "beta text", "alpha text"])
        assert first.cached == 0
        assert np.allclose(first.vectors[0], first.vectors[2])
        second = await services.embeddings.embed(["beta text", "alpha text", "gamma text"])
        assert second.cached == 2
        assert np.allclose(second.vectors[0], first.vectors[1], atol=1e-6)
        # A hit's token count comes from the cache, not the tokenizer: the usage is the same.
        assert second.tokens == sum(services.embeddings.count_tokens(["beta text", "alpha text", "gamma text"]))
    if backend == "redis":
        client = redis.from_url(redis_url)
        keys = await client.keys("emb:all-minilm:*")
        ttl = await client.ttl(keys[0])
        await client.aclose()
        assert len(keys) == 3
        assert ttl > 0


async def test_cache_entries_of_another_shape_are_misses(make_settings: Any, redis_url: str) -> None:
    """An entry written by an earlier version (the vector alone, no token count) is embedded afresh
    and replaced, never read as a vector."""
    client = redis.from_url(redis_url)
    await client.flushdb()
    async with open_services(make_settings(redis_url=redis_url), llm=False) as services:
        fresh = await services.embeddings.embed(["delta text"])
        (key,) = await client.keys("emb:all-minilm:*")
        assert len(await client.get(key)) == 384 * 4 + 4  # float32 vector, then the uint32 token count
        await client.set(key, np.zeros(384, dtype=np.float32).tobytes())
        again = await services.embeddings.embed(["delta text"])
        assert again.cached == 0
        assert np.allclose(again.vectors, fresh.vectors, atol=1e-6)
        assert len(await client.get(key)) == 384 * 4 + 4
    await client.aclose()


async def test_a_cached_text_is_still_held_to_the_model_limit(make_settings: Any) -> None:
    long_text = "word " * 600  # 602 tokens: more than all-minilm takes (512)
    async with open_services(make_settings(), llm=False) as services:
        with pytest.raises(InvalidRequest, match=r"input\[1\] has 602 tokens"):
            await services.embeddings.embed(["ok", long_text])
        await services.embeddings.embed(["ok"])
        with pytest.raises(InvalidRequest, match=r"input\[1\] has 602 tokens"):
            await services.embeddings.embed(["ok", long_text])  # "ok" is now a hit, the long text still counted


async def test_validation_names_the_problem(make_settings: Any) -> None:
    async with open_services(make_settings(embedding_max_inputs=3), llm=False) as services:
        with pytest.raises(InvalidRequest, match="at least one text"):
            await services.embeddings.embed([])
        with pytest.raises(InvalidRequest, match=r"input\[1\] is empty"):
            await services.embeddings.embed(["ok", "  "])
        with pytest.raises(InvalidRequest, match="at most 3 per request"):
            await services.embeddings.embed(["a", "b", "c", "d"])
        with pytest.raises(NotFound, match="no server configured"):
            await services.embeddings.embed(["a"], "bge-m3")


async def test_down_model_fails_over_to_fallback_only_when_accepted(make_settings: Any) -> None:
    settings = make_settings(embedding_servers={"nomic-embed-text": [DOWN]}, embedding_timeout=2, breaker_failures=1)
    async with open_services(settings, llm=False) as services:
        with pytest.raises(Unavailable, match="no server could embed with nomic-embed-text") as caught:
            await services.embeddings.embed(["hello"], "nomic-embed-text")
        assert caught.value.retry_after >= 1
        result = await services.embeddings.embed(["hello"], "nomic-embed-text", allow_fallback=True)
        assert result.model == "all-minilm"
        assert result.vectors.shape == (1, 384)
        # A collection of that model is never answered by another model: its vectors would not fit.
        await services.vectors.create_collection("nomic", "nomic-embed-text")
        with pytest.raises(Unavailable):
            await services.vectors.search("nomic", query="hello")
