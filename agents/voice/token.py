"""LiveKit access tokens for voice front ends (`POST /voice/token`).

A token lets its holder join one room as one identity: the Citadel user. Each conversation has its
own room, `CITADEL_VOICE_ROOM_PREFIX` + the thread id, so a token never opens another user's
conversation. The participant's metadata names the user and the thread (the worker reads it,
`conversation.py`), and the token withholds the grant to change it. With an agent name configured,
the token also carries a dispatch of that agent into the room (LiveKit's explicit dispatch), so the
worker joins as the user does.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from citadel.agents.voice.conversation import participant_metadata
from citadel.errors import CitadelError
from citadel.settings import Settings


class VoiceNotConfigured(CitadelError):
    status = 503
    code = "voice_not_configured"


@dataclass(frozen=True)
class VoiceToken:
    token: str
    url: str | None
    room: str
    identity: str
    thread_id: str
    agent_name: str | None
    expires_at: datetime


def room_name(settings: Settings, thread_id: str) -> str:
    return f"{settings.voice_room_prefix}{thread_id}"


def ensure_configured(settings: Settings) -> tuple[str, str]:
    """The LiveKit API key and secret, or VoiceNotConfigured (503) naming the settings."""
    if not settings.livekit_api_key or settings.livekit_api_secret is None:
        raise VoiceNotConfigured(
            "voice is not configured: set CITADEL_LIVEKIT_URL, CITADEL_LIVEKIT_API_KEY and CITADEL_LIVEKIT_API_SECRET "
            "(or LiveKit's own LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET)"
        )
    return settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()


@functools.cache
def missing_extra() -> str | None:
    """Why tokens cannot be minted here (the voice extra is not installed), or None. LiveKit's API
    package (about 15 MB) is imported by the first token, not with the app."""
    try:
        found = importlib.util.find_spec("livekit.api")
    except ImportError as error:
        return str(error)
    return None if found is not None else "No module named 'livekit.api'"


def mint_token(settings: Settings, *, user_id: str, thread_id: str, graph: str, name: str | None = None) -> VoiceToken:
    from livekit import api

    key, secret = ensure_configured(settings)
    room = room_name(settings, thread_id)
    ttl = timedelta(seconds=settings.voice_token_ttl)
    metadata = participant_metadata(user_id, thread_id, graph)
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        can_update_own_metadata=False,
    )
    token = (
        api.AccessToken(key, secret)
        .with_identity(user_id)
        .with_name(name or user_id)
        .with_metadata(metadata)
        .with_grants(grants)
        .with_ttl(ttl)
    )
    agent_name = settings.voice_agent_name or None
    if agent_name:
        dispatch = api.RoomAgentDispatch(agent_name=agent_name, metadata=metadata)
        token = token.with_room_config(api.RoomConfiguration(agents=[dispatch]))
    return VoiceToken(
        token=token.to_jwt(),
        url=settings.livekit_url,
        room=room,
        identity=user_id,
        thread_id=thread_id,
        agent_name=agent_name,
        expires_at=datetime.now(UTC) + ttl,
    )
