"""Authentication with Clerk, on every route but `/health*` and `/metrics`.

Session tokens (JWT, from `Authorization: Bearer` or Clerk's `__session` cookie) are verified with
clerk-backend-api's `authenticate_request`: networkless with the instance's PEM public key, or via
JWKS with the secret key. Machine tokens and API keys (`mt_`, `m2m_`, `ak_`, `oat_`) for agent-to-
agent callers are verified with the SDK's `verify_token` against Clerk's Backend API.

A missing or bad token is a 401 with `WWW-Authenticate: Bearer` (on `/mcp` also the MCP
authorization metadata the spec asks for); Clerk unreachable is a 503. The reason is named, the
token never repeated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clerk_backend_api.security.authenticaterequest import authenticate_request_async
from clerk_backend_api.security.machine import is_machine_token
from clerk_backend_api.security.types import (
    AuthenticateRequestOptions,
    AuthStatus,
    TokenVerificationError,
    TokenVerificationErrorReason,
    VerifyTokenOptions,
)
from clerk_backend_api.security.verifytoken import verify_token_async
from starlette.datastructures import Headers
from starlette.types import Scope, Send

from citadel.core.identity import LOCAL, Identity, Role
from citadel.settings import Settings

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


@dataclass
class _Headers:
    headers: Mapping[str, str]


def _claim(payload: Mapping[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class ClerkAuthenticator:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwt_key = settings.clerk_jwt_key.get_secret_value() if settings.clerk_jwt_key else None
        self._secret_key = settings.clerk_secret_key.get_secret_value() if settings.clerk_secret_key else None

    def _role(self, *candidates: Any) -> Role:
        for candidate in candidates:
            if isinstance(candidate, str) and candidate:
                mapped = self._settings.clerk_role_map.get(candidate, candidate)
                if mapped in ("user", "developer", "admin"):
                    return mapped  # type: ignore[return-value]
        return "user"

    async def identify(self, headers: Mapping[str, str]) -> Identity:
        """The caller's identity, or AuthFailure saying why not."""
        token = _bearer(headers)
        if token is not None and is_machine_token(token):
            return await self._machine(token)
        options = AuthenticateRequestOptions(
            jwt_key=self._jwt_key,
            secret_key=self._secret_key,
            authorized_parties=self._settings.clerk_authorized_parties or None,
            clock_skew_in_ms=self._settings.clerk_clock_skew_ms,
        )
        state = await authenticate_request_async(_Headers(headers), options)
        if state.status is not AuthStatus.SIGNED_IN or not state.payload:
            reason = state.reason.value if state.reason is not None else ("", "token rejected")
            raise AuthFailure(_explain(reason), status=503 if reason[0] == "server-error" else 401)
        payload = state.payload
        subject = payload.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthFailure("token has no subject (sub)")
        role = self._role(payload.get("org_role"), _claim(payload, self._settings.clerk_role_claim))
        return Identity(user_id=subject, role=role, session_id=payload.get("sid"), org_id=payload.get("org_id"))

    async def _machine(self, token: str) -> Identity:
        if not self._secret_key:
            raise AuthFailure("machine tokens need CITADEL_CLERK_SECRET_KEY to be verified")
        options = VerifyTokenOptions(secret_key=self._secret_key, api_url=self._settings.clerk_api_url)
        try:
            payload = await verify_token_async(token, options)
        except TokenVerificationError as error:
            server = error.reason is TokenVerificationErrorReason.SERVER_ERROR
            raise AuthFailure(_explain(error.reason.value), status=503 if server else 401) from error
        subject = payload.get("subject") or payload.get("id")
        if not isinstance(subject, str) or not subject or payload.get("revoked") or payload.get("expired"):
            raise AuthFailure("machine token is revoked, expired or has no subject")
        claims = payload.get("claims") if isinstance(payload.get("claims"), Mapping) else {}
        return Identity(user_id=subject, role=self._role((claims or {}).get("role")), kind="machine")


def _acting_for(caller: Identity, user_id: str) -> Identity:
    if not caller.is_admin:
        raise AuthFailure(f"only an administrator may act for another user ({ACT_FOR_HEADER})", status=403)
    if not user_id or len(user_id) > 255 or not user_id.isprintable():
        raise AuthFailure(f"{ACT_FOR_HEADER} must name a user (1 to 255 printable characters)", status=400)
    return Identity(user_id=user_id, role="user", kind="user")


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if value and value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return None


def _explain(reason: tuple[str, str]) -> str:
    code, text = reason
    return f"{code}: {text}" if code else text


class Authentication:
    """The first step of the request pipeline: puts the caller's Identity on `state["identity"]`, or
    answers 400/401/403/503 itself."""

    def __init__(self, settings: Settings) -> None:
        self.authenticator = ClerkAuthenticator(settings) if settings.auth_enabled else None

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
