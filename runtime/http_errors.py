"""One error shape for every HTTP route: `{"error": {"message", "type", "code", "param"}}` (the
shape OpenAI clients parse), with the right status, and `Retry-After` on 429/503.
Never a stack trace: unexpected errors are logged here and answered with a plain 500."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from citadel.errors import CitadelError, Unavailable, error_body

log = logging.getLogger(__name__)


def _location(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CitadelError)
    async def citadel_error(_: Request, error: CitadelError) -> JSONResponse:
        headers = {}
        if isinstance(error, Unavailable):
            headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
        return JSONResponse(
            error_body(error.message, error.code, error.code, error.param), status_code=error.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            detail = next(p for p in problems if p.get("type") == "json_invalid")
            message = f"request body is not valid JSON: {detail.get('ctx', {}).get('error', 'parse error')}"
            return JSONResponse(error_body(message, "invalid_request", "malformed_json"), status_code=400)
        first = problems[0]
        where = _location(tuple(first.get("loc", ())))
        message = "; ".join(f"{_location(tuple(p.get('loc', ())))}: {p.get('msg')}" for p in problems[:5])
        return JSONResponse(error_body(message, "invalid_request", "validation_error", where), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(
            error_body(str(error.detail), kind, kind), status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal error; see the server log", "internal_error"), status_code=500)
