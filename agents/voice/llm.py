"""A Citadel graph as the voice session's LLM, run through the server's thread/run API like every
other client's runs (`server_api.py`).

Why not `livekit-plugins-langchain`'s `LLMAdapter`: it calls `graph.astream` itself, so a voice turn
would skip the server's runs (thread ownership, the one-run-per-thread rule, run records, durability); it
sends LiveKit's whole chat context as the graph's input each turn, where a Citadel thread already
holds its history (and may have been started in the chat page); it speaks every node's tokens, the
supervisor's routing decision included; and it has no answer to an approval interrupt. This adapter
keeps its shape (an `llm.LLM` whose stream turns LangGraph's `messages` events into `ChatChunk`s)
and fixes those four:

- each turn is a run on the conversation's thread, for its user, input the user's new words only;
- only the answer is spoken: tokens of LLM calls tagged `citadel:internal` (`agents/tags.py`), tool
  messages, and model turns that call tools are skipped, so the final answer node's tokens (or a
  node's finished answer, like the remember node's confirmation) are what reaches the TTS;
- when a step is slow — a retrieval, a tool call — it says so (`Searching your documents…`) after
  `tool_notice_seconds` without a word;
- when the graph pauses for approval, the question is spoken and the user's next words answer it
  (`Command(resume="approve" | "reject")`).
If the user interrupts (barge-in) while the graph still runs, the run is cancelled, like a chat
client that disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, llm, utils
from livekit.agents.llm import ToolChoice
from livekit.agents.types import NOT_GIVEN, NotGivenOr

from citadel.agents.tags import INTERNAL
from citadel.agents.voice import metrics
from citadel.agents.voice.conversation import Conversation, approval_question, spoken_decision
from citadel.agents.voice.server_api import ServerAPI
from citadel.errors import CitadelError, Conflict

log = logging.getLogger(__name__)

STREAM_MODE = ["messages-tuple", "updates"]
SEARCHING = "Searching your documents…"
WORKING = "One moment, I'm working on it…"
TOOL_NOTICES = {"search_documents": SEARCHING, "embed_texts": WORKING}
"""What is said when a tool call is slow, by tool name (WORKING for the others)."""
BUSY = "I'm still working on your previous request in this conversation. Please ask me again in a moment."
UNCLEAR = "Sorry, I need a yes or a no."
FAILED = "Sorry, something went wrong while I was answering that."
AI_TYPES = ("AIMessageChunk", "ai")


def step_notice(update: dict[str, Any]) -> str | None:
    """What to say if the step that follows this node update is slow, or None."""
    if update.get("specialist") == "researcher":  # the supervisor chose the researcher: a search follows
        return SEARCHING
    for message in update.get("messages") or []:
        if isinstance(message, dict) and message.get("tool_calls"):
            names = [call.get("name") for call in message["tool_calls"] if isinstance(call, dict)]
            return next((TOOL_NOTICES[name] for name in names if name in TOOL_NOTICES), WORKING)
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(
            block if isinstance(block, str) else str(block.get("text", ""))
            for block in content
            if isinstance(block, str) or (isinstance(block, dict) and block.get("type") == "text")
        )
    return ""


def _tags(metadata: Any) -> Iterable[str]:
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return tags if isinstance(tags, list) else ()


class LLM(llm.LLM):
    def __init__(
        self,
        api: ServerAPI,
        conversation: Conversation,
        *,
        tool_notice_seconds: float = 1.0,
        on_first_token: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.api = api
        self.conversation = conversation
        self.tool_notice_seconds = tool_notice_seconds
        self.on_first_token = on_first_token

    @property
    def model(self) -> str:
        return self.conversation.graph

    @property
    def provider(self) -> str:
        return "citadel"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        # Tools run inside the graph, not in LiveKit: these have no meaning here.
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> GraphStream:
        return GraphStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class GraphStream(llm.LLMStream):
    def __init__(
        self, adapter: LLM, *, chat_ctx: llm.ChatContext, tools: list[llm.Tool], conn_options: APIConnectOptions
    ) -> None:
        super().__init__(adapter, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._adapter = adapter
        self._started = time.perf_counter()
        self._first_token = True
        self._notice: asyncio.TimerHandle | None = None

    # --- output -------------------------------------------------------------------------------
    def _say(self, text: str, message_id: str | None = None) -> None:
        if self._first_token:
            self._first_token = False
            metrics.FIRST_TOKEN.observe(time.perf_counter() - self._started)
            if self._adapter.on_first_token is not None:
                self._adapter.on_first_token()
        delta = llm.ChoiceDelta(role="assistant", content=text)
        self._event_ch.send_nowait(llm.ChatChunk(id=message_id or utils.shortuuid("citadel_"), delta=delta))

    def _arm_notice(self, phrase: str) -> None:
        """Say `phrase` unless something else is said (or another step starts) within the delay."""
        self._disarm_notice()
        delay = self._adapter.tool_notice_seconds
        if delay <= 0:
            self._say(phrase + " ")
            return
        self._notice = asyncio.get_running_loop().call_later(delay, self._say, phrase + " ")

    def _disarm_notice(self) -> None:
        if self._notice is not None:
            self._notice.cancel()
            self._notice = None

    # --- a turn -------------------------------------------------------------------------------
    def _user_text(self) -> str:
        for message in reversed(self._chat_ctx.messages()):
            if message.role == "user":
                return (message.text_content or "").strip()
        return ""

    def _turn(self, text: str) -> dict[str, Any] | None:
        """The run's input, or the answer to the approval the thread waits on; None when the words
        answer neither yes nor no."""
        conversation = self._adapter.conversation
        if conversation.pending_approval is None:
            return {"input": {"messages": [{"role": "user", "content": text}]}}
        decision = spoken_decision(text)
        return None if decision is None else {"command": {"resume": decision}}

    async def _run(self) -> None:
        text = self._user_text()
        if not text:
            return
        conversation = self._adapter.conversation
        turn = self._turn(text)
        if turn is None:
            assert conversation.pending_approval is not None
            metrics.TURNS.labels("unclear_answer").inc()
            self._say(f"{UNCLEAR} {approval_question(conversation.pending_approval)}")
            return
        api = self._adapter.api
        run_ids: list[str] = []

        def accepted(run_id: str) -> None:
            run_ids.append(run_id)
            conversation.pending_approval = None  # this run answers it (or starts a new turn)

        events = api.stream(
            conversation.user_id,
            conversation.thread_id,
            conversation.graph,
            config=conversation.config,
            stream_mode=STREAM_MODE,
            metadata={"source": "voice"},
            on_run=accepted,
            **turn,
        )
        try:
            outcome = await self._follow(events)
        except Conflict:  # refused before it started: another run holds the thread
            metrics.TURNS.labels("busy").inc()
            self._say(BUSY)
            return
        except BaseException:
            # Barge-in or the session closing: stop the graph too (never left running unheard).
            if run_ids:
                with contextlib.suppress(CitadelError):
                    await asyncio.shield(api.cancel(conversation.user_id, conversation.thread_id, run_ids[0]))
            raise
        finally:
            self._disarm_notice()
            await events.aclose()  # type: ignore[attr-defined]
        metrics.TURNS.labels(outcome).inc()

    async def _follow(self, events: Any) -> str:
        """Speak a run's answer from its events; returns the turn's outcome."""
        conversation = self._adapter.conversation
        spoken: set[str] = set()
        tool_turns: set[str] = set()
        failed = False
        async for event, data in events:  # to the end: a stream left early would cancel the run
            self._disarm_notice()
            if failed:
                continue
            if event == "messages":
                self._on_message(data, spoken, tool_turns)
            elif event == "updates" and isinstance(data, dict):
                self._on_updates(data)
            elif event == "error":
                log.warning("voice turn on thread %s failed: %s", conversation.thread_id, data)
                self._say(FAILED)
                failed = True
        if failed:
            return "error"
        if conversation.pending_approval is not None:
            self._say(("\n" if spoken else "") + approval_question(conversation.pending_approval))
            return "approval_asked"
        return "answered"

    def _on_message(self, data: Any, spoken: set[str], tool_turns: set[str]) -> None:
        message, metadata = data
        if not isinstance(message, dict) or message.get("type") not in AI_TYPES or INTERNAL in _tags(metadata):
            return
        message_id = str(message.get("id") or "")
        if message.get("tool_call_chunks") or message.get("tool_calls"):
            if message_id:
                tool_turns.add(message_id)  # a model turn that calls tools: not the answer
            return
        if message_id and (message_id in tool_turns or (message.get("type") == "ai" and message_id in spoken)):
            return  # the complete form of a message already streamed
        text = _text(message.get("content"))
        if text:
            if message_id:
                spoken.add(message_id)
            self._say(text, message_id or None)

    def _on_updates(self, updates: dict[str, Any]) -> None:
        for interrupt in updates.get("__interrupt__") or []:
            value = interrupt.get("value") if isinstance(interrupt, dict) else None
            if isinstance(value, dict):
                self._adapter.conversation.pending_approval = value
        for node, update in updates.items():
            if node != "__interrupt__" and isinstance(update, dict) and (phrase := step_notice(update)):
                self._arm_notice(phrase)
