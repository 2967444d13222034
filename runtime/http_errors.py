"""One error shape for every HTTP route: `{"error": {"message", "type", "code", "param"}}` (the
shape OpenAI clients parse), with the right status, and `Retry-After` on 429/503.
Never a stack trace: unexpected errors are logged here and answered with a plain 500.

Why the last resort is the request pipeline's (`last_resort`, sent by `runtime/request_pipeline.py`)
and not an exception handler for `Exception`: Starlette hands such a handler to its outermost
`ServerErrorMiddleware`, which sends the handler's response and then re-raises the error so the
server can log it; uvicorn, seeing an error after a response started, closes the connection. A
client on a keep-alive connection then loses its next request too. The pipeline answers and
returns: the error is logged once, the connection stays open.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Scope

from citadel.errors import CitadelError, error_body, http_answer, invalid_body
from citadel.memory.store_errors import translate

log = logging.getLogger(__name__)


def citadel_response(error: CitadelError) -> JSONResponse:
    status, body, headers = http_answer(error)
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CitadelError)
    async def citadel_error(_: Request, error: CitadelError) -> JSONResponse:
        return citadel_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        status, body = invalid_body(error.errors())
        return JSONResponse(body, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(
            error_body(str(error.detail), kind, kind), status_code=error.status_code, headers=error.headers
        )


def error_leaves(error: BaseException) -> list[BaseException]:
    """The errors inside a task group's ExceptionGroup (streaming responses raise those)."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in error_leaves(inner)]
    return [error]


def last_resort(error: Exception, scope: Scope) -> JSONResponse:
    """The answer to an error no handler answered (the request pipeline sends it when the response
    has not started): its Citadel error's response (a store failure that escaped its boundary: 503
    or 400), else a logged 500."""
    for leaf in error_leaves(error):
        mapped = leaf if isinstance(leaf, CitadelError) else translate(leaf)
        if mapped is not None:
            return citadel_response(mapped)
    log.error("unhandled error on %s %s", scope["method"], scope["path"], exc_info=error)
    return JSONResponse(error_body("internal error; see the server log", "internal_error"), status_code=500)
