"""The OpenAI Python client, unchanged, against Citadel's /v1 routes over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from citadel.runtime.app import create_app
from citadel.runtime.request_pipeline import RequestPipeline
from tests.live_server import LiveServer


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", max_retries=0) as client:
        yield client


def test_embeddings_float_and_base64_agree(client: openai.OpenAI) -> None:
    texts = ["The cat sat on the mat.", "A feline rested on the rug.", "Quarterly revenue grew 4%."]
    floats = client.embeddings.create(input=texts, model="all-minilm", encoding_format="float")
    packed = client.embeddings.create(input=texts, model="all-minilm")  # the client asks for base64
    a = np.array([d.embedding for d in floats.data])
    b = np.array([d.embedding for d in packed.data])
    assert a.shape == (3, 384)
    assert np.allclose(a, b, atol=1e-6)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    assert a[0] @ a[1] > a[0] @ a[2] + 0.2, "paraphrases must be closer than unrelated text"
    assert floats.model == "all-minilm"
    assert floats.usage.prompt_tokens > 0


def test_embedding_errors_name_the_problem(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="unknown embedding model 'nope'; available: all-minilm"):
        client.embeddings.create(input="x", model="nope")
    with pytest.raises(openai.BadRequestError, match="at least one text"):
        client.embeddings.create(input=[], model="all-minilm")
    with pytest.raises(openai.BadRequestError, match=r"input\[1\] has \d+ tokens; all-minilm takes at most 512"):
        client.embeddings.create(input=["short", "word " * 600], model="all-minilm")


def test_chat_completion_routes_and_reports_backend(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=16
    )
    assert response.choices[0].message.content
    assert response.model == "smollm2"
    extra = response.model_extra or {}
    assert extra["citadel"]["backend"] == "embedded"
    assert extra["citadel"]["route"] == "chat"


def test_chat_completion_streams(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Say hello."}], max_tokens=12, stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) >= 3
    assert text.strip()
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    assert first.content  # the first token rides with the role
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_chat_unknown_model_lists_available(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="unknown model 'gpt-9'; available: auto, smollm2"):
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])


def test_prompt_over_the_context_is_a_400_streaming_or_not(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(openai.BadRequestError, match="exceed context window"):
        client.chat.completions.create(model="auto", messages=messages, max_tokens=4)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="exceed context window"):
        client.chat.completions.create(model="auto", messages=messages, max_tokens=4, stream=True)  # type: ignore[arg-type]


def test_bad_chat_requests_name_the_field(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as http:
        empty = http.post("/v1/chat/completions", json={"messages": []})
        assert empty.status_code == 422
        assert "messages" in empty.json()["error"]["message"]
        role = http.post("/v1/chat/completions", json={"messages": [{"role": "wizard", "content": "hi"}]})
        assert role.status_code == 422
        assert "messages.0.role" in role.json()["error"]["message"]
        route = http.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "route": "astrology"}
        )
        assert route.status_code == 400
        assert "unknown route 'astrology'" in route.json()["error"]["message"]


def test_without_llm_backend_the_server_starts_and_only_llm_calls_are_refused(make_settings: Any) -> None:
    """`CITADEL_LOCAL_LLM=false` and no Ollama server: graphs that need no LLM are served; a chat
    completion is a 503 naming what to configure, with Retry-After."""
    with LiveServer.start(make_settings(local_llm=False)) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/health").status_code == 200
        chat = http.post(
            "/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert chat.status_code == 503, chat.text
        assert "CITADEL_LLM_SERVERS" in chat.json()["error"]["message"]
        assert "CITADEL_LOCAL_LLM=true" in chat.json()["error"]["message"]
        assert chat.headers["retry-after"]
        run = http.post(
            "/runs/wait",
            json={"assistant_id": "workflow", "input": {"steps": [{"type": "embedding", "text": "tides"}]}},
            timeout=60,
        )
        assert run.status_code == 200, run.text
        assert run.json()["status"] == "done"


def test_embeddings_are_served_past_fastapi_and_still_documented_counted_and_audited(make_settings: Any) -> None:
    """The request pipeline answers POST /v1/embeddings itself (`EmbeddingsEndpoint`): it is served
    with FastAPI's route taken out of the router, and that route still documents it."""
    settings = make_settings()
    app = create_app(settings)
    assert "/v1/embeddings" in app.openapi()["paths"], "the FastAPI route documents the endpoint"
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != "/v1/embeddings"]
    with LiveServer.start(settings, app=app) as live, httpx.Client(base_url=live.url, timeout=60) as http:
        served = http.post("/v1/embeddings", json={"input": "served directly"})
        metrics = http.get("/metrics").text
        records = http.get("/admin/audit", params={"action": "POST /v1/embeddings"}).json()["records"]
    assert served.status_code == 200, served.text
    assert served.headers["content-type"] == "application/json"
    assert len(served.json()["data"][0]["embedding"]) == 384
    assert 'citadel_http_requests_total{method="POST",route="/v1/embeddings",status="200"}' in metrics
    assert [(r["resource_type"], r["status"]) for r in records] == [("embedding", 200)]


JSON = "application/json"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code", "param", "needle"),
    [
        (b'{"input": 5}', JSON, 422, "validation_error", "input.str", "input"),
        (b'{"input": "x", "encoding_format": "hex"}', JSON, 422, "validation_error", "encoding_format", "float"),
        (b'{"input": "x", "dimensions": "many"}', JSON, 422, "validation_error", "dimensions", "dimensions"),
        (b"{not json", JSON, 400, "malformed_json", None, "not valid JSON"),
        (b"", JSON, 422, "validation_error", "body", "Field required"),
        (b'{"input": "x"}', "text/plain", 422, "validation_error", "body", "body"),
        (b'{"input": "x", "dimensions": 10}', JSON, 400, "invalid_request", "dimensions", "384-dimensional"),
        (b'{"input": [[1, 2]]}', JSON, 400, "invalid_request", "input", "token arrays"),
        (b'{"input": "x", "model": "nope"}', JSON, 404, "not_found", "model", "unknown embedding model"),
    ],
)
def test_bad_embedding_bodies_are_4xx_naming_the_field(
    live_server: LiveServer, content: bytes, content_type: str, status: int, code: str, param: str | None, needle: str
) -> None:
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        response = http.post("/v1/embeddings", content=content, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert needle in error["message"]


def test_embeddings_answer_other_methods_with_405(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        response = http.get("/v1/embeddings")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["type"] == "method_not_allowed"


CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
BAD_CHAT_BODIES: list[tuple[bytes, str | None]] = [
    (b'{"messages": []}', JSON),
    (json.dumps({"messages": [{"role": "wizard", "content": "hi"}]}).encode(), JSON),
    (json.dumps({"messages": HI, "temperature": 3, "n": 2}).encode(), JSON),
    (json.dumps({"messages": HI, "max_tokens": "many"}).encode(), "application/vnd.api+json; charset=utf-8"),
    (b"{not json", JSON),
    (b'{"messages": "\xff"}', JSON),
    (b"", JSON),
    (b"[1, 2]", JSON),
    (json.dumps({"messages": HI}).encode(), "text/plain"),
    (json.dumps({"messages": HI}).encode(), None),
    (json.dumps({"messages": HI, "tools": [{"type": "function"}]}).encode(), JSON),
    (json.dumps({"messages": HI, "route": "astrology"}).encode(), JSON),
    (json.dumps({"messages": HI, "model": "gpt-9"}).encode(), JSON),
    (json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}).encode(), JSON),
]


def _chat_answers(server: LiveServer) -> list[Any]:
    """What the server answers to each bad body, then the shape of a completion and of a stream."""
    answers: list[Any] = []
    with httpx.Client(base_url=server.url, timeout=120) as http:
        for content, content_type in BAD_CHAT_BODIES:
            headers = {"content-type": content_type} if content_type else {}
            response = http.post(CHAT, content=content, headers=headers)
            answers.append((response.status_code, response.headers["content-type"], response.json()))
        question = {"model": "auto", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 4}
        completion = http.post(CHAT, json=question)
        assert completion.status_code == 200, completion.text
        answer = completion.json()
        answers.append((completion.headers["content-type"], completion.headers["x-citadel-route"], sorted(answer)))
        with http.stream("POST", CHAT, json={**question, "stream": True}) as stream:
            assert stream.status_code == 200
            data = [line[6:] for line in stream.iter_lines() if line.startswith("data: ")]
        frames = [json.loads(frame) for frame in data[:-1]]
        answers.append(
            (
                {name: stream.headers[name] for name in ("content-type", "cache-control", "x-accel-buffering")},
                stream.headers["x-citadel-backend"],
                frames[0]["choices"][0]["delta"]["role"],
                bool(frames[0]["choices"][0]["delta"]["content"]),
                frames[-1]["choices"][0]["finish_reason"] in ("stop", "length"),
                data[-1],
            )
        )
    return answers


def test_chat_is_served_past_fastapi_and_answers_as_its_fastapi_route(make_settings: Any) -> None:
    """The request pipeline answers POST /v1/chat/completions itself (`ChatCompletionsEndpoint`), with
    the same statuses, bodies and stream as the FastAPI route, which still documents it."""
    settings = make_settings()
    direct = create_app(settings)
    assert CHAT in direct.openapi()["paths"], "the FastAPI route documents the endpoint"
    direct.router.routes[:] = [r for r in direct.router.routes if getattr(r, "path", None) != CHAT]
    routed = create_app(settings)  # the pipeline without its direct chat route: FastAPI's route answers
    pipeline = next(m for m in routed.user_middleware if m.cls is RequestPipeline)
    pipeline.kwargs["direct"] = [r for r in pipeline.kwargs["direct"] if r.path != CHAT]
    with LiveServer.start(settings, app=routed) as live:
        expected = _chat_answers(live)
    with LiveServer.start(settings, app=direct) as live:
        counted_before = _chat_count(live, "200")
        served = _chat_answers(live)
        counted = _chat_count(live, "200") - counted_before
    for (content, content_type), want, got in zip(BAD_CHAT_BODIES, expected, served, strict=False):
        assert got == want, f"{content!r} ({content_type})"
    assert served == expected
    assert [status for status, _, _ in served[: len(BAD_CHAT_BODIES)]] == [
        422, 422, 422, 422, 400, 400, 422, 422, 422, 422, 400, 400, 404, 400
    ]  # fmt: skip
    assert counted == 2, "counted under the route's template"


def _chat_count(server: LiveServer, status: str) -> float:
    """`citadel_http_requests_total` for POST /v1/chat/completions with this status (the registry is
    the process's: both servers of a test count into it)."""
    line = f'citadel_http_requests_total{{method="POST",route="{CHAT}",status="{status}"}} '
    metrics = httpx.get(f"{server.url}/metrics").text
    return next((float(row[len(line) :]) for row in metrics.splitlines() if row.startswith(line)), 0.0)
