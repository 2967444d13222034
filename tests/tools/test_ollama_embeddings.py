"""Embeddings through Ollama's wire format: vectors, failover between servers and to the embedded
model, and the Redis cache, end to end.

Citadel (the real app, over HTTP) gets `all-minilm` from two Ollama servers, emb-01 then emb-02,
which are `tests.ollama_wire_server` subprocesses answering from the same MiniLM model Citadel
embeds with itself (no Ollama can run here). The embedded model stays last in line for
`all-minilm`. The tests speak to Citadel with the OpenAI client and read `/health/ready` and
`/metrics`; the wire servers count the requests they answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ollama
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from citadel.settings import Settings
from citadel.tools.minilm import MiniLM
from tests.live_server import LiveServer, clients
from tests.ollama_wire_server import WireServerProcess

pytestmark = pytest.mark.slow

MODEL = "all-minilm"
Wire = dict[str, WireServerProcess]
StartCitadel = Callable[..., Awaitable[LiveServer]]


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    """Two servers of all-minilm, emb-01 and emb-02. Killed on exit."""
    log_dir = tmp_path_factory.mktemp("ollama-wire")
    servers = {name: WireServerProcess(name, log_dir=log_dir, embed_models=[MODEL]) for name in ("emb-01", "emb-02")}
    with WireServerProcess.running(list(servers.values())):
        yield servers


@pytest.fixture(autouse=True)
def servers_up(wire: Wire) -> None:
    """Each test starts with both servers running (a test may have stopped one)."""
    stopped = [server for server in wire.values() if not server.alive]
    for server in stopped:
        server.spawn()
    for server in stopped:
        server.wait_ready()


@pytest.fixture(scope="module")
def reference() -> MiniLM:
    """The embedded model, run here, for the vectors the servers must reproduce."""
    return MiniLM(threads=1)


@pytest.fixture
def start_citadel(make_settings: Callable[..., Settings], wire: Wire, tmp_path: Path) -> Iterator[StartCitadel]:
    """Start the real app with both servers for all-minilm; each call is another replica (its own
    data directory). It starts in a worker thread: starting blocks, and the test's event loop runs."""
    with contextlib.ExitStack() as stack:
        replicas = 0

        async def start(**overrides: Any) -> LiveServer:
            nonlocal replicas
            replicas += 1
            settings: dict[str, Any] = {
                "data_dir": tmp_path / f"replica-{replicas}",
                "embedding_servers": {MODEL: [wire["emb-01"].url, wire["emb-02"].url]},
                "breaker_failures": 2,
                "breaker_reset_seconds": 60,  # no trial calls during a test: each state is stable
                "embedding_cache_ttl": 300,
            }
            server = LiveServer.start(make_settings(**(settings | overrides)))
            return await asyncio.to_thread(stack.enter_context, server)

        yield start


# --- helpers ------------------------------------------------------------------------------------
def fresh_texts(count: int) -> list[str]:
    """Texts no cache has seen (the Redis cache outlives a test run)."""
    nonce = uuid.uuid4().hex[:8]
    topics = ["the tides", "a sourdough starter", "the stock market", "migrating geese", "compilers", "tea"]
    return [f"A note ({nonce}-{i}) about {topics[i % len(topics)]}." for i in range(count)]


async def embed(client: openai.AsyncOpenAI, texts: list[str]) -> np.ndarray:
    response = await client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert response.model == MODEL
    return np.array([item.embedding for item in response.data], dtype=np.float32)


def assert_same_vectors(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    cosines = (got * expected).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
    assert cosines.min() >= 1 - 1e-5, cosines


async def metric(http: httpx.AsyncClient, name: str, **labels: str) -> float:
    """A sample from /metrics (0 when it has not been recorded yet)."""
    response = await http.get("/metrics")
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def served(wire: Wire) -> dict[str, int]:
    """Embedding requests each running wire server has answered since it started."""
    async with httpx.AsyncClient(timeout=5) as http:
        return {
            name: (await http.get(f"{s.url}/_test/stats")).json().get("embed", 0) for name, s in wire.items() if s.alive
        }


def provider(server: WireServerProcess) -> str:
    """The name Citadel gives a server's all-minilm provider in /health/ready and /metrics."""
    return f"ollama:{MODEL}@{server.url}"


async def embedding_check(http: httpx.AsyncClient) -> dict[str, Any]:
    checks: dict[str, Any] = (await http.get("/health/ready")).json()["checks"]
    return checks[f"embeddings:{MODEL}"]  # type: ignore[no-any-return]


# --- tests --------------------------------------------------------------------------------------
async def test_the_wire_server_embeds_for_the_ollama_client(wire: Wire, reference: MiniLM) -> None:
    """The double is checked against Ollama's own Python client before Citadel is put in front of it."""
    client = ollama.AsyncClient(host=wire["emb-02"].url)
    try:
        listed = await client.list()
        assert [m.model for m in listed.models] == [f"{MODEL}:latest"]
        texts = ["The cat sat on the mat.", "Quarterly revenue grew 4%."]
        several = await client.embed(MODEL, texts)
        assert several.model == MODEL
        assert (several.prompt_eval_count or 0) > 0
        assert_same_vectors(np.array(several.embeddings, dtype=np.float32), reference.encode(texts))
        one = await client.embed(f"{MODEL}:latest", texts[0])
        assert np.array(one.embeddings).shape == (1, 384)
        short = await client.embed(MODEL, texts, dimensions=64)
        assert np.allclose(np.linalg.norm(np.array(short.embeddings), axis=1), 1.0, atol=1e-5)
        assert np.array(short.embeddings).shape == (2, 64)

        with pytest.raises(ollama.ResponseError) as missing:
            await client.embed("nomic-embed-text", "hi")
        assert missing.value.status_code == 404
        assert missing.value.error == 'model "nomic-embed-text" not found, try pulling it first'
        with pytest.raises(ollama.ResponseError, match="exceeds the context length") as too_long:
            await client.embed(MODEL, "word " * 600, truncate=False)
        assert too_long.value.status_code == 400
        assert np.array((await client.embed(MODEL, "word " * 600)).embeddings).shape == (1, 384), "truncated"
    finally:
        await client.close()


async def test_vectors_through_ollama_match_the_embedded_model(
    start_citadel: StartCitadel, wire: Wire, reference: MiniLM
) -> None:
    citadel = await start_citadel()
    texts = fresh_texts(6)
    async with clients(citadel) as (client, http):
        before_calls = await served(wire)
        before_ollama = await metric(http, "citadel_embeddings_total", model=MODEL, source="ollama")
        vectors = await embed(client, texts)
        assert_same_vectors(vectors, reference.encode(texts))
        assert await metric(http, "citadel_embeddings_total", model=MODEL, source="ollama") - before_ollama == 6
        after_calls = await served(wire)
        assert after_calls["emb-01"] - before_calls["emb-01"] == 1, "one micro-batch to the first server"
        assert after_calls["emb-02"] == before_calls["emb-02"]
        check = await embedding_check(http)
        assert check["status"] == "ok"
        assert list(check["providers"]) == [provider(wire["emb-01"]), provider(wire["emb-02"]), "embedded:all-minilm"]


async def test_embeddings_fail_over_to_the_next_server_then_to_the_embedded_model(
    start_citadel: StartCitadel, wire: Wire, reference: MiniLM
) -> None:
    citadel = await start_citadel()
    first, second = provider(wire["emb-01"]), provider(wire["emb-02"])
    async with clients(citadel) as (client, http):
        wire["emb-01"].kill()
        # Two failed calls open emb-01's circuit; both requests are answered by emb-02 meanwhile.
        for _ in range(2):
            texts = fresh_texts(3)
            before = await served(wire)
            assert_same_vectors(await embed(client, texts), reference.encode(texts))
            assert (await served(wire))["emb-02"] - before["emb-02"] == 1
        assert await metric(http, "citadel_backend_calls_total", backend=first, outcome="failure") >= 2
        check = await embedding_check(http)
        assert check["providers"] == {first: "open", second: "closed", "embedded:all-minilm": "closed"}
        assert check["status"] == "degraded"

        # With emb-01's circuit open it is not even tried.
        failures = await metric(http, "citadel_backend_calls_total", backend=first, outcome="failure")
        texts = fresh_texts(3)
        assert_same_vectors(await embed(client, texts), reference.encode(texts))
        assert await metric(http, "citadel_backend_calls_total", backend=first, outcome="failure") == failures

        # Both servers gone: the embedded model answers all-minilm, the last in line.
        wire["emb-02"].kill()
        embedded_before = await metric(http, "citadel_embeddings_total", model=MODEL, source="embedded")
        for _ in range(3):
            texts = fresh_texts(2)
            assert_same_vectors(await embed(client, texts), reference.encode(texts))
        assert await metric(http, "citadel_embeddings_total", model=MODEL, source="embedded") - embedded_before == 6
        check = await embedding_check(http)
        assert check["providers"] == {first: "open", second: "open", "embedded:all-minilm": "closed"}
        assert check["status"] == "degraded"


async def test_redis_cache_answers_repeats_for_every_replica(
    start_citadel: StartCitadel, wire: Wire, redis_url: str, reference: MiniLM
) -> None:
    one = await start_citadel(redis_url=redis_url)
    two = await start_citadel(redis_url=redis_url)
    texts = fresh_texts(5)
    async with clients(one) as (client_one, http), clients(two) as (client_two, _):
        calls_before = await served(wire)
        hits_before = await metric(http, "citadel_embedding_cache_total", result="hit")
        misses_before = await metric(http, "citadel_embedding_cache_total", result="miss")
        first = await embed(client_one, texts)
        assert await metric(http, "citadel_embedding_cache_total", result="miss") - misses_before == 5
        assert await metric(http, "citadel_embedding_cache_total", result="hit") == hits_before
        calls_after_first = await served(wire)
        assert sum(calls_after_first.values()) - sum(calls_before.values()) == 1

        again = await embed(client_one, texts)
        elsewhere = await embed(client_two, list(reversed(texts)))  # another replica, same Redis
        assert await metric(http, "citadel_embedding_cache_total", result="hit") - hits_before == 10
        assert await served(wire) == calls_after_first, "repeats must not reach a server"
        assert_same_vectors(again, first)
        assert_same_vectors(elsewhere[::-1], first)
        assert_same_vectors(first, reference.encode(texts))
        check = (await http.get("/health/ready")).json()["checks"]["cache"]
        assert check["status"] == "ok"
        assert check["where"] == "redis"
