"""`citadel mcp` as a desktop client starts it while `citadel serve` runs (`make run`): from another
working directory, with a minimal environment (the MCP SDK's default: PATH, HOME, USER… plus the
server's URL), spoken to by the `mcp` SDK's stdio client. It relays to the server, so the tools work
and a thread it starts is the server's, visible over REST.

The server runs on the per-user default data directory (HOME is the test's), never migrated: an empty
data directory gets its schema on first start."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.mcp_server.client_kit import LLM_DEADLINE, TOOLS
from tests.processes import Server

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def server(tmp_path: Path, home: Path) -> Any:
    """`citadel serve` with no CITADEL_ setting but its port: the default data directory under HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITADEL_") and k != "XDG_DATA_HOME"}
    citadel = Server({**env, "HOME": str(home), "CITADEL_LLM_MAX_TOKENS": "16"}, tmp_path / "serve.log")
    citadel.env = {k: v for k, v in citadel.env.items() if k != "XDG_DATA_HOME" and k != "CITADEL_DATA_DIR"}
    citadel.start()
    try:
        yield citadel
    finally:
        citadel.stop()


async def test_citadel_mcp_started_elsewhere_relays_to_the_running_server(
    tmp_path: Path, home: Path, server: Server
) -> None:
    elsewhere = tmp_path / "client-working-directory"
    elsewhere.mkdir()
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "citadel.runtime.cli", "mcp"],
        env={"HOME": str(home), "CITADEL_URL": server.url},  # over the SDK's minimal default environment
        cwd=elsewhere,
    )
    errlog_path = tmp_path / "stdio.log"
    with errlog_path.open("w") as errlog, anyio.fail_after(LLM_DEADLINE * 2):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            tools = (await client.list_tools()).tools
            embedded = await client.call_tool("embed_texts", {"texts": ["hello"]})
            steps = [{"type": "embedding", "text": "tides and the moon"}]
            ran = await client.call_tool("run_workflow", {"steps": steps})
    thread_id = ran.structured_content["thread_id"]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        thread = await http.get(f"/threads/{thread_id}")
        state = await http.get(f"/threads/{thread_id}/state")

    assert {t.name for t in tools} == TOOLS
    assert embedded.structured_content["dims"] == 384
    assert ran.structured_content["status"] == "completed"
    assert thread.status_code == 200, thread.text  # the server's thread
    assert state.json()["values"]["status"] == "done"
    assert f"relaying to the Citadel server at {server.url}" in errlog_path.read_text()
    serve_log = server.output()
    assert "created the app tables" in serve_log  # an empty data directory: its schema on first start
    default_data = home / ".local" / "share" / "citadel"
    assert (default_data / "citadel.db").exists()  # the per-user default data directory
    assert not (elsewhere / "data").exists()
