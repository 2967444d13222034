"""The voice agent and its `AgentSession`: Silero VAD, turn detection, STT and TTS from
`plugins.py`, and the conversation's graph as the LLM (`llm.py`).

Turn handling: the end of a turn comes from VAD (or the STT, `CITADEL_VOICE_TURN_DETECTION`) after
`CITADEL_VOICE_MIN_ENDPOINTING_DELAY` of silence; barge-in is detected by VAD. Preemptive generation
is off: it would start a graph run on a thread before the user has finished, and a run is a turn
recorded in the thread, not a draft that can be thrown away.
"""

from __future__ import annotations

from typing import Any

from livekit.agents import Agent, AgentSession, ConversationItemAddedEvent, UserStateChangedEvent, llm
from livekit.agents.voice.turn import TurnHandlingOptions

from citadel.agents.voice import metrics
from citadel.agents.voice.conversation import Conversation, approval_question
from citadel.agents.voice.llm import LLM
from citadel.agents.voice.plugins import SpeechPlugins
from citadel.agents.voice.server_api import ServerAPI
from citadel.settings import Settings

INSTRUCTIONS = (
    "You are Citadel's voice. Answers come from the Citadel graph this session talks to; "
    "its nodes carry their own prompts."
)
"""LiveKit requires instructions; the graph does not read them (its input is the user's words)."""


class VoiceAgent(Agent):
    def __init__(self, graph_llm: LLM) -> None:
        super().__init__(instructions=INSTRUCTIONS, llm=graph_llm)
        self.conversation = graph_llm.conversation

    async def on_enter(self) -> None:
        # A thread paused for approval (here earlier, or in the chat page) asks again on joining.
        if self.conversation.pending_approval is not None:
            self.session.say(approval_question(self.conversation.pending_approval))


def turn_handling(settings: Settings, *, audio: bool = True) -> TurnHandlingOptions:
    return TurnHandlingOptions(
        turn_detection=settings.voice_turn_detection if audio else "manual",
        endpointing={"min_delay": settings.voice_min_endpointing_delay},
        interruption={"mode": "vad"},
        preemptive_generation={"enabled": False},
    )


def build_session(
    settings: Settings,
    api: ServerAPI,
    conversation: Conversation,
    plugins: SpeechPlugins | None = None,
    *,
    tool_notice_seconds: float | None = None,
) -> tuple[AgentSession[Any], VoiceAgent]:
    """A session for one participant, and the agent to `start` it with. Without `plugins`, text only
    (LiveKit's test harness: `session.run(user_input=...)`)."""
    clock = metrics.TurnClock()
    graph_llm = LLM(
        api,
        conversation,
        tool_notice_seconds=settings.voice_tool_notice_seconds if tool_notice_seconds is None else tool_notice_seconds,
        on_first_token=clock.first_token,
    )
    options: dict[str, Any] = {"llm": graph_llm, "turn_handling": turn_handling(settings, audio=plugins is not None)}
    if plugins is not None:
        options |= {"stt": plugins.stt, "tts": plugins.tts, "vad": plugins.vad}
    else:
        options["vad"] = None
    session: AgentSession[Any] = AgentSession(**options)

    @session.on("user_state_changed")
    def _speech_ended(event: UserStateChangedEvent) -> None:
        if event.old_state == "speaking" and event.new_state != "speaking":
            clock.user_stopped_speaking(event.created_at)

    @session.on("conversation_item_added")
    def _timing(event: ConversationItemAddedEvent) -> None:
        item = event.item
        if not isinstance(item, llm.ChatMessage):
            return
        if item.role == "user":
            clock.user_message(dict(item.metrics))
        elif item.role == "assistant":
            clock.reply(dict(item.metrics), interrupted=item.interrupted)

    return session, VoiceAgent(graph_llm)
