"""Citadel's error vocabulary, shared by every layer. Each error says what went wrong in words a
caller can act on, and whether trying again can help; the faces turn them into their own protocol's
errors (HTTP status and `error_body`, MCP `isError`, AG-UI RUN_ERROR)."""

from __future__ import annotations


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
