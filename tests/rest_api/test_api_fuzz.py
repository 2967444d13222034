"""The HTTP API's own OpenAPI schema, fuzzed with schemathesis (its CLI, run as a user runs it)
against the running app on PostgreSQL: whatever the input, never a 5xx. Its stateful phase follows the
schema's OpenAPI links (a created thread's id into every `/threads/{thread_id}` route), so cases reach
real threads rather than guessed ids.

Operations that start an LLM generation (chat completions, runs, workflows, AG-UI runs) are left out: a fuzzed
`max_tokens` makes each case take seconds on the embedded model. Their input validation has its own
tests (tests/rest_api/test_openai_compat.py, tests/rest_api/test_thread_run_api.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import LiveServer

SLOW = (
    r"^/v1/chat/completions$|/runs(/wait|/stream)?$|^/api/v1/workflows$|/runs/\{run_id\}/(join|stream)$"
    r"|^/agui/\{graph\}$"
)


@pytest.mark.slow
def test_no_server_errors(make_settings: Any, database_url: str, tmp_path: Path) -> None:
    unlimited = {f"rate_limit_{kind}": "1000000/minute" for kind in ("chat", "embeddings", "mcp", "default")}
    # LiveKit settings (made up: minting a token needs no server), so /voice/token is exercised rather
    # than answering its deliberate 503 "voice is not configured".
    livekit = {"livekit_url": "ws://127.0.0.1:7880", "livekit_api_key": "fuzz", "livekit_api_secret": "f" * 32}
    settings = make_settings(llm_max_tokens=8, database_url=database_url, **unlimited, **livekit)
    with LiveServer.start(settings) as live:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{live.url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "50",
                "--exclude-path-regex",
                SLOW,
                "--request-timeout",
                "60",
                "--generation-deterministic",
                "--phases",
                "examples,coverage,fuzzing,stateful",
            ],
            capture_output=True,
            text=True,
            timeout=1200,
            cwd=tmp_path,
        )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    print(result.stdout[-2500:])  # the phases' and the run's counts (`pytest -s` shows them)
    assert result.returncode == 0, report
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counts, report
    assert int(counts[1]) == int(counts[2]) >= 2000, report
