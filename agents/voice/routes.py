"""`POST /voice/token`: a LiveKit access token with which a front end joins the caller's voice
conversation (the worker, `citadel voice start`, joins it too). Needs the voice extra and the
LiveKit settings; the token itself is made in `agents/voice/token.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from citadel.agents.voice import token as voice_token_maker
from citadel.core.dependencies import RegistryDep, ServicesDep
from citadel.core.identity import Identity, IdentityDep
from citadel.errors import CitadelError

router = APIRouter(tags=["voice"])


class VoiceExtraMissing(CitadelError):
    status = 501
    code = "voice_extra_missing"


class VoiceTokenRequest(BaseModel):
    thread_id: str | None = Field(
        default=None, description="Continue this thread of yours (e.g. one from the chat page); unset = a new thread."
    )
    graph: str | None = Field(
        default=None, description="The graph a new thread talks to (default CITADEL_VOICE_GRAPH)."
    )
    name: str | None = Field(default=None, max_length=128, description="Your display name in the room.")


class VoiceTokenResponse(BaseModel):
    token: str = Field(description="LiveKit access token (JWT) for the room.")
    url: str | None = Field(description="The LiveKit server to connect to (CITADEL_LIVEKIT_URL).")
    room: str = Field(description="The room: one per conversation.")
    identity: str = Field(description="Your participant identity: your Citadel user id.")
    thread_id: str = Field(description="The Citadel thread the conversation is recorded in.")
    agent_name: str | None = Field(description="The agent dispatched into the room with you (None: automatic).")
    expires_at: datetime


async def voice_caller(identity: IdentityDep) -> Identity:
    """Who may have a voice token: the caller `citadel.core.identity.current_identity` names.

    Auth hook: with Clerk configured, the auth middleware refuses a request without a valid token
    before it gets here (401), as on every route but `/health*` and `/metrics`; without it, the
    caller is the local operator on a loopback-only server. A role requirement for voice would be
    added here (`identity.require("user")`)."""
    return identity


CallerDep = Annotated[Identity, Depends(voice_caller)]


@router.post("/voice/token", response_model=VoiceTokenResponse)
async def voice_token(
    body: VoiceTokenRequest, services: ServicesDep, registry: RegistryDep, caller: CallerDep
) -> VoiceTokenResponse:
    """A LiveKit token for your voice conversation: a new thread, or one of yours to continue."""
    if missing := voice_token_maker.missing_extra():
        raise VoiceExtraMissing(f"voice needs the voice extra (uv sync --extra voice): {missing}")
    settings = services.settings
    voice_token_maker.ensure_configured(settings)
    store = services.app_store
    assert store is not None
    if body.thread_id is not None:
        thread = await store.get_thread(body.thread_id, caller.user_id)  # someone else's: 404, like a missing one
        graph = thread.graph or body.graph or settings.voice_graph
    else:
        graph = body.graph or settings.voice_graph
        registry.get(graph)  # 404 for an unknown graph
        thread = await store.create_thread(caller.user_id, graph=graph, metadata={"source": "voice"})
    minted = voice_token_maker.mint_token(
        settings, user_id=caller.user_id, thread_id=thread.thread_id, graph=graph, name=body.name
    )
    return VoiceTokenResponse(**minted.__dict__)
