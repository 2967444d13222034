"""Identity and access, over real HTTP against the app with Clerk configured.

Keys are real RSA keys made here, and tokens are Clerk-shaped session JWTs signed with them, checked
through clerk-backend-api's own verification code. Clerk's Backend API (for machine tokens) cannot be
reached from this machine, so a small local HTTP server answers its `/m2m_tokens/verify` route in
Clerk's documented shape; the SDK's client code talks to it unchanged.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.live_server import LiveServer

AZP = "http://localhost:3000"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
)
MACHINE_OK = "mt_good_machine_token"
MACHINE_REVOKED = "mt_revoked_machine_token"


def session_token(sub: str | None = "user_a", *, key: Any = KEY, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 300,
        "azp": AZP,
        "sid": f"sess_{sub}",
        "v": 2,
    }
    if sub is not None:
        payload["sub"] = sub
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "ins_test"})


def unsigned_token() -> str:
    now = int(time.time())
    return jwt.encode({"sub": "user_a", "exp": now + 300, "azp": AZP}, None, algorithm="none")  # type: ignore[arg-type]


def hmac_with_public_key() -> str:
    """The classic key-confusion attack: HS256 with the public key as the shared secret."""
    header = {"alg": "HS256", "typ": "JWT"}
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = {"sub": "user_a", "exp": int(time.time()) + 300, "azp": AZP}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    signature = hmac.new(PUBLIC_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def ec_token() -> str:
    return jwt.encode(
        {"sub": "user_a", "exp": int(time.time()) + 300, "azp": AZP},
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
    )


class FakeClerkAPI(BaseHTTPRequestHandler):
    """Clerk's Backend API route for machine tokens, as documented: POST /m2m_tokens/verify."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        secret = json.loads(self.rfile.read(length) or b"{}").get("secret")
        if self.path.endswith("/m2m_tokens/verify") and secret == MACHINE_OK:
            body = {"object": "machine_to_machine_token", "id": "mt_1", "subject": "mch_agent", "scopes": [],
                    "claims": {"role": "developer"}, "revoked": False, "expired": False}  # fmt: skip
            status = 200
        else:
            body, status = {"errors": [{"code": "token_invalid"}]}, 401
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def clerk_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeClerkAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def auth_settings(make_settings: Any, clerk_api: str, database_url: str) -> Any:
    return make_settings(
        clerk_jwt_key=PUBLIC_PEM,
        clerk_secret_key="sk_test_not_a_real_key",
        clerk_api_url=clerk_api,
        clerk_authorized_parties=[AZP],
        database_url=database_url,
        llm_max_tokens=16,
    )


@pytest.fixture
def server(auth_settings: Any) -> Iterator[LiveServer]:
    with LiveServer.start(auth_settings) as live:
        yield live


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


FACES = {
    "rest": ("POST", "/threads/search", {}),
    "agui": ("POST", "/agui/assistant", {}),
    "mcp": ("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "ping"}),
}

BAD_TOKENS = {
    "expired": lambda: session_token(exp=int(time.time()) - 60, iat=int(time.time()) - 400, nbf=int(time.time()) - 400),
    "not yet valid": lambda: session_token(nbf=int(time.time()) + 600),
    "wrong signature": lambda: session_token(key=OTHER_KEY),
    "alg none": unsigned_token,
    "wrong azp": lambda: session_token(azp="https://evil.example"),
    "missing sub": lambda: session_token(None),
    "malformed": lambda: "not.a.jwt",
    "wrong key type": hmac_with_public_key,
    "ec key": ec_token,
    "revoked machine token": lambda: MACHINE_REVOKED,
}


@pytest.mark.parametrize("face", FACES)
def test_tokens_on_every_face(server: LiveServer, face: str) -> None:
    method, path, body = FACES[face]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        missing = http.request(method, path, json=body)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        if face == "mcp":
            assert 'resource_metadata="http://127.0.0.1' in missing.headers["www-authenticate"]
            assert "/.well-known/oauth-protected-resource" in missing.headers["www-authenticate"]
        for name, make in BAD_TOKENS.items():
            token = make()
            response = http.request(method, path, json=body, headers=bearer(token))
            assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
            assert token not in response.text, "a token is never echoed back"
        for headers in (bearer(session_token()), {"Cookie": f"__session={session_token()}"}, bearer(MACHINE_OK)):
            allowed = http.request(method, path, json=body, headers=headers)
            assert allowed.status_code not in (401, 403), f"{headers}: {allowed.status_code} {allowed.text}"


def test_public_routes_and_no_secrets_in_health(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/health").status_code == 200
        ready = http.get("/health/ready")
        assert ready.status_code == 200
        assert http.get("/metrics").status_code == 200
        assert "sk_test_not_a_real_key" not in ready.text
        assert "BEGIN PUBLIC KEY" not in ready.text
        metadata = http.get("/.well-known/oauth-protected-resource").json()
        assert metadata["resource"].endswith("/mcp")


def test_clerk_unreachable_is_a_503(make_settings: Any) -> None:
    settings = make_settings(clerk_secret_key="sk_test_x", clerk_api_url="http://127.0.0.1:1")
    with LiveServer.start(settings) as live:
        response = httpx.post(f"{live.url}/threads/search", json={}, headers=bearer(MACHINE_OK))
    assert response.status_code == 503
    assert response.headers["retry-after"]


def test_roles(server: LiveServer) -> None:
    user = bearer(session_token("user_u"))
    developer = bearer(session_token("user_d", metadata={"role": "developer"}))
    admin = bearer(session_token("user_x", org_id="org_1", o={"id": "org_1", "rol": "admin"}))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        created = http.post("/v1/collections", json={"name": "kb", "model": "all-minilm"}, headers=user)
        assert created.status_code == 403
        assert "developer" in created.json()["error"]["message"]
        assert (
            http.post("/v1/collections", json={"name": "kb", "model": "all-minilm"}, headers=developer).status_code
            == 201
        )
        points = {"documents": [{"id": "d", "text": "hello"}]}
        assert http.post("/v1/collections/kb/points", json=points, headers=user).status_code == 403
        assert http.post("/v1/collections/kb/points", json=points, headers=developer).status_code == 200
        assert http.post("/v1/collections/kb/search", json={"query": "hello"}, headers=user).status_code == 200
        assert http.get("/admin/audit", headers=developer).status_code == 403
        assert http.get("/admin/audit", headers=admin).status_code == 200


def test_another_users_thread_looks_missing(server: LiveServer) -> None:
    alice, bob = bearer(session_token("user_alice")), bearer(session_token("user_bob"))
    admin = bearer(session_token("user_admin", org_id="org_1", o={"id": "org_1", "rol": "admin"}))
    run = {"assistant_id": "assistant", "input": {"messages": [{"role": "user", "content": "Hello there"}]}}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        thread_id = http.post("/threads", json={"metadata": {"owner": "alice"}}, headers=alice).json()["thread_id"]
        assert http.post(f"/threads/{thread_id}/runs/wait", json=run, headers=alice).status_code == 200
        before = http.get(f"/threads/{thread_id}/state", headers=alice).json()
        missing = http.get(f"/threads/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=bob)
        attempts = [
            ("GET", f"/threads/{thread_id}", None),
            ("GET", f"/threads/{thread_id}/state", None),
            ("POST", f"/threads/{thread_id}/state", {"values": {"route_reason": "bob was here"}}),
            ("POST", f"/threads/{thread_id}/history", {}),
            ("PATCH", f"/threads/{thread_id}", {"metadata": {"owner": "bob"}}),
            ("POST", f"/threads/{thread_id}/runs/wait", run),
            ("POST", f"/threads/{thread_id}/runs/stream", run),
            ("POST", f"/threads/{thread_id}/runs", run),
            ("GET", f"/threads/{thread_id}/runs", None),
            (
                "POST",
                f"/threads/{thread_id}/runs/wait",
                {"assistant_id": "assistant", "command": {"resume": "approve"}},
            ),
            ("DELETE", f"/threads/{thread_id}", None),
        ]
        for method, path, body in attempts:
            response = http.request(method, path, json=body, headers=bob)
            assert response.status_code == 404, f"{method} {path}: {response.status_code}"
            assert response.json()["error"]["message"] == f"thread {thread_id} not found"
        assert missing.status_code == 404
        assert http.post("/threads/search", json={}, headers=bob).json() == []
        after = http.get(f"/threads/{thread_id}/state", headers=alice).json()
        assert after["values"] == before["values"], "alice's thread is unchanged"
        assert http.get(f"/threads/{thread_id}", headers=alice).json()["metadata"]["owner"] == "alice"
        assert [t["thread_id"] for t in http.post("/threads/search", json={}, headers=admin).json()] == [thread_id]


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_rate_limit_gives_429_with_retry_after(auth_settings: Any, store: str, request: pytest.FixtureRequest) -> None:
    overrides: dict[str, Any] = {"rate_limit_embeddings": "3/minute"}
    if store == "redis":
        overrides["redis_url"] = request.getfixturevalue("redis_url")
    settings = auth_settings.model_copy(update=overrides)
    who = f"user_rate_{store}_{time.time_ns()}"
    with LiveServer.start(settings) as live, httpx.Client(base_url=live.url) as http:
        statuses = [
            http.post("/v1/embeddings", json={"input": "hi"}, headers=bearer(session_token(who))).status_code
            for _ in range(4)
        ]
        limited = http.post("/v1/embeddings", json={"input": "hi"}, headers=bearer(session_token(who)))
        other = http.post("/v1/embeddings", json={"input": "hi"}, headers=bearer(session_token(f"{who}_other")))
    assert statuses == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert other.status_code == 200, "limits are per user"


def test_audit_rows_in_postgres(server: LiveServer, database_url: str) -> None:
    token = session_token("user_audited")
    secret_text = "my secret prompt text"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/v1/embeddings", json={"input": secret_text}, headers=bearer(token)).status_code == 200
        assert http.post("/threads/search", json={}).status_code == 401
        assert http.post("/threads/search", json={}, headers=bearer(session_token(key=OTHER_KEY))).status_code == 401
        admin = bearer(session_token("user_admin", org_id="org_1", o={"id": "org_1", "rol": "admin"}))
        listed = http.get("/admin/audit", params={"user_id": "user_audited"}, headers=admin).json()["records"]
    assert [r["action"] for r in listed] == ["POST /v1/embeddings"]

    async def rows() -> list[dict[str, Any]]:
        connection = await asyncpg.connect(database_url)
        try:
            return [dict(r) for r in await connection.fetch("select * from citadel_audit order by id")]
        finally:
            await connection.close()

    records = asyncio.run(rows())
    allowed = next(r for r in records if r["user_id"] == "user_audited")
    assert allowed["status"] == 200
    assert allowed["resource_type"] == "embedding"
    assert allowed["session_id"] == "sess_user_audited"
    assert len(allowed["body_sha256"]) == 64
    assert allowed["latency_ms"] > 0
    refused = [r for r in records if r["status"] == 401]
    assert len(refused) >= 2
    assert all(r["user_id"] is None for r in refused)
    assert any("token-invalid-signature" in (r["error"] or "") for r in refused)
    dump = json.dumps(records, default=str)
    assert secret_text not in dump, "bodies are hashed, never stored"
    assert token not in dump, "tokens are never stored"
    assert "Bearer" not in dump


def test_body_size_limit(auth_settings: Any) -> None:
    settings = auth_settings.model_copy(update={"max_body_bytes": 2048})
    with LiveServer.start(settings) as live:
        response = httpx.post(f"{live.url}/v1/embeddings", json={"input": "x" * 5000}, headers=bearer(session_token()))
    assert response.status_code == 413
    assert "CITADEL_MAX_BODY_BYTES" in response.json()["error"]["message"]


def test_serve_refuses_a_public_bind_without_auth(tmp_path: Path) -> None:
    env = {**os.environ, "CITADEL_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "citadel.runtime.cli", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0" in result.stderr
    assert "CITADEL_CLERK_JWT_KEY" in result.stderr


def test_another_users_thread_looks_missing_on_agui_and_mcp(server: LiveServer) -> None:
    """User B, with a valid Clerk token, reaches for user A's thread over AG-UI and MCP: not found."""
    import anyio

    from tests.mcp_server.test_http import client_as, text_of
    from tests.ui_bridge.agui_client import run_input, user

    alice, bob = session_token("user_alice"), session_token("user_bob")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        thread_id = http.post("/threads", json={}, headers=bearer(alice)).json()["thread_id"]
        run = {"assistant_id": "workflow", "input": {"steps": [{"type": "embedding", "text": "mine"}]}}
        assert http.post(f"/threads/{thread_id}/runs/wait", json=run, headers=bearer(alice)).status_code == 200
        before = http.get(f"/threads/{thread_id}/state", headers=bearer(alice)).json()["values"]
        agui = http.post(
            "/agui/workflow",
            json=run_input(thread_id, [user("hello")], state={}),
            headers={**bearer(bob), "Accept": "text/event-stream"},
        )
        assert agui.status_code == 404, agui.text
        assert f"thread {thread_id} not found" in agui.text

    async def as_bob() -> tuple[Any, Any, Any]:
        async with client_as(server.url, bob) as client:
            read = await client.call_tool("get_thread", {"thread_id": thread_id})
            run_on = await client.call_tool(
                "run_workflow", {"steps": [{"type": "embedding", "text": "x"}], "thread_id": thread_id}
            )
            try:
                resource: Any = await client.read_resource(f"citadel://threads/{thread_id}")
            except Exception as error:  # the SDK raises the server's JSON-RPC error
                resource = error
            return read, run_on, resource

    read, run_on, resource = anyio.run(as_bob)
    assert read.is_error
    assert f"thread {thread_id} not found" in text_of(read)
    assert run_on.is_error
    assert "not found" in text_of(run_on)
    assert "not found" in str(resource)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        after = http.get(f"/threads/{thread_id}/state", headers=bearer(alice)).json()["values"]
    assert after == before, "alice's thread is unchanged"
