"""Citadel's voice face: a LiveKit agent that talks to the same graphs and threads as chat.

- `worker.py`: the livekit-agents worker (`citadel voice dev|start`) that joins rooms on dispatch and
  runs an `AgentSession` per participant (`agent.py`);
- `llm.py`: the Citadel graph as the session's LLM, run through the `RunManager` like every other
  face, speaking only the answer;
- `stt.py`, `tts.py`: the embedded speech plugins (Whisper-base via faster-whisper, espeak-ng), the
  default when no hosted provider is configured (`plugins.py` chooses);
- `token.py`: LiveKit access tokens for `POST /voice/token` (`runtime/voice_api.py`).

All of it needs the `voice` extra; importing this package without it raises an ImportError that
says what to install. The core (and the HTTP server) imports nothing from here until used.
"""

from agents.voice._extra import ensure_voice_extra

ensure_voice_extra()
