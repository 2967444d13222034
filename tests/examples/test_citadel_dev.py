"""`citadel dev`: `serve` restarted when the project's files change, like `langgraph dev`: a copy of
the echo project is served, its graph edited, and the next run answers with the edited graph."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.processes import CitadelProcess, free_port, wait_for

pytestmark = pytest.mark.slow
ECHO = Path(__file__).resolve().parents[2] / "examples" / "echo"
PING = {"assistant_id": "echo", "input": {"messages": [{"role": "user", "content": "ping"}]}}


def test_an_edit_to_the_project_reloads_its_graph(tmp_path: Path) -> None:
    project = tmp_path / "echo"
    shutil.copytree(ECHO, project)
    port = free_port()
    env = {"CITADEL_DATA_DIR": str(tmp_path / "data"), "CITADEL_URL": "http://127.0.0.1:9"}
    args = ["dev", "--config", str(project / "langgraph.json"), "--port", str(port)]
    dev = CitadelProcess(args, env, tmp_path / "dev.log")
    url = f"http://127.0.0.1:{port}"

    def answer() -> str | None:
        try:
            response = httpx.post(f"{url}/runs/wait", json=PING, timeout=30)
        except httpx.HTTPError:
            return None  # restarting
        return response.json()["messages"][-1]["content"] if response.status_code == 200 else None

    dev.launch()
    try:
        dev.wait_ready(lambda: answer() == "echo: ping", f"citadel dev on {url}")
        source = project / "echo.py"
        source.write_text(source.read_text().replace('f"echo: ', 'f"edited: '))
        assert wait_for(lambda: answer() == "edited: ping", "the edited graph to answer")
    finally:
        dev.stop()
