"""The audit record of every request, allowed or refused: who, what, on which resource, the outcome,
the timing and a hash of the body (never the body).

The request pipeline queues a `PendingRecord` once the request is answered: the few values it has
at hand, taken from the request's scope (which is not kept). The audit log's writer makes the
record from it (`to_record`: the timestamp, the action and resource from the route template, the
clipped texts) off the request's time. A pending record holds only strings and numbers: while it
waits in the queue (up to a second) it keeps none of the request's objects alive."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from starlette.types import Message, Receive, Scope

from citadel.memory.audit import AuditRecord

UNAUDITED = ("/health", "/metrics")


def _resource_type(template: str) -> str | None:
    """The first fixed part of the route template, singular: `/v1/collections/{name}` -> collection."""
    parts = [p for p in template.strip("/").split("/") if p and not p.startswith("{") and p not in ("v1", "api")]
    return parts[0].rstrip("s") if parts else None


class BodyDigest:
    """Wraps `receive`: the SHA-256 of the body as the app reads it."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._digest: Any = None  # hashlib's object, made with the first chunk (most bodies are one)
        self.size = 0

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                self.size += len(chunk)
                if self._digest is None:
                    self._digest = hashlib.sha256(chunk)
                else:
                    self._digest.update(chunk)
        return message

    def hexdigest(self) -> str | None:
        return self._digest.hexdigest() if self._digest is not None else None


class PendingRecord(NamedTuple):
    """A request's audit record as the request path leaves it (a `PendingAudit` of the audit log)."""

    at: float
    user_id: str | None
    session_id: str | None
    auth_error: str | None
    method: str
    path: str
    template: str
    resource_id: str | None
    client_ip: str | None
    user_agent: bytes | None
    status: int
    seconds: float
    error: str | None
    body_sha256: str | None

    def to_record(self) -> AuditRecord:
        status, resource_id = self.status, self.resource_id
        return AuditRecord(
            at=datetime.fromtimestamp(self.at, UTC),
            user_id=self.user_id,
            session_id=self.session_id,
            action=f"{self.method} {self.template}"[:255],
            resource_type=_resource_type(self.template),
            resource_id=resource_id[:255] if resource_id else None,
            method=self.method,
            path=self.path[:2000],
            status=status,
            latency_ms=round(self.seconds * 1000, 2),
            client_ip=self.client_ip,
            user_agent=self.user_agent.decode("latin-1")[:500] if self.user_agent else None,
            error=self.error or self.auth_error or (f"HTTP {status}" if status >= 400 else None),
            body_sha256=self.body_sha256,
        )


def pending_record(
    scope: Scope, user_agent: bytes | None, *, status: int, seconds: float, error: str | None, body: BodyDigest
) -> PendingRecord:
    """What the audit log needs of an answered request; the record itself is made by its writer."""
    state = scope.get("state", {})
    identity = state.get("identity")
    path: str = scope["path"]
    params: dict[str, Any] | None = scope.get("path_params")
    client = scope.get("client")
    return PendingRecord(
        at=time.time(),
        user_id=identity.user_id if identity is not None else None,
        session_id=identity.session_id if identity is not None else None,
        auth_error=state.get("auth_error"),
        method=scope["method"],
        path=path,
        template=getattr(scope.get("route"), "path", None) or path,
        resource_id=next((str(v) for v in params.values()), None) if params else None,
        client_ip=client[0] if client else None,
        user_agent=user_agent,
        status=status,
        seconds=seconds,
        error=error,
        body_sha256=body.hexdigest(),
    )
