"""`POST /voice/token` over real HTTP: a token that livekit-api verifies, carrying the caller's
identity, the room's grants, the thread and the agent dispatch; refused without auth once Clerk is
configured; someone else's thread answered like a missing one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from livekit import api

from citadel.agents.voice.conversation import caller_from_participant
from citadel.memory.app_store import AppStore
from citadel.memory.database import create_engine
from citadel.settings import Settings
from tests.live_server import LiveServer

KEY, SECRET = "devkey", "secret-of-at-least-thirty-two-characters"
LIVEKIT = {"livekit_url": "wss://livekit.example", "livekit_api_key": KEY, "livekit_api_secret": SECRET}
CLERK_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLERK_PEM = (
    CLERK_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def clerk_session(sub: str) -> str:
    """A Clerk-shaped session token, signed with the instance key the server is configured with."""
    now = int(time.time())
    claims = {"sub": sub, "sid": f"sess_{sub}", "iat": now - 5, "nbf": now - 5, "exp": now + 300, "v": 2}
    return jwt.encode(claims, CLERK_KEY, algorithm="RS256", headers={"kid": "ins_test"})


@pytest.fixture
def server(make_settings: Any, request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, Settings]]:
    overrides: dict[str, Any] = dict(LIVEKIT)
    overrides.update(getattr(request, "param", {}))
    settings = make_settings(**overrides)
    with LiveServer.start(settings) as live:
        yield live, settings


def verified(token: str) -> api.Claims:
    return api.TokenVerifier(KEY, SECRET).verify(token)


def test_a_token_for_a_new_conversation(server: tuple[LiveServer, Settings]) -> None:
    live, _settings = server
    with httpx.Client(base_url=live.url, timeout=30) as client:
        response = client.post("/voice/token", json={"name": "Ada"})
        assert response.status_code == 200, response.text
        body = response.json()
        claims = verified(body["token"])
        thread = client.get(f"/threads/{body['thread_id']}").json()

    user = claims.identity
    assert body["identity"] == user
    assert body["url"] == "wss://livekit.example"
    assert body["room"] == f"citadel-{body['thread_id']}"
    assert body["agent_name"] == "citadel"
    assert claims.name == "Ada"
    video = claims.video
    assert video is not None
    assert video.room == body["room"]
    assert video.room_join
    assert video.can_publish
    assert video.can_subscribe
    assert video.can_publish_data
    assert video.can_update_own_metadata is False  # the metadata below is Citadel's word, not the user's
    caller = caller_from_participant(claims.identity, claims.metadata)
    assert (caller.user_id, caller.thread_id, caller.graph) == (user, body["thread_id"], "assistant")
    assert [d.agent_name for d in claims.room_config.agents] == ["citadel"]  # explicit dispatch of the worker
    # The thread exists already, the caller's, so the chat page can list and continue it.
    assert thread["metadata"]["source"] == "voice"
    assert thread["metadata"]["assistant_id"] == "assistant"
    # A token signed with another secret does not verify.
    with pytest.raises(jwt.InvalidSignatureError):
        api.TokenVerifier(KEY, "another-secret-of-at-least-thirty-two-chars").verify(body["token"])


def test_a_token_to_continue_a_chat_thread_and_not_someone_elses(server: tuple[LiveServer, Settings]) -> None:
    live, settings = server

    async def bobs_thread() -> str:
        engine = create_engine(settings)
        try:
            async with AppStore(engine) as store:
                return (await store.create_thread("bob", graph="assistant")).thread_id
        finally:
            await engine.dispose()

    other = asyncio.run(bobs_thread())
    with httpx.Client(base_url=live.url, timeout=30) as client:
        chat_thread = client.post("/threads", json={"metadata": {"from": "chat"}}).json()["thread_id"]
        response = client.post("/voice/token", json={"thread_id": chat_thread})
        assert response.status_code == 200, response.text
        assert response.json()["thread_id"] == chat_thread
        assert verified(response.json()["token"]).video.room == f"citadel-{chat_thread}"  # type: ignore[union-attr]

        refused = client.post("/voice/token", json={"thread_id": other})
        assert refused.status_code == 404
        assert client.post("/voice/token", json={"graph": "nope"}).status_code == 404


def test_without_livekit_settings_it_says_what_to_set(make_settings: Any) -> None:
    with LiveServer.start(make_settings()) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        response = client.post("/voice/token", json={})
    assert response.status_code == 503
    assert "CITADEL_LIVEKIT_API_KEY" in response.json()["error"]["message"]


@pytest.mark.skipif("clerk_jwt_key" not in Settings.model_fields, reason="authentication is not built yet")
@pytest.mark.parametrize("server", [{"clerk_jwt_key": CLERK_PEM}], indirect=True)
def test_refused_without_auth_and_issued_for_the_authenticated_user(server: tuple[LiveServer, Settings]) -> None:
    live, _ = server
    with httpx.Client(base_url=live.url, timeout=30) as client:
        refused = client.post("/voice/token", json={})
        assert refused.status_code == 401
        assert client.post("/voice/token", json={}, headers={"Authorization": "Bearer nonsense"}).status_code == 401

        alice = {"Authorization": f"Bearer {clerk_session('user_alice')}"}
        response = client.post("/voice/token", json={}, headers=alice)
        assert response.status_code == 200, response.text
        body = response.json()
        bob = {"Authorization": f"Bearer {clerk_session('user_bob')}"}
        stolen = client.post("/voice/token", json={"thread_id": body["thread_id"]}, headers=bob)
    claims = verified(body["token"])
    assert claims.identity == "user_alice" == body["identity"]
    assert json.loads(claims.metadata)["citadel"]["user_id"] == "user_alice"
    assert stolen.status_code == 404  # bob cannot join alice's conversation


def test_livekit_own_variables_are_enough(make_settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only LiveKit's own LIVEKIT_URL / _API_KEY / _API_SECRET set, as the worker honours them."""
    for name, value in (("LIVEKIT_URL", "wss://own.example"), ("LIVEKIT_API_KEY", KEY), ("LIVEKIT_API_SECRET", SECRET)):
        monkeypatch.setenv(name, value)
    with LiveServer.start(make_settings()) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        response = client.post("/voice/token", json={})
    assert response.status_code == 200, response.text
    assert response.json()["url"] == "wss://own.example"
    assert verified(response.json()["token"]).identity == "anonymous"
