"""Voice metrics (Prometheus, beside `citadel.metrics`): turn latency in its stages, replies the
user interrupted, turns by outcome, sessions in progress.

A turn's stages: the user stops speaking → the graph's first spoken token → the first audio out.
The end of speech comes from VAD (the user state leaving `speaking`, or LiveKit's `stopped_speaking_at`
on the user's message when it has it), the first audio from the reply's `started_speaking_at`, the
first token from the LLM adapter.
In text mode there is no end of speech: only the later stage is observed.

The worker's job processes share these through Prometheus' multiprocess mode, scraped on
`CITADEL_VOICE_METRICS_PORT`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)

FIRST_TOKEN = Histogram(
    "citadel_voice_first_token_seconds",
    "From the user's words reaching the graph to its first spoken token.",
    buckets=BUCKETS,
)
TURN_LATENCY = Histogram(
    "citadel_voice_turn_latency_seconds",
    "Voice turn latency by stage: end_of_speech_to_first_token, first_token_to_first_audio, "
    "end_of_speech_to_first_audio.",
    ["stage"],
    buckets=BUCKETS,
)
INTERRUPTIONS = Counter("citadel_voice_interruptions_total", "Agent replies the user interrupted (barge-in).")
TURNS = Counter(
    "citadel_voice_turns_total",
    "Voice turns by outcome: answered, approval_asked, unclear_answer, busy, error.",
    ["outcome"],
)
SESSIONS = Gauge("citadel_voice_sessions", "Voice sessions in progress.", multiprocess_mode="livesum")


@dataclass
class TurnClock:
    """Wall-clock moments of the current turn, from the session's events and the LLM adapter."""

    stopped_speaking_at: float | None = None
    first_token_at: float | None = None

    def first_token(self) -> None:
        self.first_token_at = time.time()

    def user_stopped_speaking(self, at: float) -> None:
        """VAD's end of the user's speech (the user state leaving `speaking`)."""
        self.stopped_speaking_at = at

    def user_message(self, message_metrics: dict[str, Any]) -> None:
        """LiveKit's own end-of-speech time for the turn, when it could tell it."""
        self.stopped_speaking_at = message_metrics.get("stopped_speaking_at") or self.stopped_speaking_at

    def reply(self, message_metrics: dict[str, Any], *, interrupted: bool) -> None:
        """Observe a finished reply's stages, then start the next turn afresh."""
        if interrupted:
            INTERRUPTIONS.inc()
        ended, first, audio = self.stopped_speaking_at, self.first_token_at, message_metrics.get("started_speaking_at")
        if ended is not None and first is not None:
            TURN_LATENCY.labels("end_of_speech_to_first_token").observe(max(0.0, first - ended))
        if first is not None and audio is not None:
            TURN_LATENCY.labels("first_token_to_first_audio").observe(max(0.0, audio - first))
        if ended is not None and audio is not None:
            TURN_LATENCY.labels("end_of_speech_to_first_audio").observe(max(0.0, audio - ended))
        self.stopped_speaking_at = self.first_token_at = None
