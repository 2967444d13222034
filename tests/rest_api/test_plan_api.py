"""The plan's API (`/api/v1/...`) over real HTTP: embed, store / update / search / delete one document,
status, and `/health/detailed`, with the 4xx answers the other routes give."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.live_server import LiveServer


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        yield client


def test_embed_a_text_or_several_with_or_without_the_cache(http: httpx.Client) -> None:
    one = http.post("/api/v1/embed", json={"text": "solar panels", "model": "all-minilm"})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model"] == "all-minilm"
    assert body["dims"] == len(body["embedding"]) == 384
    assert np.linalg.norm(body["embedding"]) == pytest.approx(1, abs=1e-3)
    again = http.post("/api/v1/embed", json={"text": ["solar panels", "wind"]}).json()
    assert again["cached"] == 1
    assert again["embeddings"][0] == pytest.approx(body["embedding"], abs=1e-6)
    fresh = http.post("/api/v1/embed", json={"text": ["solar panels"], "cache": False}).json()
    assert fresh["cached"] == 0
    openai = http.post("/v1/embeddings", json={"input": "solar panels"}).json()["data"][0]["embedding"]
    assert openai == pytest.approx(body["embedding"], abs=1e-6), "the same function behind both APIs"


def test_store_search_update_and_delete_a_document(http: httpx.Client) -> None:
    stored = http.post(
        "/api/v1/vectors/store",
        json={"id": "tides", "text": "Tides rise and fall twice a day.", "metadata": {"topic": "sea"}},
    )
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"id": "tides", "collection": "docs", "chunks": 1}
    http.post("/api/v1/vectors/store", json={"id": "bread", "text": "Sourdough rises with wild yeast."})
    found = http.post("/api/v1/vectors/search", json={"query": "ocean tides", "limit": 1}).json()
    assert found["collection"] == "docs"
    assert [(r["id"], r["metadata"]) for r in found["results"]] == [("tides", {"topic": "sea"})]
    filtered = http.post("/api/v1/vectors/search", json={"query": "rise", "filter": {"topic": "sea"}}).json()
    assert [r["id"] for r in filtered["results"]] == ["tides"]

    updated = http.post("/api/v1/vectors/update", json={"id": "tides", "text": "The moon pulls the tides."})
    assert updated.status_code == 200
    hit = http.post("/api/v1/vectors/search", json={"query": "moon", "limit": 1, "mode": "sparse"}).json()
    assert hit["results"][0]["text"] == "The moon pulls the tides."

    assert http.delete("/api/v1/vectors/tides").json() == {"deleted": "tides", "collection": "docs"}
    left = http.post("/api/v1/vectors/search", json={"query": "tides", "limit": 10}).json()
    assert [r["id"] for r in left["results"]] == ["bread"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "needle"),
    [
        ("POST", "/api/v1/embed", {"text": ""}, 400, "input[0] is empty"),
        ("POST", "/api/v1/embed", {"text": "x", "model": "nope"}, 404, "unknown embedding model 'nope'"),
        ("POST", "/api/v1/embed", {}, 422, "text"),
        ("POST", "/api/v1/vectors/update", {"id": "ghost", "text": "boo"}, 404, "no document 'ghost'"),
        ("POST", "/api/v1/vectors/store", {"id": "a", "text": "x", "collection": "nope"}, 404, "'nope' does not exist"),
        ("POST", "/api/v1/vectors/search", {"query": "x", "limit": 0}, 422, "limit"),
        ("POST", "/api/v1/vectors/search", {"query": "  "}, 400, "query must not be empty"),
        ("POST", "/api/v1/vectors/search", {"query": "x", "collection": "nope"}, 404, "'nope' does not exist"),
        ("DELETE", "/api/v1/vectors/ghost", None, 404, "no document 'ghost'"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_problem(
    http: httpx.Client, method: str, path: str, body: dict[str, object] | None, status: int, needle: str
) -> None:
    http.post("/api/v1/vectors/store", json={"id": "seed", "text": "Something to search."}).raise_for_status()
    response = http.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


def test_status_names_models_backends_circuits_and_runs(http: httpx.Client) -> None:
    status = http.get("/api/v1/status")
    assert status.status_code == 200
    body = status.json()
    (minilm,) = [m for m in body["models"] if m["name"] == "all-minilm"]
    assert minilm["default"] is True
    assert minilm["providers"] == [{"name": "embedded:all-minilm", "circuit": "closed"}]
    assert body["circuits"]["embedded:all-minilm"] == "closed"
    assert {b["kind"] for b in body["backends"]} <= {"llm"}
    assert body["runs_in_flight"] == {"pending": 0, "running": 0}


def test_health_detailed_adds_collections_and_runs_to_readiness(http: httpx.Client) -> None:
    http.post("/api/v1/vectors/store", json={"id": "a", "text": "Some text."}).raise_for_status()
    detailed = http.get("/health/detailed")
    assert detailed.status_code == 200
    body = detailed.json()
    ready = http.get("/health/ready").json()
    assert body["status"] == ready["status"]
    assert set(body["checks"]) == set(ready["checks"])
    assert {"name": "docs", "model": "all-minilm", "dims": 384, "chunks": 1, "hybrid": True} in body["collections"]
    assert body["runs_in_flight"] == {"pending": 0, "running": 0}
    assert body["uptime_seconds"] >= 0
    assert body["answer_mode"] == "auto"
