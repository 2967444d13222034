"""A background run survives `kill -9` of the server: the restarted server resumes it from its last
checkpoint, and no step is applied twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.citadel_process import CitadelProcess

STEPS = [{"type": "llm_query", "prompt": f"Name a fruit. ({i})", "max_tokens": 32} for i in range(6)]
DEADLINE = 120.0


def wait_for(predicate: Any, what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    values = {
        "CITADEL_DATA_DIR": str(tmp_path / "data"),
        "CITADEL_RUN_LEASE_SECONDS": "2",
        "CITADEL_LOG_LEVEL": "info",
    }
    if request.param == "postgres":
        values["CITADEL_DATABASE_URL"] = request.getfixturevalue("database_url")
    migrate = subprocess.run(
        [sys.executable, "-m", "citadel.runtime.cli", "migrate"],
        env={**os.environ, **values},
        capture_output=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    return values


def test_background_run_resumes_after_kill_9(env: dict[str, str], tmp_path: Path) -> None:
    server = CitadelProcess(env, tmp_path / "server.log")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            thread_id = http.post("/threads", json={}).json()["thread_id"]
            accepted = http.post(
                f"/threads/{thread_id}/runs", json={"assistant_id": "workflow", "input": {"steps": STEPS}}
            )
            assert accepted.status_code == 200, accepted.text
            run_id = accepted.json()["run_id"]

            def progressed() -> bool:
                values = http.get(f"/threads/{thread_id}/state").json()["values"]
                return bool(values.get("progress", {}).get("completed", 0) >= 2)

            wait_for(progressed, "two steps to finish")
        server.kill()  # mid-run: some steps done, the rest not

        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            run = wait_for(
                lambda: (
                    (r := http.get(f"/threads/{thread_id}/runs/{run_id}").json())["status"]
                    not in ("pending", "running")
                    and r
                ),
                "the resumed run to finish",
            )
            assert run["status"] == "success", run
            values = http.get(f"/threads/{thread_id}/state").json()["values"]
            history = http.post(f"/threads/{thread_id}/history", json={"limit": 200}).json()
    finally:
        server.stop()

    assert values["status"] == "done"
    assert values["progress"]["completed"] == len(STEPS)
    assert [r["index"] for r in values["results"]] == list(range(len(STEPS))), "each step once, in order"
    # Every checkpoint belongs to this one run, and the completed-step count never goes backwards or
    # repeats a step: the resumed run continued from the last checkpoint instead of starting over.
    counts = [len(h["values"].get("results") or []) for h in reversed(history)]
    assert counts == sorted(counts)
    assert {h["metadata"].get("run_id") for h in history if h["metadata"].get("run_id")} == {run_id}
    assert "resuming run" in (tmp_path / "server.log").read_text()
