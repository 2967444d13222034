"""What the voice face adds before the first token (`python -m benchmarks.voice_overhead`).

In text mode (no audio: STT and TTS times are the providers'), the time from a user's input to the
graph's first answer token, measured two ways in the same run, on the same services (embedded
MiniLM and SmolLM2), with the app tables and checkpoints on SQLite (the embedded default) and on
PostgreSQL (`--database-url`, default this machine's test server; a fresh database, dropped after):
- direct: `graph.astream(..., stream_mode="messages")` on a fresh thread, first non-internal token;
- voice: `AgentSession.run(user_input=...)` on a fresh conversation, first chunk out of the agent's
  `llm_node` — through LiveKit's pipeline, Citadel's LLM adapter and a running `citadel serve` in a
  process of its own, over its thread/run API (as the voice worker beside `citadel serve` does: run
  records, the thread's busy flag, the run's events as SSE). The server has its own data directory
  (and, on PostgreSQL, the same database), with the same models.
Two turns: the generalist (one LLM call; its time is mostly the model's and varies with it) and the
remember node (no LLM: the plumbing alone). Iterations alternate the two ways, after a warm-up.
Target: voice overhead (median difference) ≤ 50 ms. "of it LiveKit" is LiveKit's pipeline alone (input →
the agent's `llm_node` called); the rest is the run's durable bookkeeping (the run accepted, then
claimed by the server's executor: two database commits before the graph starts, which every face
pays), HTTP and the adapter. The server runs in a process of its own, as it does beside a voice
worker: in a thread of the benchmark's process it would share its GIL and its log handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

from livekit.agents import Agent, FlushSentinel, ModelSettings, llm

from benchmarks._server import citadel_serve
from benchmarks.checkpoints import fresh_postgres
from citadel.agents.tags import INTERNAL
from citadel.agents.voice.agent import VoiceAgent, build_session
from citadel.agents.voice.conversation import Caller, open_conversation
from citadel.agents.voice.server_api import ServerAPI
from citadel.core.services import Core
from citadel.runtime.core import open_core
from citadel.runtime.logging_setup import configure_logging
from citadel.settings import Settings

TURNS = {"generalist (LLM)": "Hi there! How are you doing?", "remember (no LLM)": "Remember that my cat is Tom."}
TARGET_MS = 50.0


class TimedAgent(VoiceAgent):
    """The voice agent, noting when its first answer chunk leaves `llm_node` for the TTS."""

    first_chunk_at: float | None = None
    node_entered_at: float | None = None

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str | FlushSentinel]:
        self.node_entered_at = time.perf_counter()
        async for chunk in Agent.default.llm_node(self, chat_ctx, tools, model_settings):
            if self.first_chunk_at is None:
                self.first_chunk_at = time.perf_counter()
            yield chunk


async def direct(runtime: Core, text: str) -> float:
    graph = runtime.registry.get("assistant").graph
    config = {"configurable": {"thread_id": f"bench-{uuid.uuid4().hex}", "user_id": "bench"}}
    started = time.perf_counter()
    first: float | None = None
    stream: Any = graph.astream({"messages": [{"role": "user", "content": text}]}, config, stream_mode="messages")
    async for message, metadata in stream:
        answer = message.type in ("AIMessageChunk", "ai") and INTERNAL not in (metadata.get("tags") or [])
        if first is None and answer and message.text:
            first = time.perf_counter()
    assert first is not None, "the graph gave no answer token"
    return first - started


async def voice(api: ServerAPI, settings: Settings, text: str) -> tuple[float, float]:
    """(input → first chunk, input → the agent's `llm_node` called: LiveKit's own share)."""
    conversation = await open_conversation(api, Caller("bench"), "assistant")
    session, plain = build_session(settings, api, conversation)
    agent = TimedAgent(plain.llm)  # type: ignore[arg-type]
    async with session:
        await session.start(agent)
        started = time.perf_counter()
        await session.run(user_input=text)
    assert agent.first_chunk_at is not None, "the voice agent gave no answer chunk"
    assert agent.node_entered_at is not None
    return agent.first_chunk_at - started, agent.node_entered_at - started


async def measure(
    runtime: Core, api: ServerAPI, settings: Settings, text: str, runs: int
) -> tuple[list[float], list[float], list[float]]:
    for _ in range(2):  # warm-up: models loaded, caches filled, code paths compiled
        await direct(runtime, text)
        await voice(api, settings, text)
    direct_times, voice_times, livekit_times = [], [], []
    for _ in range(runs):
        direct_times.append(await direct(runtime, text))
        total, livekit = await voice(api, settings, text)
        voice_times.append(total)
        livekit_times.append(livekit)
    return direct_times, voice_times, livekit_times


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def bench(settings: Settings, backend: str, runs: int) -> float:
    worst = 0.0
    env = {"CITADEL_LLM_MAX_TOKENS": str(settings.llm_max_tokens)}
    if settings.database_url:
        env["CITADEL_DATABASE_URL"] = settings.database_url
    with citadel_serve(env, timeout=300) as server:
        api = ServerAPI(server.url)
        async with open_core(settings) as runtime:
            for label, text in TURNS.items():
                direct_times, voice_times, livekit_times = await measure(runtime, api, settings, text, runs)
                base, via = statistics.median(direct_times) * 1000, statistics.median(voice_times) * 1000
                worst = max(worst, via - base)
                print(
                    f"{backend:<11}{label:<20}{base:>11.1f}{via:>11.1f}{p(direct_times, 0.95):>11.1f}"
                    f"{p(voice_times, 0.95):>11.1f}{via - base:>14.1f}{via / base:>10.2f}"
                    f"{statistics.median(livekit_times) * 1000:>15.1f}"
                )
        await api.aclose()
    return worst


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="Measured turns per way and turn kind.")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    configure_logging("warning")  # as `citadel voice` does (httpx quiet), and no log line per direct turn
    print("command: python -m benchmarks.voice_overhead")
    print(f"\n== user input → first answer token, text mode, {args.runs} turns each (ms) ==")
    print(f"{'backend':<11}{'turn':<20}{'direct p50':>11}{'voice p50':>11}{'direct p95':>11}{'voice p95':>11}", end="")
    print(f"{'overhead p50':>14}{'× direct':>10}{'of it LiveKit':>15}")
    worst: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as data:
        common: dict[str, Any] = {"_env_file": None, "data_dir": Path(data), "llm_max_tokens": 16}
        worst["sqlite"] = await bench(Settings(**common), "sqlite", args.runs)
        try:
            async with fresh_postgres(args.database_url) as url:
                worst["postgres"] = await bench(Settings(**common, database_url=url), "postgres", args.runs)
        except OSError as error:
            print(f"postgres   skipped: {args.database_url} unreachable ({error})")
    for backend, overhead in worst.items():
        verdict = "met" if overhead <= TARGET_MS else "MISSED"
        print(f"voice overhead on {backend} (worst median difference): {overhead:.1f} ms", end="")
        print(f" — target ≤ {TARGET_MS:.0f} ms: {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
