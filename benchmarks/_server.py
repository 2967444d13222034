"""A real `citadel serve` in a child process, on a free loopback port, for the HTTP benchmarks.

The child gets its own temporary data directory and the embedded defaults (every `CITADEL_*`
variable of this environment is left out), so figures do not depend on what the shell configures;
only the per-caller rate limits are lifted, since a load generator is one caller.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    url: str
    pid: int
    command: str


@contextlib.contextmanager
def citadel_serve(env: dict[str, str] | None = None, timeout: float = 120.0) -> Iterator[Server]:
    """Run `citadel migrate` then `citadel serve`, wait for `/health` (with a deadline), stop it on exit."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="citadel-bench-") as data_dir:
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("CITADEL_")}
        child_env.update(
            {
                "CITADEL_DATA_DIR": data_dir,
                "CITADEL_HOST": "127.0.0.1",
                "CITADEL_PORT": str(port),
                "CITADEL_LOG_LEVEL": "warning",  # no access log line per request
                # A load test is one caller sending far more than a user may: lift the per-caller limits.
                "CITADEL_RATE_LIMIT_EMBEDDINGS": "1000000/second",
                "CITADEL_RATE_LIMIT_CHAT": "1000000/second",
                "CITADEL_RATE_LIMIT_DEFAULT": "1000000/second",
                **(env or {}),
            }
        )
        log_path = Path(data_dir) / "server.log"
        with log_path.open("wb") as log:  # a fresh data directory: create the app tables first
            migrate = [sys.executable, "-m", "citadel.runtime.cli", "migrate"]
            if subprocess.run(migrate, env=child_env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode:
                raise RuntimeError(f"citadel migrate failed:\n{_tail(log_path)}")
        command = [sys.executable, "-m", "citadel.runtime.cli", "serve"]
        with log_path.open("ab") as log:
            process = subprocess.Popen(command, env=child_env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process, log_path, timeout)
            yield Server(url=url, pid=process.pid, command=" ".join(["citadel", "serve", f"--port {port}"]))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"citadel serve exited with {process.returncode}:\n{_tail(log_path)}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/health").status_code == 200:
                    return
            time.sleep(0.1)  # polling a child process: there is no event to wait on
    process.kill()
    raise RuntimeError(f"citadel serve did not answer /health within {timeout:g} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
