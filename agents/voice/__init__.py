"""Citadel's voice face: a LiveKit agent that talks to the same graphs and threads as chat.

- `worker.py`: the livekit-agents worker (`citadel voice dev|start`) that joins rooms on dispatch and
  runs an `AgentSession` per participant (`agent.py`);
- `llm.py`: the Citadel graph as the session's LLM, run through the `RunManager` like every other
  face, speaking only the answer;
- `stt.py`, `tts.py`: the embedded speech plugins (Whisper-base via faster-whisper, espeak-ng), the
  default when no hosted provider is configured (`plugins.py` chooses);
- `token.py`: LiveKit access tokens; `routes.py`: `POST /voice/token`, mounted by the app factory.

All of it but `routes.py` needs the `voice` extra: the worker raises an ImportError that says what
to install, and without it `POST /voice/token` answers 501 saying the same.
"""
