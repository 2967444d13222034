"""Health, readiness and metrics over real HTTP, with the real PostgreSQL and Redis of this machine."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from citadel.runtime.services import open_services
from tests.live_server import LiveServer


def test_embedded_defaults_are_ready(live_server: LiveServer) -> None:
    assert httpx.get(f"{live_server.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{live_server.url}/health/ready").json()
    assert ready["status"] == "ok"
    assert ready["checks"]["vectors"]["where"] == "local mode"
    assert ready["checks"]["cache"]["where"] == "memory"
    assert ready["checks"]["llm:embedded"]["circuit"] == "closed"
    assert ready["checks"]["database"]["where"] == "sqlite"


def test_ready_checks_postgres_and_redis(make_settings: Any, database_url: str, redis_url: str) -> None:
    settings = make_settings(database_url=database_url, redis_url=redis_url)
    with LiveServer.start(settings) as server:
        ready = httpx.get(f"{server.url}/health/ready").json()
    assert ready["status"] == "ok", ready
    assert ready["checks"]["database"]["status"] == "ok"
    assert ready["checks"]["cache"] == {**ready["checks"]["cache"], "status": "ok", "where": "redis"}


def test_redis_down_degrades_without_failing_requests(make_settings: Any) -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with LiveServer.start(settings) as server:
        response = httpx.post(f"{server.url}/v1/embeddings", json={"input": "still works"}, timeout=30)
        ready = httpx.get(f"{server.url}/health/ready")
    assert response.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["cache"]["status"] == "down"


async def test_unreachable_postgres_is_a_clear_start_error_without_secrets(make_settings: Any) -> None:
    settings = make_settings(database_url="postgresql://citadel:s3cret@127.0.0.1:1/app", database_timeout=2)
    with pytest.raises(RuntimeError, match=r"cannot reach PostgreSQL at postgresql://127\.0\.0\.1:1/app") as caught:
        async with open_services(settings, llm=False, state=True):
            pass
    assert "s3cret" not in str(caught.value)


def test_metrics_count_requests_cache_and_batches(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        http.post("/v1/embeddings", json={"input": ["metrics probe one", "metrics probe two"]})
        http.post("/v1/embeddings", json={"input": ["metrics probe one"]})
        http.post("/v1/embeddings", json={"input": []})
        text = http.get("/metrics").text
    assert 'citadel_http_requests_total{method="POST",route="/v1/embeddings",status="200"}' in text
    assert 'citadel_http_requests_total{method="POST",route="/v1/embeddings",status="400"}' in text
    assert 'citadel_embedding_cache_total{result="hit"}' in text
    assert "citadel_embedding_batch_size_bucket" in text
    assert 'citadel_circuit_state{backend="embedded"} 0.0' in text
