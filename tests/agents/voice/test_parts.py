"""The voice agent's small parts: reading a spoken yes/no, who a participant is, what a slow step
is announced with, which plugins the settings choose, turn timing, the embedded model files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from citadel.agents.voice import metrics
from citadel.agents.voice._extra import VoiceExtraMissing, require
from citadel.agents.voice.conversation import caller_from_participant, participant_metadata, spoken_decision
from citadel.agents.voice.llm import SEARCHING, WORKING, step_notice
from citadel.agents.voice.plugins import UnknownPlugin, make_stt, make_tts
from citadel.agents.voice.stt import STT, model_dir
from citadel.agents.voice.tts import TTS, EspeakMissing


@pytest.mark.parametrize(
    ("said", "meaning"),
    [
        ("Yes.", "approve"),
        ("yeah, go ahead", "approve"),
        ("OK, do it!", "approve"),
        ("Sure", "approve"),
        ("No.", "reject"),
        ("Nope, cancel that", "reject"),
        ("Please don't", "reject"),
        ("never mind", "reject"),
        ("What was the question?", None),
        ("No, that's fine", None),  # both: ask again rather than guess
        ("", None),
        ("I know it", None),  # "no" inside a word is no answer
    ],
)
def test_spoken_decision(said: str, meaning: str | None) -> None:
    assert spoken_decision(said) == meaning


def test_caller_from_the_participant_token() -> None:
    caller = caller_from_participant("user_1", participant_metadata("user_1", "thread-9", "rag"))
    assert (caller.user_id, caller.thread_id, caller.graph) == ("user_1", "thread-9", "rag")
    # A participant from elsewhere (SIP, the LiveKit CLI): its identity, a new thread.
    for metadata in (None, "", "not json", json.dumps({"other": 1}), json.dumps(["x"])):
        caller = caller_from_participant("sip_+15550100", metadata)
        assert (caller.user_id, caller.thread_id, caller.graph) == ("sip_+15550100", None, None)


def test_slow_steps_and_what_is_said() -> None:
    assert step_notice({"specialist": "researcher", "route_reason": "..."}) == SEARCHING
    assert step_notice({"specialist": "generalist"}) is None
    calls = [{"name": "search_documents", "args": {}, "id": "1"}]
    assert step_notice({"messages": [{"type": "ai", "content": "", "tool_calls": calls}]}) == SEARCHING
    calls = [{"name": "some_future_tool", "args": {}, "id": "1"}]
    assert step_notice({"messages": [{"type": "ai", "content": "", "tool_calls": calls}]}) == WORKING
    assert step_notice({"messages": [{"type": "ai", "content": "An answer.", "tool_calls": []}]}) is None


def test_the_embedded_plugins_are_the_default(make_settings: Any) -> None:
    settings = make_settings()
    assert isinstance(make_stt(settings), STT)
    assert isinstance(make_tts(settings), TTS)
    hosted = make_settings(voice_stt="deepgram/nova-3", voice_tts="cartesia/sonic-2")
    assert (make_stt(hosted), make_tts(hosted)) == ("deepgram/nova-3", "cartesia/sonic-2")  # LiveKit Inference


def test_plugins_that_are_unknown_or_not_installed_say_what_to_do(make_settings: Any) -> None:
    with pytest.raises(UnknownPlugin, match="CITADEL_VOICE_STT='whisperx'"):
        make_stt(make_settings(voice_stt="whisperx"))
    with pytest.raises(VoiceExtraMissing, match="pip install livekit-plugins-cartesia"):
        make_tts(make_settings(voice_tts="cartesia"))
    with pytest.raises(VoiceExtraMissing, match="uv sync --extra voice"):
        require("livekit.plugins.not_a_plugin")
    with pytest.raises(EspeakMissing, match="make voice-deps"):
        TTS(executable="espeak-ng-is-not-here")


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_turn_latency_stages_and_interruptions() -> None:
    stage = "citadel_voice_turn_latency_seconds_sum"
    before = {s: sample(stage, {"stage": s}) for s in ("end_of_speech_to_first_token", "first_token_to_first_audio")}
    interrupted = sample("citadel_voice_interruptions_total")
    clock = metrics.TurnClock()
    clock.user_stopped_speaking(100.0)
    clock.user_message({})  # LiveKit could not tell: VAD's time stands
    clock.first_token_at = 100.75
    clock.reply({"started_speaking_at": 101.0}, interrupted=True)
    assert sample(stage, {"stage": "end_of_speech_to_first_token"}) == pytest.approx(
        before["end_of_speech_to_first_token"] + 0.75
    )
    assert sample(stage, {"stage": "first_token_to_first_audio"}) == pytest.approx(
        before["first_token_to_first_audio"] + 0.25
    )
    assert sample("citadel_voice_interruptions_total") == interrupted + 1
    assert clock.stopped_speaking_at is None
    assert clock.first_token_at is None


def test_the_whisper_model_is_assembled_once(tmp_path: Path) -> None:
    first = model_dir(tmp_path)
    assert sorted(p.name for p in first.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    stamp = (first / "model.bin").stat().st_mtime_ns
    assert model_dir(tmp_path) == first
    assert (first / "model.bin").stat().st_mtime_ns == stamp
    (first / "model.bin").write_bytes(b"truncated")  # an interrupted copy is replaced
    assert model_dir(tmp_path) == first
    assert (first / "model.bin").stat().st_size > 100_000_000
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no staging directory left behind
