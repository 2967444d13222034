"""Citadel's embedded text-to-speech, as a LiveKit TTS plugin: espeak-ng (the Debian package; `make
install` installs it).

espeak-ng speaks to stdout as 16-bit mono PCM at 22,050 Hz in a WAV container whose streamed header
has bogus sizes, so the 44-byte header is read for its sample rate and skipped, and the PCM is
pushed to LiveKit as it arrives: the first audio goes out before the sentence is synthesised.
Robotic, but instant, offline and tiny.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil

from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, APIError, tts, utils

SAMPLE_RATE = 22_050
WAV_HEADER = 44
READ_BYTES = 4096


class EspeakMissing(RuntimeError):
    pass


class TTS(tts.TTS):
    def __init__(self, *, voice: str = "en-us", words_per_minute: int = 175, executable: str = "espeak-ng") -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE, num_channels=1)
        path = shutil.which(executable)
        if path is None:
            raise EspeakMissing(
                f"{executable} is not installed: `make voice-deps` (apt-get install espeak-ng), "
                "or configure a hosted TTS with CITADEL_VOICE_TTS"
            )
        self._executable = path
        self._voice = voice
        self._words_per_minute = words_per_minute

    @property
    def model(self) -> str:
        return "espeak-ng"

    @property
    def provider(self) -> str:
        return "citadel"

    @property
    def voice(self) -> str:
        return self._voice

    def command(self) -> list[str]:
        return [self._executable, "--stdout", "--stdin", "-v", self._voice, "-s", str(self._words_per_minute)]

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> ChunkedStream:
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class ChunkedStream(tts.ChunkedStream):
    def __init__(self, *, tts: TTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._espeak = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._espeak.command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        try:
            process.stdin.write(self.input_text.encode())
            await process.stdin.drain()
            process.stdin.close()
            header = await process.stdout.readexactly(WAV_HEADER)
            rate = int.from_bytes(header[24:28], "little")
            if header[:4] != b"RIFF" or rate != SAMPLE_RATE:
                raise APIError(
                    f"espeak-ng answered {header[:4]!r} at {rate} Hz, not WAV at {SAMPLE_RATE}", retryable=False
                )
            output_emitter.initialize(
                request_id=utils.shortuuid("espeak_"), sample_rate=SAMPLE_RATE, num_channels=1, mime_type="audio/pcm"
            )
            while chunk := await process.stdout.read(READ_BYTES):
                output_emitter.push(chunk)
            if await process.wait() != 0:
                error = (await process.stderr.read()).decode(errors="replace").strip()
                raise APIError(f"espeak-ng failed ({process.returncode}): {error}", retryable=False)
            output_emitter.flush()
        except asyncio.IncompleteReadError as error:
            detail = (await process.stderr.read()).decode(errors="replace").strip()
            raise APIError(f"espeak-ng produced no audio: {detail or 'no output'}", retryable=False) from error
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
