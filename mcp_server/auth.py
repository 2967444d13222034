"""Who calls an MCP tool, and the bearer-token hook for `/mcp`.

The caller is, in order: the principal of a bearer token that `BearerAuth`'s verifier accepted on
`/mcp`; else the `Identity` Citadel's own auth middleware put on the request (every HTTP route,
`/mcp` included, when Clerk is configured); else the local operator (stdio, or HTTP with auth off, which
binds to loopback only). Threads and runs are owned by that caller, as on every other face.

`BearerAuth` is the hook for MCP-specific token checking: give `MCPEndpoint` one with an MCP SDK
`TokenVerifier` and `/mcp` answers a request without a valid token `401` with `WWW-Authenticate:
Bearer ...` (naming the protected-resource metadata URL when given), and a token lacking a required
scope `403`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import TokenVerifier
from mcp.server.mcpserver import Context
from pydantic import AnyHttpUrl
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp

from citadel.core.identity import LOCAL, Identity


@dataclass(frozen=True)
class BearerAuth:
    verifier: TokenVerifier
    required_scopes: Sequence[str] = ()
    resource_metadata_url: str | None = None
    """Where clients find the OAuth protected-resource metadata (sent in `WWW-Authenticate`)."""

    def protect(self, app: ASGIApp) -> ASGIApp:
        metadata = AnyHttpUrl(self.resource_metadata_url) if self.resource_metadata_url else None
        required = RequireAuthMiddleware(app, list(self.required_scopes), metadata)
        return AuthenticationMiddleware(AuthContextMiddleware(required), backend=BearerAuthBackend(self.verifier))


def caller(ctx: Context[Any, Any]) -> Identity:
    request = ctx.request_context.request
    if not isinstance(request, Request):
        return LOCAL  # stdio, or in-process
    user = request.scope.get("user")
    if isinstance(user, AuthenticatedUser):  # `BearerAuth` on /mcp vouched for this token
        token = user.access_token
        return Identity(user_id=token.subject or token.client_id, kind="user" if token.subject else "machine")
    identity = request.scope.get("state", {}).get("identity")
    if isinstance(identity, Identity):
        return identity
    return LOCAL
