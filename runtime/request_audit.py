"""The audit record of every request (allowed or refused), as ASGI middleware."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citadel.memory.app_store import now
from citadel.memory.audit import AuditLog, AuditRecord

UNAUDITED = ("/health", "/metrics")


def _describe(scope: Scope) -> tuple[str, str | None, str | None]:
    """(action, resource type, resource id) from the matched route template and its parameters."""
    route = scope.get("route")
    template = getattr(route, "path", None) or scope["path"]
    params: dict[str, Any] = scope.get("path_params") or {}
    parts = [p for p in template.strip("/").split("/") if p and not p.startswith("{") and p not in ("v1", "api")]
    resource_type = parts[0].rstrip("s") if parts else None
    resource_id = next((str(v) for v in params.values()), None)
    return f"{scope['method']} {template}", resource_type, resource_id


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        log: AuditLog | None = scope.get("state", {}).get("audit")
        if scope["type"] != "http" or log is None or scope["path"].startswith(UNAUDITED):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        digest = hashlib.sha256()
        size = 0
        status = 500
        error: str | None = None

        async def hashed() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                digest.update(chunk)
            return message

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, hashed, observed)
        except Exception as failure:
            error = type(failure).__name__
            raise
        finally:
            state = scope.get("state", {})
            identity = state.get("identity")
            action, resource_type, resource_id = _describe(scope)
            headers = dict(scope["headers"])
            log.record(
                AuditRecord(
                    at=now(),
                    user_id=getattr(identity, "user_id", None),
                    session_id=getattr(identity, "session_id", None),
                    action=action[:255],
                    resource_type=resource_type,
                    resource_id=resource_id[:255] if resource_id else None,
                    method=scope["method"],
                    path=scope["path"][:2000],
                    status=status,
                    latency_ms=round((time.perf_counter() - started) * 1000, 2),
                    client_ip=(scope.get("client") or (None, 0))[0],
                    user_agent=headers.get(b"user-agent", b"").decode("latin-1")[:500] or None,
                    error=error or state.get("auth_error") or (f"HTTP {status}" if status >= 400 else None),
                    body_sha256=digest.hexdigest() if size else None,
                )
            )
