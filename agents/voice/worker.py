"""The LiveKit worker: `citadel voice dev|start`.

It registers with the LiveKit server (`CITADEL_LIVEKIT_URL`, `_API_KEY`, `_API_SECRET`; unset, LiveKit's
own `LIVEKIT_*` variables) under the agent name `CITADEL_VOICE_AGENT_NAME`, so it joins the rooms it is
dispatched to (tokens from `POST /voice/token` carry that dispatch); with an empty name, every new
room. Each job runs in its own process (LiveKit's process pool): it waits for the participant, maps
them to their thread on the running Citadel server, and runs an `AgentSession` until they leave. The
graphs run on the server, through its thread/run API (`CITADEL_URL`, with `CITADEL_TOKEN` when auth is
on): a job holds no database, vector store or model of its own, only speech (VAD, STT, TTS), so the
worker runs beside `citadel serve` on the embedded defaults and holds any number of conversations.

`dev` and `start` follow livekit-agents' CLI: `dev` for development (readable logs, debug level,
no idle processes kept warm), `start` for production.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from livekit.agents import AgentServer, JobContext, JobProcess, room_io

from citadel.agents.voice import metrics
from citadel.agents.voice.agent import build_session
from citadel.agents.voice.conversation import caller_from_participant, open_conversation
from citadel.agents.voice.plugins import load_vad, speech_plugins
from citadel.agents.voice.server_api import ServerAPI
from citadel.agents.voice.stt import STT as WhisperSTT
from citadel.agents.voice.stt import model_dir
from citadel.errors import CitadelError
from citadel.settings import Settings

log = logging.getLogger(__name__)

GREETING = "Hello, this is Citadel. How can I help?"
PROCESS_START_SECONDS = 120.0
"""A job process loads Silero and assembles the Whisper model on its first start."""


def prewarm(settings: Settings, proc: JobProcess) -> None:
    """Per job process, before any job: Silero VAD loaded, the Whisper model assembled."""
    proc.userdata["vad"] = load_vad()
    if settings.voice_stt == "citadel":
        model_dir(settings.voice_model_dir)


async def entrypoint(settings: Settings, ctx: JobContext) -> None:
    """One room: the first participant's conversation, until they leave."""
    await ctx.connect()
    participant = await ctx.wait_for_participant()
    caller = caller_from_participant(participant.identity, participant.metadata)
    plugins = speech_plugins(settings, ctx.proc.userdata.get("vad"))
    api = ServerAPI.from_settings(settings)
    try:
        try:
            conversation = await open_conversation(api, caller, settings.voice_graph)
        except CitadelError as error:  # the server down, or the thread someone else's
            log.error("voice: no conversation for %s in room %s: %s", caller.user_id, ctx.room.name, error.message)
            return
        log.info("voice: %s on thread %s in room %s", caller.user_id, conversation.thread_id, ctx.room.name)
        session, agent = build_session(settings, api, conversation, plugins)
        closed = asyncio.Event()
        session.on("close", lambda _: closed.set())
        warm_up = asyncio.create_task(plugins.stt.warm_up()) if isinstance(plugins.stt, WhisperSTT) else None
        metrics.SESSIONS.inc()
        try:
            await session.start(
                agent, room=ctx.room, room_options=room_io.RoomOptions(participant_identity=participant.identity)
            )
            if conversation.pending_approval is None:
                session.say(GREETING)
            await closed.wait()
        finally:
            metrics.SESSIONS.dec()
            if warm_up is not None:
                warm_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warm_up
    finally:
        await api.aclose()


def build_server(settings: Settings) -> AgentServer:
    """The worker, configured from settings (functions are bound to them with `partial`, which
    LiveKit pickles into each job process)."""
    secret = settings.livekit_api_secret.get_secret_value() if settings.livekit_api_secret else None
    options: dict[str, Any] = {
        "ws_url": settings.livekit_url,
        "api_key": settings.livekit_api_key,
        "api_secret": secret,
        "setup_fnc": functools.partial(prewarm, settings),
        "initialize_process_timeout": PROCESS_START_SECONDS,
    }
    if settings.voice_metrics_port is not None:
        options["prometheus_port"] = settings.voice_metrics_port
        options["prometheus_multiproc_dir"] = str(settings.data_dir / "voice-metrics")
    server = AgentServer(**options)
    server.rtc_session(functools.partial(entrypoint, settings), agent_name=settings.voice_agent_name)
    return server


def run_worker(
    settings: Settings,
    *,
    dev: bool,
    log_level: str,
    url: str | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
) -> None:
    """Run the worker until SIGINT/SIGTERM (then drain: running conversations finish), as livekit-agents'
    own `start` and `dev` commands do."""
    from livekit.agents.cli import cli as livekit_cli
    from livekit.agents.cli import proto

    server = build_server(settings)
    # LiveKit's CLI installs its own log handler (JSON for `start`, colours for `dev`): one is enough.
    logging.getLogger().handlers.clear()
    # livekit-agents' CLI entry (`cli.run_app`) parses sys.argv and is deprecated in favour of `lk
    # agent`; both end in this function, which takes the parsed arguments directly.
    livekit_cli._run_worker(
        server, proto.CliArgs(log_level=log_level.upper(), url=url, api_key=api_key, api_secret=api_secret, dev=dev)
    )
