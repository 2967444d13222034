"""The audit record of every request, allowed or refused: who, what, on which resource, the outcome,
the timing and a hash of the body (never the body). The request pipeline builds it once the
request is answered."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from starlette.types import Message, Receive, Scope

from citadel.memory.app_store import now
from citadel.memory.audit import AuditRecord

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


class BodyDigest:
    """Wraps `receive`: the SHA-256 of the body as the app reads it."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._digest = hashlib.sha256()
        self.size = 0

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            self.size += len(chunk)
            self._digest.update(chunk)
        return message

    def hexdigest(self) -> str | None:
        return self._digest.hexdigest() if self.size else None


def audit_record(
    scope: Scope,
    headers: Mapping[bytes, bytes],
    *,
    status: int,
    latency_ms: float,
    error: str | None,
    body: BodyDigest,
) -> AuditRecord:
    state = scope.get("state", {})
    identity = state.get("identity")
    action, resource_type, resource_id = _describe(scope)
    return AuditRecord(
        at=now(),
        user_id=getattr(identity, "user_id", None),
        session_id=getattr(identity, "session_id", None),
        action=action[:255],
        resource_type=resource_type,
        resource_id=resource_id[:255] if resource_id else None,
        method=scope["method"],
        path=scope["path"][:2000],
        status=status,
        latency_ms=latency_ms,
        client_ip=(scope.get("client") or (None, 0))[0],
        user_agent=headers.get(b"user-agent", b"").decode("latin-1")[:500] or None,
        error=error or state.get("auth_error") or (f"HTTP {status}" if status >= 400 else None),
        body_sha256=body.hexdigest(),
    )
