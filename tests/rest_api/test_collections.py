"""Collections over real HTTP: create, upsert (with chunking), search, filter, delete, and the
4xx answers for bad input."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.live_server import LiveServer

DOCS = [
    {
        "id": "paris",
        "text": "Paris is the capital and largest city of France.",
        "metadata": {"lang": "en", "year": 2020},
    },
    {"id": "berlin", "text": "Berlin is the capital of Germany.", "metadata": {"lang": "en", "year": 2021}},
    {
        "id": "bread",
        "text": "Sourdough bread rises with wild yeast and bacteria.",
        "metadata": {"lang": "en", "year": 2019},
    },
    {
        "id": "tapas",
        "text": "Las tapas son pequeños platos de la cocina española.",
        "metadata": {"lang": "es", "year": 2022},
    },
]


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        yield client


@pytest.fixture
def docs(http: httpx.Client) -> str:
    assert http.post("/v1/collections", json={"name": "kb", "model": "all-minilm"}).status_code == 201
    response = http.post("/v1/collections/kb/points", json={"documents": DOCS})
    assert response.status_code == 200, response.text
    assert response.json() == {"upserted": 4, "chunks": 4}
    return "kb"


def test_create_is_idempotent_and_listed(http: httpx.Client, docs: str) -> None:
    again = http.post("/v1/collections", json={"name": "kb", "model": "all-minilm"})
    assert again.status_code == 200
    listed = http.get("/v1/collections").json()["collections"]
    assert listed == [{"name": "kb", "model": "all-minilm", "dims": 384, "chunks": 4, "hybrid": True}]
    other_way = http.post("/v1/collections", json={"name": "kb", "model": "all-minilm", "hybrid": False})
    assert other_way.status_code == 409
    assert "hybrid=true" in other_way.json()["error"]["message"]


def test_each_search_mode_ranks_by_its_own_measure(http: httpx.Client, docs: str) -> None:
    def search(mode: str, query: str) -> list[dict[str, object]]:
        response = http.post("/v1/collections/kb/search", json={"query": query, "k": 4, "mode": mode})
        assert response.status_code == 200, response.text
        return response.json()["results"]

    # Keywords: only documents sharing a (stemmed) term are found, and the word "rises" finds "rise".
    sparse = search("sparse", "rise of yeast")
    assert [hit["id"] for hit in sparse] == ["bread"]
    dense = search("dense", "What is the capital of France?")
    assert dense[0]["id"] == "paris"
    assert dense[0]["score"] == pytest.approx(dense[0]["similarity"], abs=1e-4), "dense score is the similarity"
    hybrid = search("hybrid", "What is the capital of France?")
    assert hybrid[0]["id"] == "paris"
    assert {hit["id"] for hit in hybrid} <= {d["id"] for d in DOCS}
    assert hybrid[0]["similarity"] == pytest.approx(dense[0]["similarity"], abs=1e-4)
    # Stop words alone give keywords nothing to match: sparse finds nothing, hybrid falls back to dense.
    assert search("sparse", "what is the") == []
    assert search("hybrid", "what is the")


def test_a_dense_only_collection_searches_dense(http: httpx.Client) -> None:
    created = http.post("/v1/collections", json={"name": "plain", "hybrid": False})
    assert created.status_code == 201
    assert created.json()["hybrid"] is False
    http.post("/v1/collections/plain/points", json={"documents": DOCS}).raise_for_status()
    hits = http.post("/v1/collections/plain/search", json={"query": "capital of Germany"}).json()["results"]
    assert hits[0]["id"] == "berlin"
    refused = http.post("/v1/collections/plain/search", json={"query": "capital", "mode": "hybrid"})
    assert refused.status_code == 400
    assert "hybrid=false" in refused.json()["error"]["message"]


def test_search_by_text_ranks_the_answer_first(http: httpx.Client, docs: str) -> None:
    response = http.post("/v1/collections/kb/search", json={"query": "What is the capital of France?", "k": 2})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["id"] == "paris"
    assert results[0]["text"].startswith("Paris is")
    assert results[0]["metadata"] == {"lang": "en", "year": 2020}
    assert results[0]["score"] > results[1]["score"]


def test_search_by_vector_filter_and_threshold(http: httpx.Client, docs: str) -> None:
    vector = http.post("/v1/embeddings", json={"input": "German capital city"}).json()["data"][0]["embedding"]
    hits = http.post("/v1/collections/kb/search", json={"vector": vector, "k": 4}).json()["results"]
    assert hits[0]["id"] == "berlin"
    only_es = http.post("/v1/collections/kb/search", json={"query": "capital", "filter": {"lang": "es"}}).json()
    assert [r["id"] for r in only_es["results"]] == ["tapas"]
    recent = http.post("/v1/collections/kb/search", json={"query": "capital", "filter": {"year": {"gte": 2021}}}).json()
    assert {r["id"] for r in recent["results"]} == {"berlin", "tapas"}
    strict = http.post("/v1/collections/kb/search", json={"query": "capital of France", "score_threshold": 0.5}).json()
    assert [r["id"] for r in strict["results"]] == ["paris"]


def test_long_document_is_chunked_and_found_once(http: httpx.Client, docs: str) -> None:
    filler = " ".join(f"Sentence {i} talks about gardening, soil and tomatoes." for i in range(60))
    long_text = filler + " The secret ingredient of the recipe is smoked paprika."
    response = http.post(
        "/v1/collections/kb/points",
        json={"documents": [{"id": "long", "text": long_text, "metadata": {"kind": "long"}}]},
    )
    assert response.status_code == 200
    assert response.json()["chunks"] > 2
    hits = http.post("/v1/collections/kb/search", json={"query": "secret ingredient smoked paprika", "k": 10}).json()
    ids = [r["id"] for r in hits["results"]]
    assert ids[0] == "long"
    assert ids.count("long") == 1, "a document appears once, with its best chunk"
    assert "paprika" in hits["results"][0]["text"]
    assert hits["results"][0]["metadata"] == {"kind": "long"}
    # Re-upserting a shorter version leaves no stale chunks behind.
    http.post("/v1/collections/kb/points", json={"documents": [{"id": "long", "text": "Now short."}]})
    assert http.get("/v1/collections/kb").json()["chunks"] == 5


def test_delete_by_id_and_by_filter(http: httpx.Client, docs: str) -> None:
    assert http.request("DELETE", "/v1/collections/kb/points", json={"ids": ["bread"]}).status_code == 200
    assert http.request("DELETE", "/v1/collections/kb/points", json={"filter": {"lang": "es"}}).status_code == 200
    hits = http.post("/v1/collections/kb/search", json={"query": "food", "k": 10}).json()["results"]
    assert {r["id"] for r in hits} == {"paris", "berlin"}
    assert http.delete("/v1/collections/kb").status_code == 204
    assert http.get("/v1/collections/kb").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "needle"),
    [
        ("POST", "/v1/collections", {"name": "bad name!", "model": "all-minilm"}, 400, "collection name"),
        ("POST", "/v1/collections", {"name": "x", "model": "nope"}, 404, "unknown embedding model 'nope'"),
        ("POST", "/v1/collections", {"name": "kb", "model": "nomic-embed-text"}, 404, "no server configured"),
        ("POST", "/v1/collections/missing/search", {"query": "x"}, 404, "collection 'missing' does not exist"),
        ("POST", "/v1/collections/kb/search", {"vector": [0.1, 0.2]}, 400, "vector has 2 dimensions"),
        ("POST", "/v1/collections/kb/search", {"query": "x", "vector": [0.1]}, 400, "either query"),
        ("POST", "/v1/collections/kb/search", {"query": "x", "k": 0}, 422, "k:"),
        ("POST", "/v1/collections/kb/search", {"query": "x", "mode": "fuzzy"}, 422, "mode:"),
        ("POST", "/v1/collections/kb/search", {"vector": [0.0] * 384, "mode": "sparse"}, 400, "needs a text query"),
        ("POST", "/v1/collections/kb/search", {"query": "x", "filter": {"a": 1.5}}, 400, "filter.a"),
        ("POST", "/v1/collections/kb/points", {"documents": []}, 422, "documents"),
        ("POST", "/v1/collections/kb/points", {"documents": [{"id": "a"}]}, 422, "documents.0.text"),
        ("POST", "/v1/collections/kb/points", {"documents": [{"id": "a", "text": "x"}] * 2}, 400, "appears twice"),
        ("DELETE", "/v1/collections/kb/points", {}, 400, "either ids or filter"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_problem(
    http: httpx.Client, docs: str, method: str, path: str, body: dict[str, object], status: int, needle: str
) -> None:
    response = http.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


def test_malformed_json_is_a_400(http: httpx.Client) -> None:
    response = http.post("/v1/collections", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]
