"""Clerk's verification of a request's token (`Authentication` in `auth.py` uses it when Clerk is
configured): session tokens with `authenticate_request`, machine tokens and API keys with
`verify_token`, both from clerk-backend-api."""

from __future__ import annotations

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

from citadel.core.identity import Identity, Role
from citadel.runtime.auth import AuthFailure
from citadel.settings import Settings


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


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if value and value.lower().startswith("bearer "):
        return value[7:].strip() or None
    return None


def _explain(reason: tuple[str, str]) -> str:
    code, text = reason
    return f"{code}: {text}" if code else text
