"""OpenAI-compatible routes: `/v1/embeddings`, `/v1/chat/completions`, `/v1/models`.

The request and response shapes are OpenAI's, so the OpenAI client libraries work unchanged.
Citadel adds an optional `route` to chat requests and reports its routing decision in a
`citadel` field and `X-Citadel-*` headers.

`POST /v1/embeddings` and `POST /v1/chat/completions` are answered by plain ASGI apps
(`EmbeddingsEndpoint`, `ChatCompletionsEndpoint`) the request pipeline serves past FastAPI's router
(`direct_routes()`, like `/mcp`): a cache hit is a small fraction of a millisecond of work, and
FastAPI's routing, dependency solving and response classes cost more than it; a chat completion's
first token waits for them. The FastAPI routes below document them in the OpenAPI schema and serve
them in an app without the pipeline; both answer through `_embeddings` / `_chat`, with the same
errors (`_read_valid`, `_refuse`), and a chat stream is sse-starlette's `EventSourceResponse`
either way (keep-alive pings, disconnects, streams cut on shutdown)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Response
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette import EventSourceResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from citadel.core.dependencies import ServicesDep
from citadel.core.services import Services
from citadel.errors import CitadelError, InvalidRequest, error_body, http_answer, invalid_body
from citadel.tools.llm_backends import GenerationParams
from citadel.tools.llm_router import AUTO, RouteDecision

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
_Body = TypeVar("_Body", bound=BaseModel)


# --- embeddings -------------------------------------------------------------------------------
class EmbeddingRequest(BaseModel):
    input: str | list[str] | list[int] | list[list[int]] = Field(description="A text or a list of texts.")
    model: str | None = Field(default=None, description="Embedding model; the configured default when omitted.")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, description="Must equal the model's size if given.")
    user: str | None = None
    allow_fallback: bool = Field(
        default=False,
        description="Citadel: if the model's servers are all down, answer with its fallback model (see `model`).",
    )


async def _embeddings(body: EmbeddingRequest, services: Services) -> bytes:
    """The response body (JSON) for a valid request; CitadelError for one the service refuses."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if texts and not all(isinstance(t, str) for t in texts):
        raise InvalidRequest("input must be text; token arrays are not supported", param="input")
    model = services.embeddings.model(body.model)
    if body.dimensions is not None and body.dimensions != model.dims:
        raise InvalidRequest(
            f"{model.name} makes {model.dims}-dimensional vectors; dimensions={body.dimensions}", param="dimensions"
        )
    result = await services.embeddings.embed(texts, model.name, allow_fallback=body.allow_fallback)  # type: ignore[arg-type]
    rows: list[Any]
    if body.encoding_format == "base64":
        rows = [base64.b64encode(row.tobytes()).decode() for row in result.vectors]
    else:
        rows = list(result.vectors)  # float32 rows, written by orjson as the shortest decimal each float32 has
    payload = {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)],
        "model": result.model,
        "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens},
    }
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


@router.post("/embeddings", response_class=Response)
async def create_embeddings(body: EmbeddingRequest, services: ServicesDep) -> Response:
    """Served by `EmbeddingsEndpoint` in the app (see the module's docstring); documented from here."""
    return Response(await _embeddings(body, services), media_type="application/json")


# --- served past FastAPI: the body read, validated and refused as FastAPI's routes would -------
EMBEDDINGS_PATH = "/v1/embeddings"
CHAT_PATH = "/v1/chat/completions"
_JSON = [(b"content-type", b"application/json")]


def _is_json(content_type: bytes | None) -> bool:
    """As FastAPI (strict about content types, its default) decides whether to parse a body as JSON:
    `application/json` or `application/*+json`; a body without a Content-Type is not parsed."""
    if content_type is None:
        return False
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))


async def _read_valid(model: type[_Body], scope: Scope, receive: Receive, send: Send) -> _Body | None:
    """The request's body validated as `model`, as FastAPI would have it; None once answered (400 for a
    body that is not JSON, 422 naming the field for one of the wrong shape) or if the client went away."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # the client went away
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    content_type = next((value for name, value in scope["headers"] if name == b"content-type"), None)
    parse = _is_json(content_type)
    if raw and parse:
        try:
            return model.model_validate_json(raw)  # the usual case, in one pass
        except ValidationError:
            pass  # answered below, in FastAPI's words
    validated = _validate_as_fastapi(model, raw, parse)
    if isinstance(validated, BaseModel):
        return validated
    status, problem = validated
    await _answer(send, status, orjson.dumps(problem))
    return None


def _validate_as_fastapi(model: type[_Body], raw: bytes, parse: bool) -> _Body | tuple[int, dict[str, object]]:
    """The body validated as FastAPI validates it (the standard library's `json`, then the model in
    Python mode, from attributes), or (status, body) of its refusal: the same words as the FastAPI
    route's."""
    if not raw:
        return invalid_body([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    document: Any = raw  # FastAPI hands a body it does not parse to validation as bytes: not an object
    if parse:
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as malformed:
            reason = {"error": malformed.msg}
            return invalid_body(
                [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": {}, "ctx": reason}]
            )
        except ValueError:  # not text at all
            return 400, error_body("There was an error parsing the body", "http_error", "http_error")
    try:
        return model.model_validate(document, from_attributes=True)
    except ValidationError as error:
        return invalid_body(error.errors(include_url=False))


async def _refuse(send: Send, error: CitadelError) -> None:
    """A Citadel error's answer, as the app's exception handler would send it."""
    status, problem, headers = http_answer(error)
    extra = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    await _answer(send, status, orjson.dumps(problem), extra)


class EmbeddingsEndpoint:
    """`POST /v1/embeddings` as an ASGI app, for the request pipeline (which has authenticated,
    rate-limited and size-checked the request, and counts and audits it). Answers as the FastAPI
    route would: 400 for a body that is not JSON, 422 naming the field for one of the wrong shape,
    the service's errors with their status."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_valid(EmbeddingRequest, scope, receive, send)
        if body is None:
            return
        try:
            payload = await _embeddings(body, scope["state"]["services"])
        except CitadelError as error:
            await _refuse(send, error)
            return
        await _answer(send, 200, payload)


async def _answer(send: Send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    length = [(b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": length + _JSON + (headers or [])})
    await send({"type": "http.response.body", "body": payload})


# --- chat -------------------------------------------------------------------------------------
class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    messages: list[ChatMessage] = Field(min_length=1)
    model: str = Field(default=AUTO, description="A model name, or `auto` to let Citadel route.")
    route: str | None = Field(default=None, description="Citadel: force a task class instead of classifying.")
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice is supported.")
    tools: list[dict[str, Any]] | None = None


def _text(message: ChatMessage, index: int) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    parts = []
    for part in message.content:
        if part.get("type") != "text":
            raise InvalidRequest(f"messages[{index}]: only text content parts are supported", param="messages")
        parts.append(str(part.get("text", "")))
    return "".join(parts)


def to_langchain(messages: list[ChatMessage]) -> list[BaseMessage]:
    converted: list[BaseMessage] = []
    for index, message in enumerate(messages):
        text = _text(message, index)
        if message.role in ("system", "developer"):
            converted.append(SystemMessage(text))
        elif message.role == "user":
            converted.append(HumanMessage(text))
        elif message.role == "assistant":
            converted.append(AIMessage(text))
        else:
            converted.append(ToolMessage(text, tool_call_id=message.tool_call_id or "call"))
    return converted


def _headers(decision: RouteDecision) -> dict[str, str]:
    return {
        "X-Citadel-Backend": decision.backend,
        "X-Citadel-Model": decision.model,
        "X-Citadel-Route": decision.route or "",
    }


def _citadel(decision: RouteDecision) -> dict[str, Any]:
    return {
        "backend": decision.backend,
        "route": decision.route,
        "reason": decision.reason,
        "passed_over": decision.attempts,
        "first_token_ms": round(decision.first_token_seconds * 1000, 1),
    }


@router.post("/chat/completions")
async def chat_completions(body: ChatRequest, services: ServicesDep) -> Response:
    """Served by `ChatCompletionsEndpoint` in the app (see the module's docstring); documented from here."""
    return await _chat(body, services)


class ChatCompletionsEndpoint:
    """`POST /v1/chat/completions` as an ASGI app, for the request pipeline, answering as the FastAPI
    route would (see `EmbeddingsEndpoint`); the response, a stream or not, is `_chat`'s, sent as the
    ASGI app it is."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_valid(ChatRequest, scope, receive, send)
        if body is None:
            return
        try:
            response = await _chat(body, scope["state"]["services"])
        except CitadelError as error:
            await _refuse(send, error)
            return
        await response(scope, receive, send)


async def _chat(body: ChatRequest, services: Services) -> Response:
    """The response to a valid request (an `EventSourceResponse` for a stream, opened once the first
    token is there); CitadelError for one refused before its first token."""
    if body.tools:
        raise InvalidRequest("tools are not supported on this endpoint; use the graphs for tool use", param="tools")
    params = GenerationParams(
        max_tokens=body.max_completion_tokens or body.max_tokens or services.settings.llm_max_tokens,
        temperature=0.3 if body.temperature is None else body.temperature,
        top_p=0.9 if body.top_p is None else body.top_p,
        stop=[body.stop] if isinstance(body.stop, str) else body.stop,
    )
    stream = await services.llm.stream(to_langchain(body.messages), model=body.model, route=body.route, params=params)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    decision = stream.decision

    if not body.stream:
        parts: list[str] = []
        finish = "stop"
        async for chunk in stream:
            parts.append(chunk.text)
            finish = (
                chunk.response_metadata.get("finish_reason") or chunk.response_metadata.get("done_reason") or finish
            )
        content = "".join(parts)
        usage = {"prompt_tokens": 0, "completion_tokens": len(parts), "total_tokens": len(parts)}
        payload = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": decision.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": _finish(finish)}
            ],
            "usage": usage,
            "citadel": _citadel(decision),
        }
        return Response(json.dumps(payload), media_type="application/json", headers=_headers(decision))

    def frame(delta: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": decision.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    async def events() -> AsyncIterator[str]:
        # The role rides with the first token (already produced: the router waits for it to choose a
        # backend), so the client's first read holds text, not an empty role frame.
        role: dict[str, Any] = {"role": "assistant"}
        finish = "stop"
        try:
            async for chunk in stream:
                finish = (
                    chunk.response_metadata.get("finish_reason") or chunk.response_metadata.get("done_reason") or finish
                )
                if chunk.text or role:
                    yield frame({**role, "content": chunk.text})
                    role = {}
        except CitadelError as error:
            yield json.dumps(error_body(error.message, error.code, error.code))
            return
        finally:
            await stream.aclose()
        if role:  # a stream without a single chunk
            yield frame({**role, "content": ""})
        yield frame({}, _finish(finish))
        yield "[DONE]"

    return EventSourceResponse(events(), headers={**_headers(decision), "X-Accel-Buffering": "no"}, ping=15)


def _finish(reason: str) -> str:
    return "length" if reason in ("length", "max_tokens") else "stop"


def direct_routes() -> list[Route]:
    """The routes the request pipeline serves directly (its `direct` routes); POST only, so any other
    method goes on to FastAPI's router (405)."""
    return [
        Route(EMBEDDINGS_PATH, endpoint=EmbeddingsEndpoint(), methods=["POST"], include_in_schema=False),
        Route(CHAT_PATH, endpoint=ChatCompletionsEndpoint(), methods=["POST"], include_in_schema=False),
    ]


# --- models -----------------------------------------------------------------------------------
@router.get("/models")
async def list_models(services: ServicesDep) -> dict[str, Any]:
    data: list[dict[str, Any]] = [
        {"id": AUTO, "object": "model", "owned_by": "citadel", "kind": "chat", "backends": []}
    ]
    data += [
        {"id": name, "object": "model", "owned_by": "citadel", "kind": "chat", "backends": backends}
        for name, backends in services.llm.models().items()
    ]
    data += [
        {"id": m.name, "object": "model", "owned_by": "citadel", "kind": "embedding", "dimensions": m.dims}
        for m in services.embeddings.models()
    ]
    return {"object": "list", "data": data}
