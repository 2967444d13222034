"""Authentication with Clerk, on every route but `/health*` and `/metrics`.

Session tokens (JWT, from `Authorization: Bearer` or Clerk's `__session` cookie) are verified with
clerk-backend-api's `authenticate_request`: networkless with the instance's PEM public key, or via
JWKS with the secret key. Machine tokens and API keys (`mt_`, `m2m_`, `ak_`, `oat_`) for agent-to-
agent callers are verified with the SDK's `verify_token` against Clerk's Backend API. That part
lives in `clerk_auth.py`, imported only when Clerk is configured.

A missing or bad token is a 401 with `WWW-Authenticate: Bearer` (on `/mcp` also the MCP
authorization metadata the spec asks for); Clerk unreachable is a 503. The reason is named, the
token never repeated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.types import Scope, Send

from citadel.core.identity import LOCAL, Identity
from citadel.settings import Settings

if TYPE_CHECKING:
    from citadel.runtime.clerk_auth import ClerkAuthenticator

log = logging.getLogger(__name__)

PUBLIC_PATHS = ("/health", "/metrics")
ACT_FOR_HEADER = "x-citadel-user"
"""An administrator (the local operator, or a machine token with the admin role) acting for a user:
Citadel's own processes that serve people, such as the voice worker, whose caller is the user named
in a LiveKit token the server signed. The request is then that user's, with the `user` role."""
ACT_FOR_HEADER_BYTES = ACT_FOR_HEADER.encode()
PROTECTED_RESOURCE_PATH = "/.well-known/oauth-protected-resource"


@dataclass
class AuthFailure(Exception):
    reason: str
    status: int = 401


def _acting_for(caller: Identity, user_id: str) -> Identity:
    if not caller.is_admin:
        raise AuthFailure(f"only an administrator may act for another user ({ACT_FOR_HEADER})", status=403)
    if not user_id or len(user_id) > 255 or not user_id.isprintable():
        raise AuthFailure(f"{ACT_FOR_HEADER} must name a user (1 to 255 printable characters)", status=400)
    return Identity(user_id=user_id, role="user", kind="user")


class Authentication:
    """The first step of the request pipeline: puts the caller's Identity on `state["identity"]`, or
    answers 400/401/403/503 itself."""

    def __init__(self, settings: Settings) -> None:
        self.authenticator: ClerkAuthenticator | None = None
        if settings.auth_enabled:  # Clerk's SDK (and the cryptography it loads) only when configured
            from citadel.runtime.clerk_auth import ClerkAuthenticator

            self.authenticator = ClerkAuthenticator(settings)

    async def admit(self, scope: Scope, state: dict[str, Any], headers: Mapping[bytes, bytes], send: Send) -> bool:
        """True if the request may go on; else it was answered here."""
        path: str = scope["path"]
        identity: Identity | None
        if self.authenticator is None:
            identity = LOCAL
        elif path.startswith(PUBLIC_PATHS) or path.startswith(PROTECTED_RESOURCE_PATH) or scope["method"] == "OPTIONS":
            identity = None
        else:
            try:
                identity = await self.authenticator.identify(Headers(scope=scope))
            except AuthFailure as failure:
                await _refuse(scope, state, headers, send, failure)
                return False
        state["identity"] = identity
        acting_for = headers.get(ACT_FOR_HEADER_BYTES)
        if acting_for is not None and identity is not None:
            try:
                state["identity"] = _acting_for(identity, acting_for.decode("latin-1").strip())
            except AuthFailure as failure:
                await _refuse(scope, state, headers, send, failure)
                return False
        return True


async def _refuse(
    scope: Scope, state: dict[str, Any], headers: Mapping[bytes, bytes], send: Send, failure: AuthFailure
) -> None:
    challenge = 'Bearer realm="citadel"'
    if failure.status == 401:
        challenge += f', error="invalid_token", error_description="{failure.reason.replace(chr(34), chr(39))}"'
        if scope["path"].startswith("/mcp"):
            host = headers.get(b"host", b"localhost").decode("latin-1")
            scheme = scope.get("scheme", "http")
            challenge += f', resource_metadata="{scheme}://{host}{PROTECTED_RESOURCE_PATH}"'
    kind = {401: "unauthorized", 403: "forbidden", 400: "invalid_request"}.get(failure.status, "auth_unavailable")
    body = json.dumps({"error": {"message": failure.reason, "type": kind, "code": kind, "param": None}}).encode()
    response_headers = [(b"content-type", b"application/json")]
    if failure.status in (401, 503):
        response_headers.append((b"www-authenticate", challenge.encode()))
    if failure.status == 503:
        response_headers.append((b"retry-after", b"5"))
    state["auth_error"] = failure.reason
    await send({"type": "http.response.start", "status": failure.status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})
