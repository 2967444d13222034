"""An open chat-completions stream is cut when `citadel serve` shuts down (sse-starlette ends its
streams on the server's exit signal): the server does not wait for the answer to finish."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.processes import Server

QUESTION = {
    "model": "auto",
    "stream": True,
    "max_tokens": 1500,
    "temperature": 0,
    "messages": [{"role": "user", "content": "Count from 1 to 1000, one number per line."}],
}


def test_an_open_chat_stream_is_cut_on_shutdown(tmp_path: Path) -> None:
    env = {"CITADEL_DATA_DIR": str(tmp_path / "data"), "CITADEL_LOG_LEVEL": "info"}  # uvicorn logs its shutdown
    migrate = [sys.executable, "-m", "citadel.runtime.cli", "migrate"]
    migrated = subprocess.run(migrate, env={**os.environ, **env}, capture_output=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    server = Server(env, tmp_path / "server.log")
    server.start()
    frames: list[str] = []
    try:
        with (
            httpx.Client(base_url=server.url, timeout=120) as http,
            http.stream("POST", "/v1/chat/completions", json=QUESTION) as stream,
        ):
            assert stream.status_code == 200
            lines = stream.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    frames.append(line)
                    break
            assert server.process is not None
            server.process.terminate()  # SIGTERM, as an operator's stop
            with contextlib.suppress(httpx.RemoteProtocolError):  # the connection closed mid-stream
                for line in lines:
                    if line.startswith("data: "):
                        frames.append(line)
        server.process.wait(60)  # uvicorn raises the signal again once shut down: -15
        assert "Application shutdown complete" in server.output(), server.output()[-3000:]
    finally:
        server.stop()
    assert frames, "the first token came before the shutdown"
    assert "data: [DONE]" not in frames, "the stream was cut, not answered to its end"
