"""Citadel's error vocabulary, shared by every layer. Each error says what went wrong in words a
caller can act on, and whether trying again can help; the faces turn them into their own protocol's
errors (HTTP status and `error_body`, MCP `isError`, AG-UI RUN_ERROR)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


class CitadelError(Exception):
    """Base of the errors Citadel reports to its callers."""

    status = 500
    code = "internal_error"
    retryable = False

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, object]:
    """The one HTTP error shape, `{"error": {"message", "type", "code", "param"}}` (the shape OpenAI
    clients parse)."""
    return {"error": {"message": message, "type": kind, "code": code, "param": param}}


def _location(loc: Sequence[object]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def invalid_body(problems: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, object]]:
    """(status, body) for a request body that failed validation (pydantic's error list): 400 if it is
    not JSON at all, else 422 naming the first field at fault."""
    malformed = next((p for p in problems if p.get("type") == "json_invalid"), None)
    if malformed is not None:
        message = f"request body is not valid JSON: {malformed.get('ctx', {}).get('error', 'parse error')}"
        return 400, error_body(message, "invalid_request", "malformed_json")
    where = _location(tuple(problems[0].get("loc", ())))
    message = "; ".join(f"{_location(tuple(p.get('loc', ())))}: {p.get('msg')}" for p in problems[:5])
    return 422, error_body(message, "invalid_request", "validation_error", where)


class InvalidRequest(CitadelError):
    """The request itself is wrong: empty, too large, a field out of range."""

    status = 400
    code = "invalid_request"


class NotFound(CitadelError):
    """A named thing (model, collection, document) does not exist."""

    status = 404
    code = "not_found"


class Forbidden(CitadelError):
    """Authenticated, but the caller's role does not allow this."""

    status = 403
    code = "forbidden"


class Conflict(CitadelError):
    """The request contradicts what exists (e.g. a collection made for another model)."""

    status = 409
    code = "conflict"


class Unavailable(CitadelError):
    """A backend the request needs is down, and failover found no other. Retrying later may help."""

    status = 503
    code = "backend_unavailable"
    retryable = True

    def __init__(self, message: str, *, retry_after: float = 5.0, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.retry_after = retry_after


class BackendError(CitadelError):
    """One backend failed one call. Raised inside the tools, turned into `Unavailable` once every
    candidate backend has failed."""

    status = 502
    code = "backend_error"

    def __init__(self, backend: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend
        self.retryable = retryable


def http_answer(error: CitadelError) -> tuple[int, dict[str, object], dict[str, str]]:
    """(status, body, headers) of a Citadel error over HTTP: `Retry-After` on a 503."""
    headers = {}
    if isinstance(error, Unavailable):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return error.status, error_body(error.message, error.code, error.code, error.param), headers
