"""What an embedded (SQLite) `citadel serve` imports before its first answer: the app and the opened
core, in a fresh interpreter. The PostgreSQL drivers and LangGraph's PostgreSQL persistence load only
with `CITADEL_DATABASE_URL`; Alembic only to migrate (a current schema is checked without it);
Clerk's SDK only with Clerk configured; ag-ui-langgraph on the first AG-UI run; the `mcp` SDK in the
background once the app has started (issue 15: start-up time and idle memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

POSTGRES_ONLY = ("psycopg", "psycopg_pool", "asyncpg", "langgraph.checkpoint.postgres", "langgraph.store.postgres")
NOT_BEFORE_THE_FIRST_ANSWER = (
    "alembic",
    "clerk_backend_api",
    "jwt",
    "mcp",
    "citadel.mcp_server.server",
    "ag_ui_langgraph",
)

OPEN_THE_APP = """
import asyncio, json, sys
from citadel.runtime.app import create_app
from citadel.settings import Settings

async def main():
    app = create_app(Settings())
    async with app.router.lifespan_context(app):  # the app answers from here on
        print(json.dumps(sorted(sys.modules)))  # before the MCP server's building task has run

asyncio.run(main())
"""


def modules_at_start(data_dir: Path) -> list[str]:
    """The modules loaded once the app has started on a migrated database in `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITADEL_")}
    env.update(CITADEL_DATA_DIR=str(data_dir), CITADEL_LOG_LEVEL="warning")
    subprocess.run([sys.executable, "-m", "citadel.runtime.cli", "migrate"], env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-c", OPEN_THE_APP], env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def among(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == name or m.startswith(name + ".") for name in names)]


def test_an_embedded_start_loads_no_postgres_driver_alembic_clerk_or_mcp(tmp_path: Path) -> None:
    modules = modules_at_start(tmp_path)
    assert among(modules, POSTGRES_ONLY) == []
    assert among(modules, NOT_BEFORE_THE_FIRST_ANSWER) == []
