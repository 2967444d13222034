"""The request pipeline: one pure-ASGI pass around every face (REST, MCP, AG-UI, voice).

For each HTTP request, in order:
1. CORS, only for a request that carries an `Origin` header (Starlette's `CORSMiddleware`: it
   answers preflights itself, uncounted and unaudited, and adds the allowed and exposed headers to
   responses); a request without one, like every MCP or SDK client's, skips it.
2. auth (`auth.Authentication`: 400/401/403/503), then the rate limit (`RateLimiter.admit`: 429 with
   `Retry-After`), then the input limits (`InputLimits`: 413): the first to refuse answers.
3. the app, reading the body the input limits checked or count as it streams in; the MCP, embeddings
   and chat-completions endpoints straight from here (`direct`), not through FastAPI's router.
4. the last resort: an error no handler answered is answered (`http_errors.last_resort`; a body past
   the limit mid-stream: 413) and the connection kept; an error after the response started can only
   end it by closing the connection, so that one is raised on (after a complete response: logged).
5. one send wrapper sees the status: the request is counted in the metrics by route template and
   method ("refused" for a request answered before routing), and recorded in the audit log (but
   `/health*` and `/metrics`), refusals included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citadel import metrics
from citadel.memory.audit import AuditLog
from citadel.runtime.auth import Authentication
from citadel.runtime.http_errors import error_leaves, last_resort
from citadel.runtime.input_limits import BodyTooLarge, InputLimits
from citadel.runtime.rate_limits import RateLimiter
from citadel.runtime.request_audit import UNAUDITED, BodyDigest, pending_record
from citadel.settings import Settings

log = logging.getLogger(__name__)

REFUSED = "refused"
"""The route label of a request answered before routing (401, 403, 413, 429, ...): its status says why."""
EXPOSED_HEADERS = ["Content-Location", "X-Citadel-Backend", "X-Citadel-Model", "X-Citadel-Route"]


class _Response:
    """The send wrapper: what the app has sent so far."""

    __slots__ = ("_send", "admitted", "complete", "started", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.admitted = False  # passed auth, rate limit and input limits: handed to the app
        self.status = 500  # until a response starts: what an error or a silent app amounts to
        self.started = False
        self.complete = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True
        await self._send(message)


class RequestPipeline:
    def __init__(self, app: ASGIApp, *, settings: Settings, direct: Sequence[Route] = ()) -> None:
        """`direct`: routes served straight from here once admitted, past FastAPI's exception and exit-
        stack layers and its router (an ASGI app at one exact path, such as the MCP endpoint: it
        needs none of them, and they cost about as much CPU as the rest of the pipeline); a method
        the route does not list goes on to the router."""
        self.app = app
        self._direct = {route.path: route for route in direct}
        self._auth = Authentication(settings)
        self._input_limits = InputLimits(
            max_body_bytes=settings.max_body_bytes, max_text_chars=settings.max_message_chars
        )
        self._cors = CORSMiddleware(
            self._handle,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
        )
        self._metric_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif any(name == b"origin" for name, _ in scope["headers"]):
            await self._cors(scope, receive, send)
        else:
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        headers = dict(scope["headers"])
        audit: AuditLog | None = state.get("audit")
        body = BodyDigest(receive) if audit is not None and not scope["path"].startswith(UNAUDITED) else None
        response = _Response(send)
        error: str | None = None
        try:
            await self._admit(scope, state, headers, body.receive if body is not None else receive, response)
        except Exception as failure:
            error = type(failure).__name__
            await self._last_resort(failure, scope, receive, response)
        finally:
            elapsed = time.perf_counter() - started
            self._count(scope, response, elapsed)
            if body is not None and audit is not None:
                user_agent = headers.get(b"user-agent")
                audit.record(
                    pending_record(scope, user_agent, status=response.status, seconds=elapsed, error=error, body=body)
                )

    async def _admit(
        self, scope: Scope, state: dict[str, Any], headers: dict[bytes, bytes], receive: Receive, response: _Response
    ) -> None:
        """Auth, rate limit, input limits, in that order; then the app."""
        send = response.send
        if not await self._auth.admit(scope, state, headers, send):
            return
        limiter: RateLimiter | None = state.get("limiter")
        if limiter is not None and not await limiter.admit(scope, state.get("identity"), send):
            return
        checked = await self._input_limits.admit(scope, headers, receive, send)
        if checked is None:
            return
        response.admitted = True
        direct = self._direct.get(scope["path"])
        if direct is None or (direct.methods is not None and scope["method"] not in direct.methods):
            await self.app(scope, checked, send)
        else:
            scope["route"] = direct  # as the router would: the template names the route in metrics and audit
            await direct.app(scope, checked, send)

    async def _last_resort(self, failure: Exception, scope: Scope, receive: Receive, response: _Response) -> None:
        if response.complete:
            log.exception("error after the response to %s %s was sent", scope["method"], scope["path"])
            return
        if response.started:
            raise failure
        if any(isinstance(leaf, BodyTooLarge) for leaf in error_leaves(failure)):
            await self._input_limits.refuse_body(response.send)
            return
        await last_resort(failure, scope)(scope, receive, response.send)

    def _count(self, scope: Scope, response: _Response, seconds: float) -> None:
        """Requests and latency by route template (not raw path, to bound label values)."""
        status = response.status
        template = getattr(scope.get("route"), "path", None) or ("unmatched" if response.admitted else REFUSED)
        key = (template, scope["method"], status)
        children = self._metric_children.get(key)
        if children is None:  # labels() takes a lock and checks its values: once per key
            children = (
                metrics.HTTP_REQUESTS.labels(template, scope["method"], str(status)),
                metrics.HTTP_LATENCY.labels(template, scope["method"]),
            )
            self._metric_children[key] = children
        children[0].inc()
        children[1].observe(seconds)
