"""Offline audio round trip: speech synthesised by espeak-ng → Silero VAD → Whisper-base STT → the
graph (on a Citadel server on the embedded defaults, beside the voice side) → espeak-ng TTS → audio
frames, through LiveKit's `AgentSession` with audio in and out.

The session gets a microphone that plays a WAV file and a speaker that records; no LiveKit server
(none can run here), everything else as in a room.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import ConversationItemAddedEvent, llm
from livekit.agents.voice import io
from prometheus_client import REGISTRY

from citadel.agents.voice.agent import build_session
from citadel.agents.voice.conversation import Caller, open_conversation
from citadel.agents.voice.plugins import speech_plugins
from citadel.settings import Settings
from tests.agents.voice.conftest import DEADLINE, thread_messages, voice_runtime

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make voice-deps)"),
]
ROOM_RATE = 48_000
FRAME_MS = 10


def speech(text: str, path: Path) -> rtc.AudioFrame:
    """espeak-ng's speech, written to a WAV file (its streamed header has bogus sizes) and read back."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(path), text], check=True)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return rtc.AudioFrame(wav.readframes(wav.getnframes()), wav.getframerate(), 1, wav.getnframes())


class Microphone(io.AudioInput):
    """Plays what it is given as 10 ms frames at the room's rate (48 kHz), then waits for more."""

    def __init__(self) -> None:
        super().__init__(label="test-microphone")
        self._frames: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()

    def say(self, audio: rtc.AudioFrame, *, silence_after: float = 1.5) -> None:
        resampler = rtc.AudioResampler(audio.sample_rate, ROOM_RATE, num_channels=1)
        samples = b"".join(bytes(f.data) for f in [*resampler.push(audio), *resampler.flush()])
        samples += bytes(2 * int(ROOM_RATE * silence_after))
        step = ROOM_RATE * FRAME_MS // 1000
        pcm = np.frombuffer(samples, dtype=np.int16)
        for start in range(0, len(pcm) - step + 1, step):
            self._frames.put_nowait(rtc.AudioFrame(pcm[start : start + step].tobytes(), ROOM_RATE, 1, step))

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._frames.get()


class Speaker(io.AudioOutput):
    """Records every frame; each segment "plays" at once."""

    def __init__(self) -> None:
        super().__init__(label="test-speaker", capabilities=io.AudioOutputCapabilities(pause=False))
        self.frames: list[rtc.AudioFrame] = []
        self._pushed = 0.0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._pushed == 0.0:
            self.on_playback_started(created_at=time.time())
        self.frames.append(frame)
        self._pushed += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._pushed:
            self.on_playback_finished(playback_position=self._pushed, interrupted=False)
        self._pushed = 0.0

    def clear_buffer(self) -> None:
        if self._pushed:
            self.on_playback_finished(playback_position=self._pushed, interrupted=True)
        self._pushed = 0.0


def stage_count(stage: str) -> float:
    return REGISTRY.get_sample_value("citadel_voice_turn_latency_seconds_count", {"stage": stage}) or 0.0


async def test_spoken_question_to_spoken_answer(make_settings: Settings, tmp_path: Path) -> None:
    settings: Settings = make_settings(llm_max_tokens=24)  # type: ignore[operator]
    question = speech("What is the capital of France?", tmp_path / "question.wav")
    stages = ("end_of_speech_to_first_token", "first_token_to_first_audio", "end_of_speech_to_first_audio")
    before = [stage_count(stage) for stage in stages]
    async with voice_runtime(settings) as runtime:
        conversation = await open_conversation(runtime.api, Caller("alice"), settings.voice_graph)
        plugins = speech_plugins(settings)
        session, agent = build_session(settings, runtime.api, conversation, plugins)
        microphone, speaker = Microphone(), Speaker()
        session.input.audio, session.output.audio = microphone, speaker
        answered: asyncio.Future[llm.ChatMessage] = asyncio.get_running_loop().create_future()
        heard: list[str] = []

        @session.on("conversation_item_added")
        def _added(event: ConversationItemAddedEvent) -> None:
            item = event.item
            if isinstance(item, llm.ChatMessage) and item.role == "user":
                heard.append(item.text_content or "")
            elif isinstance(item, llm.ChatMessage) and item.role == "assistant" and not answered.done():
                answered.set_result(item)

        async with session:
            await session.start(agent)
            microphone.say(question)
            async with asyncio.timeout(DEADLINE):
                reply = await answered
        messages = await thread_messages(runtime, conversation)

    assert len(heard) == 1, heard
    assert "capital" in heard[0].lower(), heard
    assert "france" in heard[0].lower(), heard
    assert messages[0].type == "human"
    assert messages[0].text == heard[0]
    assert reply.text_content == messages[-1].text
    assert messages[-1].type == "ai"
    audio = sum(frame.duration for frame in speaker.frames)
    assert speaker.frames
    assert {f.sample_rate for f in speaker.frames} == {22_050}
    assert audio > 0.5
    samples = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in speaker.frames])
    assert np.abs(samples).max() > 1000  # speech, not silence
    assert [stage_count(stage) for stage in stages] == [count + 1 for count in before]  # the turn was timed
