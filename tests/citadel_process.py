"""`citadel serve` in its own process, as an operator runs it (and kills it): `tests.processes.Server`
with what the fault suite asks of it besides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.processes import Server


class CitadelProcess(Server):
    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__(env, log)

    def migrate(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "citadel.runtime.cli", "migrate"], env=self.env, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:]) or "(no log)"
