"""`citadel voice dev` starts the LiveKit worker, as the README says to run it. No LiveKit server can
run here: the worker is seen starting and trying to register with the URL given, then stopped."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
DEADLINE = 90.0


def test_the_worker_starts_and_tries_to_register(tmp_path: Path) -> None:
    environment = {**os.environ, "CITADEL_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    command = [sys.executable, "-m", "citadel.runtime.cli", "voice", "dev", "--url", "ws://127.0.0.1:9"]
    command += ["--api-key", "devkey", "--api-secret", "secret-of-at-least-thirty-two-characters"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    assert process.stdout is not None
    seen: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    started = time.monotonic()
    try:
        while not any("failed to connect to livekit" in line for line in seen):
            left = DEADLINE - (time.monotonic() - started)
            assert left > 0, "".join(seen[-30:])
            assert process.poll() is None, "".join(seen[-30:])
            if selector.select(timeout=left):
                seen.append(process.stdout.readline())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        selector.close()
        process.stdout.close()
    output = "".join(seen)
    assert "starting worker" in output
    assert "livekit.plugins.silero" in output  # the VAD plugin is loaded with the worker
