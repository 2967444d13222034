"""Citadel's commands in processes of their own, as an operator runs them (`citadel serve`,
`citadel worker`), with their output in a log file, started and waited on with deadlines, and
killed for real."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

DEADLINE = 180.0
"""Any wait of these tests, on a loaded 2-core machine."""
START_DEADLINE = 360.0
"""Starting a process (imports, models) while several start at once on a loaded 2-core machine."""
T = TypeVar("T")


def stop_process(process: subprocess.Popen[Any], grace: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], T], what: str, deadline: float = DEADLINE) -> T:
    """The predicate's first truthy value, polled until the deadline."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


class CitadelProcess:
    """`python -m <module> <args>` (the `citadel` CLI by default) with `env` added to this one's."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, module: str = "citadel.runtime.cli") -> None:
        self.args = args
        self.env = {**os.environ, **env}
        self.log = log
        self.module = module
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, ready: Callable[[], bool], what: str) -> None:
        def check() -> bool:
            assert self.alive(), f"{what} exited early; log:\n{self.output()[-4000:]}"
            return ready()

        try:
            wait_for(check, what, START_DEADLINE)
        except TimeoutError as error:
            raise TimeoutError(f"{error}; log:\n{self.output()[-4000:]}") from None

    def kill(self) -> None:
        """kill -9."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            stop_process(self.process)


class Server(CitadelProcess):
    """`citadel serve` on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path, module: str = "citadel.runtime.cli") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve"], {**env, "CITADEL_PORT": str(self.port)}, log, module)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        self.launch()
        self.wait_ready(self.healthy, f"citadel serve on {self.url}")


def stopped(*processes: CitadelProcess) -> Callable[[], Any]:
    def stop_all() -> None:
        for process in processes:
            process.stop()

    return stop_all
